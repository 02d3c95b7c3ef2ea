"""Benchmark: samp_compat (hub + clients) against astropy.samp (hub + clients).

Run as ``python tests/benchmarks/bench_samp.py``. Both stacks run in this
process on loopback, each with its own hub and a private lockfile under a
temporary HOME. Printed: operations per second for each stack (best of
``--repeat`` alternating runs, to damp the noise of a shared machine) and the
ratio samp_compat / astropy.samp. The exit status is 1 if a ratio misses its
target. Both stacks hand each round trip across several threads; on a
multi-core machine their rates vary from run to run with how the scheduler
spreads those threads over the cores (cross-core wake-ups cost more), so
``--pin`` runs the whole process on one CPU for repeatable numbers.
"""
import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

WAIT = 10.0  # seconds a single round trip may take before the run is declared broken
TIMEOUT_FAULT = 1  # fault code of an expired callAndWait


def _load(stack):
    if stack == "astropy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import astropy.samp as samp
    else:
        import samp_compat as samp
    samp.conf.use_internet = False
    return samp


class _Stack:
    """A running hub of one implementation plus helpers to make clients."""

    def __init__(self, stack, tmp):
        self.name = stack
        self.samp = _load(stack)
        lockfile = os.path.join(tmp, "%s.lock" % stack)
        self.hub = self.samp.SAMPHubServer(web_profile=False, lockfile=lockfile, mode="single")
        self.hub.start()
        self.clients = []

    def client(self, **kwargs):
        cli = self.samp.SAMPIntegratedClient(**kwargs)
        cli.connect(hub=self.hub)
        self.clients.append(cli)
        return cli

    def close(self):
        for cli in self.clients:
            cli.disconnect()
        self.hub.stop()


def bench_notify(stack, count):
    """Sequential notify -> delivered-to-binding round trips per second."""
    sender = stack.client()
    receiver = stack.client()
    got = threading.Event()

    def receive(private_key, sender_id, mtype, params, extra):
        got.set()

    receiver.bind_receive_notification("bench.note", receive)
    recipient = receiver.get_public_id()
    message = {"samp.mtype": "bench.note", "samp.params": {"x": "1"}}
    start = time.perf_counter()
    for _ in range(count):
        got.clear()
        sender.notify(recipient, message)
        if not got.wait(WAIT):
            raise RuntimeError("notification not delivered")
    return count / (time.perf_counter() - start), ""


def bench_call_and_wait(stack, count):
    """Sequential callAndWait round trips per second (lost replies excluded)."""
    sender = stack.client()
    receiver = stack.client()

    def echo(private_key, sender_id, msg_id, mtype, params, extra):
        receiver.reply(msg_id, {"samp.status": "samp.ok", "samp.result": params})

    receiver.bind_receive_call("bench.echo", echo)
    recipient = receiver.get_public_id()
    message = {"samp.mtype": "bench.echo", "samp.params": {"x": "1"}}
    times, lost = [], 0
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            sender.call_and_wait(recipient, message, "2")
        except stack.samp.SAMPProxyError as exc:
            if exc.faultCode != TIMEOUT_FAULT:
                raise
            lost += 1  # astropy's hub drops replies that beat its bookkeeping
            continue
        times.append(time.perf_counter() - t0)
    rate = len(times) / sum(times) if times else 0.0
    return rate, "lost %d/%d replies" % (lost, count) if lost else ""


def bench_register(stack, count):
    """register + unregister cycles per second through one hub proxy."""
    proxy = stack.samp.SAMPHubProxy()
    proxy.connect(hub=stack.hub)
    secret = proxy.lockfile["samp.secret"]
    start = time.perf_counter()
    for _ in range(count):
        key = proxy.register(secret)["samp.private-key"]
        proxy.unregister(key)
    rate = count / (time.perf_counter() - start)
    proxy.disconnect()
    return rate, ""


def bench_connect(stack, count):
    """SAMPIntegratedClient connect + disconnect cycles per second."""
    cli = stack.samp.SAMPIntegratedClient(name="bench")
    start = time.perf_counter()
    for _ in range(count):
        cli.connect(hub=stack.hub)
        cli.disconnect()
    return count / (time.perf_counter() - start), ""


BENCHES = [
    # name, function, count for astropy, count for samp_compat, target ratio
    ("notify round trip", bench_notify, 400, 2000, 3.0),
    ("callAndWait round trip", bench_call_and_wait, 150, 1500, 10.0),
    ("register+unregister", bench_register, 200, 1000, None),
    ("connect+disconnect", bench_connect, 20, 200, 10.0),
]


def _run(stack_name, bench, count, tmp):
    stack = _Stack(stack_name, tmp)
    try:
        return bench(stack, count)
    finally:
        stack.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every operation count by this factor")
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternate the two stacks this many times; the best rate counts")
    parser.add_argument("--pin", action="store_true",
                        help="run on one CPU (where os.sched_setaffinity exists): the rates "
                             "of threaded stacks then no longer depend on where the "
                             "scheduler places their threads")
    args = parser.parse_args(argv)
    if args.pin:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        else:
            print("--pin: not supported on this platform; running unpinned")
    import logging
    _load("astropy")  # astropy installs its own logger class first
    logging.getLogger("astropy").setLevel(logging.WARNING)
    tmp = tempfile.mkdtemp(prefix="bench_samp_")
    os.environ["HOME"] = tmp  # never touch the real ~/.samp
    os.environ.pop("SAMP_HUB", None)
    print("%-24s %14s %14s %8s %8s  %s" % ("benchmark", "astropy ops/s", "compat ops/s",
                                            "ratio", "target", "notes"))
    failed = False
    for name, bench, n_astropy, n_compat, target in BENCHES:
        ref = ours = 0.0
        ref_note = our_note = ""
        for _ in range(max(1, args.repeat)):
            rate, note = _run("astropy", bench, max(1, int(n_astropy * args.scale)), tmp)
            if rate > ref:
                ref, ref_note = rate, note
            rate, note = _run("samp_compat", bench, max(1, int(n_compat * args.scale)), tmp)
            if rate > ours:
                ours, our_note = rate, note
        ratio = ours / ref if ref else float("inf")
        notes = "; ".join(n for n in ("astropy: " + ref_note if ref_note else "",
                                      "compat: " + our_note if our_note else "") if n)
        mark = "" if target is None else ("%.0fx" % target)
        if target is not None and ratio < target:
            failed = True
            notes = (notes + "; " if notes else "") + "BELOW TARGET"
        print("%-24s %14.1f %14.1f %7.1fx %8s  %s" % (name, ref, ours, ratio, mark, notes))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
