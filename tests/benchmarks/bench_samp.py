"""SAMP through a hub: samp_compat beside astropy.samp, hub and clients in separate processes.

Each stack runs as users deploy it: the hub in one process, a receiving
client in a second, and the sending client in a third (this one). Measured,
all through the hub:

* **notify round trip**: the sender notifies the receiver, whose bound
  function acknowledges on a plain socket to the sender; the sender waits
  for that byte before the next notify;
* **notify stream**: the sender notifies as fast as ``notify`` returns; the
  rate is the number of notifications over the time until the receiver has
  run its binding for the last one (one-way throughput);
* **callAndWait round trip**: ``call_and_wait`` to the receiver, whose bound
  function replies with ``hub.reply``;
* **register+unregister** through a hub proxy, and **connect+disconnect** of
  a callable ``SAMPIntegratedClient``;
* **connect+disconnect, 300 idle sockets**: the same while 300 connections
  to the hub stay open and idle;
* **notifyAll with 6 hung clients**: six more clients are registered whose
  callback addresses accept connections and never answer (listening sockets
  in the receiver process that never accept); the sender notifies all and
  waits for the healthy receiver's acknowledgement, as in the notify round
  trip. It shows that hung clients delay no one.

The stacks alternate within one run (astropy.samp, then samp_compat, again
and again), each round with fresh processes; every figure is the median of
``--runs`` rounds and each ratio is samp_compat's median over astropy's.
pyvo.samp is a copy of astropy.samp (only names and log texts differ), so it
is measured only with ``--pyvo``. The same figures with hub and clients in
one process follow (``--no-inprocess`` skips them), for those who run them so
(tests, simulators). There is no physical-limit column: a SAMP message is
two XML-RPC exchanges over HTTP through a third process, unlike the
newline-framed echo of the other benchmarks.

The exit status is 1 if a ratio misses its target.

Run: ``python tests/benchmarks/bench_samp.py [--quick] [--runs N] [--pyvo]``
"""
import argparse
import itertools
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from benchlib import LOOPBACK, ServerProcess, wait_for_stop  # noqa: E402

WAIT = 10.0  # seconds a single round trip may take before the run is declared broken
TIMEOUT_FAULT = 1  # fault code of an expired callAndWait
CALL_TIMEOUT = "5"  # SAMP timeout of each callAndWait, in seconds
NOTE = "bench.note"
ECHO = "bench.echo"
ACK = b"!"
HUNG_CLIENTS = 6
#: callAndWait calls whose reply the hub lost, per stack (over the whole run).
LOST: Dict[str, int] = {}
_BATCHES = itertools.count(1)  # notify-stream batches, numbered across the whole run
STACKS = {"astropy": "astropy.samp", "pyvo": "pyvo.samp", "samp_compat": "samp_compat"}


def _load(stack: str) -> Any:
    """Import the SAMP package of ``stack`` with its logging quiet."""
    import importlib
    import logging
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samp = importlib.import_module(STACKS[stack])
    samp.conf.use_internet = False
    for name in ("astropy", "pyvo", "samp_compat"):
        # Hung and departed clients are logged as warnings; the figures are what counts here.
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    return samp


# -- processes ------------------------------------------------------------------

def serve_hub(pipe: Any, stack: str, lockfile: str) -> None:
    """The hub process: start a hub, send its parameters, run until told to stop."""
    samp = _load(stack)
    hub = samp.SAMPHubServer(web_profile=False, lockfile=lockfile, mode="single")
    hub.start()
    pipe.send(dict(hub.params))
    wait_for_stop(pipe)
    hub.stop()


def serve_receiver(pipe: Any, stack: str, hub_params: Dict[str, str], ack_port: int) -> None:
    """The receiver process: a client that acknowledges notifications and echoes calls.

    A notification whose params carry ``total`` is acknowledged once that many
    notifications of its ``batch`` have arrived (one byte on the socket to the
    sender at ``ack_port``). It also holds the listening sockets, never
    accepted, of the hung clients.
    """
    samp = _load(stack)
    hung = []
    for _ in range(HUNG_CLIENTS):
        sock = socket.socket()
        sock.bind((LOOPBACK, 0))
        sock.listen(8)
        hung.append(sock)
    ack = socket.create_connection((LOOPBACK, ack_port))
    ack.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cli = samp.SAMPIntegratedClient(name="bench receiver")
    cli.connect(hub_params=hub_params)
    lock = threading.Lock()
    counts: Dict[str, int] = {}

    def note(private_key: str, sender_id: str, mtype: str, params: Dict[str, Any],
             extra: Dict[str, Any]) -> None:
        total = int(params.get("total", "1"))
        if total == 1:
            ack.sendall(ACK)
            return
        batch = params["batch"]
        with lock:
            count = counts[batch] = counts.get(batch, 0) + 1
        if count == total:
            ack.sendall(ACK)

    def echo(private_key: str, sender_id: str, msg_id: str, mtype: str,
             params: Dict[str, Any], extra: Dict[str, Any]) -> None:
        cli.reply(msg_id, {"samp.status": "samp.ok", "samp.result": params})

    cli.bind_receive_notification(NOTE, note)
    cli.bind_receive_call(ECHO, echo)
    pipe.send((cli.get_public_id(),
               ["http://%s:%d/" % sock.getsockname() for sock in hung]))
    wait_for_stop(pipe)
    cli.disconnect()
    ack.close()
    for sock in hung:
        sock.close()


class Deployment:
    """Hub and receiver of one stack in their own processes; the sender lives here."""

    def __init__(self, stack: str, tmp: str) -> None:
        self.stack = stack
        self.tmp = tmp
        self.samp = _load(stack)

    def __enter__(self) -> "Deployment":
        lockfile = os.path.join(self.tmp, "%s-%d.lock" % (self.stack, time.monotonic_ns()))
        self._hub = ServerProcess(serve_hub, self.stack, lockfile)
        self.hub_params = self._hub.__enter__()
        listener = socket.socket()
        listener.bind((LOOPBACK, 0))
        listener.listen(1)
        listener.settimeout(WAIT * 3)
        try:
            self._receiver = ServerProcess(serve_receiver, self.stack, self.hub_params,
                                           listener.getsockname()[1])
            self.recipient, self.hung_urls = self._receiver.__enter__()
            self.ack, _ = listener.accept()
        finally:
            listener.close()
        self.ack.settimeout(WAIT)
        self.sender = self.samp.SAMPIntegratedClient(name="bench sender")
        self.sender.connect(hub_params=self.hub_params)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.sender.disconnect()
        finally:
            self._receiver.__exit__(None, None, None)
            self.ack.close()
            self._hub.__exit__(None, None, None)

    def wait_ack(self) -> None:
        if not self.ack.recv(1):
            raise RuntimeError("the receiver process went away")

    def cpu_seconds(self) -> Optional[Tuple[float, float, float]]:
        """CPU seconds used so far by the hub, receiver and sender processes (Linux only)."""
        pids = (self._hub._process.pid, self._receiver._process.pid, os.getpid())
        try:
            return tuple(_process_cpu(pid) for pid in pids)  # type: ignore[return-value]
        except (OSError, ValueError, IndexError):
            return None


def _process_cpu(pid: Optional[int]) -> float:
    """User plus system CPU seconds of process ``pid``, from ``/proc``."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: Operations run by the figure being measured, warm-up included (for CPU per operation).
_OPS = [0]


def _timed(seconds: float, step: Callable[[], None], warmup: int = 20) -> float:
    """Operations per second of ``step()`` repeated for about ``seconds``."""
    for _ in range(warmup):
        step()
    _OPS[0] += warmup
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        step()
        count += 1
        _OPS[0] += 1
        if time.perf_counter() >= deadline:
            return count / (time.perf_counter() - start)


def notify_round_trip(dep: Deployment, seconds: float) -> float:
    message = {"samp.mtype": NOTE, "samp.params": {"total": "1"}}

    def step() -> None:
        dep.sender.notify(dep.recipient, message)
        dep.wait_ack()
    return _timed(seconds, step)


def notify_stream(dep: Deployment, seconds: float) -> float:
    """One-way notifications per second, counted when the receiver has run the last one."""
    rates = []
    deadline = time.perf_counter() + seconds
    size = 200
    while not rates or time.perf_counter() < deadline:
        message = {"samp.mtype": NOTE,
                   "samp.params": {"total": str(size), "batch": str(next(_BATCHES))}}
        start = time.perf_counter()
        for _ in range(size):
            dep.sender.notify(dep.recipient, message)
        dep.wait_ack()
        _OPS[0] += size
        rates.append(size / (time.perf_counter() - start))
    return statistics.median(rates)


def call_and_wait(dep: Deployment, seconds: float) -> float:
    """callAndWait round trips per second, over the calls answered.

    A call whose reply the hub lost (astropy's hub drops a reply that comes
    before its own bookkeeping) ends with the SAMP timeout, ``CALL_TIMEOUT``
    seconds later; such calls are counted in :data:`LOST` and their time is
    left out, so that the figure is the speed of the calls that work.
    """
    message = {"samp.mtype": ECHO, "samp.params": {"x": "1"}}
    samp = dep.samp
    answered = [0, 0.0]  # calls, seconds
    deadline = time.perf_counter() + seconds
    while answered[0] < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            dep.sender.call_and_wait(dep.recipient, message, CALL_TIMEOUT)
        except samp.SAMPProxyError as exc:
            if exc.faultCode != TIMEOUT_FAULT:
                raise
            LOST[dep.stack] = LOST.get(dep.stack, 0) + 1
            continue
        finally:
            _OPS[0] += 1
        answered[0] += 1
        answered[1] += time.perf_counter() - start
    return answered[0] / answered[1]


def register_cycle(dep: Deployment, seconds: float) -> float:
    proxy = dep.samp.SAMPHubProxy()
    proxy.connect(hub_params=dep.hub_params)
    secret = dep.hub_params["samp.secret"]
    try:
        return _timed(seconds, lambda: proxy.unregister(proxy.register(secret)["samp.private-key"]))
    finally:
        proxy.disconnect()


def connect_cycle(dep: Deployment, seconds: float) -> float:
    cli = dep.samp.SAMPIntegratedClient(name="bench")

    def step() -> None:
        cli.connect(hub_params=dep.hub_params)
        cli.disconnect()
    return _timed(seconds, step, warmup=2)


IDLE_SOCKETS = 300


def connect_with_idle_sockets(dep: Deployment, seconds: float) -> float:
    """connect+disconnect cycles while IDLE_SOCKETS connections to the hub stay idle."""
    parts = urllib.parse.urlsplit(dep.hub_params["samp.hub.xmlrpc.url"])
    idle = []
    try:
        for _ in range(IDLE_SOCKETS):
            idle.append(socket.create_connection((parts.hostname, parts.port), timeout=WAIT))
        return connect_cycle(dep, seconds)
    finally:
        for sock in idle:
            sock.close()


def notify_all_hung(dep: Deployment, seconds: float) -> float:
    """notifyAll round trips to the receiver while six hung clients are notified too."""
    proxy = dep.samp.SAMPHubProxy()
    proxy.connect(hub_params=dep.hub_params)
    for url in dep.hung_urls:
        key = proxy.register(dep.hub_params["samp.secret"])["samp.private-key"]
        proxy.set_xmlrpc_callback(key, url)
        proxy.declare_subscriptions(key, {NOTE: {}})
    message = {"samp.mtype": NOTE, "samp.params": {"total": "1"}}

    def step() -> None:
        dep.sender.notify_all(message)
        dep.wait_ack()
    try:
        return _timed(seconds, step)
    finally:
        proxy.disconnect()


BENCHES: List[Tuple[str, Callable[[Deployment, float], float], Optional[float]]] = [
    # name, function, target ratio over astropy
    ("notify round trip", notify_round_trip, 3.0),
    ("notify stream (one-way)", notify_stream, 1.0),
    ("callAndWait round trip", call_and_wait, 10.0),
    ("register+unregister", register_cycle, 1.0),
    ("connect+disconnect", connect_cycle, 1.0),
    ("connect, 300 idle sockets", connect_with_idle_sockets, 1.0),
    ("notifyAll, 6 hung clients", notify_all_hung, 1.0),  # last: it leaves hung deliveries
]


# -- the same in one process ----------------------------------------------------------

class InProcess:
    """Hub, receiver and sender of one stack in this process."""

    def __init__(self, stack: str, tmp: str) -> None:
        self.stack = stack
        self.samp = samp = _load(stack)
        lockfile = os.path.join(tmp, "%s-%d.lock" % (stack, time.monotonic_ns()))
        self.hub = samp.SAMPHubServer(web_profile=False, lockfile=lockfile, mode="single")
        self.hub.start()
        self.hub_params = dict(self.hub.params)
        self.got = threading.Event()
        self.receiver = samp.SAMPIntegratedClient(name="bench receiver")
        self.receiver.connect(hub_params=self.hub_params)
        self.receiver.bind_receive_notification(
            NOTE, lambda key, sender, mtype, params, extra: self.got.set())
        self.receiver.bind_receive_call(ECHO, lambda key, sender, msg_id, mtype, params, extra:
                                        self.receiver.reply(msg_id, {"samp.status": "samp.ok",
                                                                     "samp.result": params}))
        self.recipient = self.receiver.get_public_id()
        self.sender = samp.SAMPIntegratedClient(name="bench sender")
        self.sender.connect(hub_params=self.hub_params)

    def close(self) -> None:
        self.sender.disconnect()
        self.receiver.disconnect()
        self.hub.stop()

    def wait_ack(self) -> None:
        if not self.got.wait(WAIT):
            raise RuntimeError("notification not delivered")
        self.got.clear()


def inprocess_notify(dep: InProcess, seconds: float) -> float:
    message = {"samp.mtype": NOTE, "samp.params": {"total": "1"}}

    def step() -> None:
        dep.sender.notify(dep.recipient, message)
        dep.wait_ack()
    return _timed(seconds, step)


INPROCESS_BENCHES = [
    ("notify round trip", inprocess_notify),
    ("callAndWait round trip", call_and_wait),
    ("register+unregister", register_cycle),
    ("connect+disconnect", connect_cycle),
]


# -- the run ----------------------------------------------------------------------------

def _table(title: str, names: List[str], stacks: List[str],
           results: Dict[Tuple[str, str], List[float]],
           targets: Dict[str, Optional[float]]) -> bool:
    """Print medians and ratios; return False if a target is missed."""
    print("\n%s" % title)
    header = "  %-24s" % "benchmark" + "".join("%14s" % s for s in stacks) + "%9s %8s" % (
        "ratio", "target")
    print(header)
    ok = True
    for name in names:
        medians = {s: statistics.median(results[(name, s)]) for s in stacks}
        ratio = medians["samp_compat"] / medians["astropy"] if medians["astropy"] else float("inf")
        target = targets.get(name)
        mark = "" if target is None else "%.0fx" % target
        miss = target is not None and ratio < target
        ok = ok and not miss
        print("  %-24s" % name + "".join("%12.0f/s" % medians[s] for s in stacks)
              + "%8.1fx %8s%s" % (ratio, mark, "  BELOW TARGET" if miss else ""))
    return ok


#: Figures whose CPU time per operation is printed (process times have 10 ms ticks).
CPU_FIGURES = ("notify round trip", "notify stream (one-way)", "callAndWait round trip")


def _cpu_table(stacks: List[str], cpu: Dict[Tuple[str, str], List[Tuple[float, ...]]]) -> None:
    """Print the median CPU microseconds per operation of each process."""
    print("\nCPU time per operation between processes (us; hub + receiver + sender = total)")
    for name in CPU_FIGURES:
        for stack in stacks:
            samples = cpu.get((name, stack))
            if not samples:
                continue
            hub, receiver, sender = (statistics.median(s[i] for s in samples) for i in range(3))
            print("  %-24s %-12s %5.0f + %5.0f + %5.0f = %5.0f" % (
                name, stack, hub, receiver, sender, hub + receiver + sender))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds per stack (medians)")
    parser.add_argument("--seconds", type=float, default=1.5, help="seconds per figure")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 0.5 s each")
    parser.add_argument("--pyvo", action="store_true", help="measure pyvo.samp too")
    parser.add_argument("--no-inprocess", action="store_true",
                        help="skip the figures with everything in one process")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds = 3, 0.5
    tmp = tempfile.mkdtemp(prefix="bench_samp_")
    os.environ["HOME"] = tmp  # never touch the real ~/.samp (children inherit it)
    os.environ.pop("SAMP_HUB", None)
    stacks = ["astropy"] + (["pyvo"] if args.pyvo else []) + ["samp_compat"]
    for stack in stacks:
        _load(stack)
    print("SAMP via a hub: hub, receiver and sender in three processes; medians of %d rounds "
          "of %.1f s" % (args.runs, args.seconds))
    results: Dict[Tuple[str, str], List[float]] = {}
    cpu: Dict[Tuple[str, str], List[Tuple[float, ...]]] = {}
    for _ in range(args.runs):
        for stack in stacks:
            with Deployment(stack, tmp) as dep:
                for name, bench, _target in BENCHES:
                    _OPS[0] = 0
                    before = dep.cpu_seconds()
                    results.setdefault((name, stack), []).append(bench(dep, args.seconds))
                    after = dep.cpu_seconds()
                    if before and after and name in CPU_FIGURES:
                        cpu.setdefault((name, stack), []).append(
                            tuple(1e6 * (b - a) / _OPS[0] for a, b in zip(before, after)))
    ok = _table("between processes (ops/s)", [b[0] for b in BENCHES], stacks, results,
                {name: target for name, _, target in BENCHES})
    if LOST:
        print("  callAndWait replies lost by the hub (those calls left out): %s" % ", ".join(
            "%s %d" % item for item in sorted(LOST.items())))
    if cpu:
        _cpu_table(stacks, cpu)
    if not args.no_inprocess:
        results = {}
        LOST.clear()
        for _ in range(args.runs):
            for stack in stacks:
                dep = InProcess(stack, tmp)
                try:
                    for name, bench in INPROCESS_BENCHES:
                        results.setdefault((name, stack), []).append(
                            bench(dep, args.seconds))  # type: ignore[arg-type]
                finally:
                    dep.close()
        _table("in one process (ops/s)", [b[0] for b in INPROCESS_BENCHES], stacks, results, {})
        if LOST:
            print("  callAndWait replies lost by the hub (those calls left out): %s" % ", ".join(
                "%s %d" % item for item in sorted(LOST.items())))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
