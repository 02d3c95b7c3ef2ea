"""katcp_compat against katcp 0.9.3, side by side in one process.

Run: ``python tests/benchmarks/bench_katcp.py [--quick]``. Prints, for each
measurement, both numbers (the median of three alternating runs) and the
ratio ours / theirs:

* blocking ``?watchdog`` round trips per second, 1 client and 8 clients;
* ``#sensor-status`` events delivered per second (``auto`` strategy);
* connect + greeting + disconnect cycles per second (raw sockets);
* 1000 clients held by one server (in a fresh process each): resident memory
  per client and
  errors (each client sends one ``?watchdog``). Both ends of every connection
  are in that process, so it needs some 2,000 descriptors: it raises its soft
  limit (often 1,024) up to the hard one, and says so if that is too low.
"""

import argparse
import gc
import logging
import os
import resource
import selectors
import socket
import sys
import threading
import time
import subprocess
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import katcp  # noqa: E402  (the original, as the reference)

import katcp_compat  # noqa: E402

WAIT = 10.0


# --------------------------------------------------------------------------- devices

def make_device(lib):
    class Device(lib.DeviceServer):
        VERSION_INFO = ("bench", 1, 0)
        BUILD_INFO = ("bench", 1, 0, "")

        def setup_sensors(self):
            self.counter = lib.Sensor.integer("counter", "A counter", "", [0, 10 ** 9])
            self.add_sensor(self.counter)

    return Device


def start_server(lib):
    server = make_device(lib)("127.0.0.1", 0)
    server.start(timeout=WAIT)
    return server


def stop_server(server):
    server.stop()
    server.join(timeout=WAIT)


def start_client(lib, server, cls=None):
    client = (cls or lib.BlockingClient)(*server.bind_address)
    client.start(timeout=WAIT)
    assert client.wait_protocol(WAIT)
    return client


def stop_client(client):
    client.stop()
    client.join(timeout=WAIT)


# --------------------------------------------------------------------------- measurements

def round_trips(lib, n_clients, duration):
    server = start_server(lib)
    clients = [start_client(lib, server) for _ in range(n_clients)]
    counts = [0] * n_clients
    errors = [0]
    stop_at = [0.0]
    go = threading.Event()

    def work(i):
        client = clients[i]
        go.wait()
        while time.monotonic() < stop_at[0]:
            reply, _ = client.blocking_request(lib.Message.request("watchdog"))
            if not reply.reply_ok():
                errors[0] += 1
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    start = time.monotonic()
    stop_at[0] = start + duration
    go.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    for client in clients:
        stop_client(client)
    stop_server(server)
    return sum(counts) / elapsed, errors[0]


def sensor_events(lib, n_events):
    server = start_server(lib)
    received = [0]
    done = threading.Event()

    class Listener(lib.CallbackClient):
        def inform_sensor_status(self, msg):
            """Count it."""
            received[0] += 1
            if received[0] >= n_events + 1:
                done.set()

    client = start_client(lib, server, Listener)
    reply, _ = client.blocking_request(lib.Message.request("sensor-sampling", "counter", "auto"))
    assert reply.reply_ok(), reply
    counter = server.counter
    start = time.monotonic()
    for i in range(1, n_events + 1):
        counter.set_value(i)
    ok = done.wait(WAIT * 3)
    elapsed = time.monotonic() - start
    stop_client(client)
    stop_server(server)
    return received[0] / elapsed, (n_events + 1 - received[0]) if ok else n_events + 1 - received[0]


def _read_lines(sock, count):
    buf = b""
    while buf.count(b"\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def connect_cycles(lib, duration):
    server = start_server(lib)
    address = server.bind_address
    cycles, errors = 0, 0
    start = time.monotonic()
    while time.monotonic() - start < duration:
        sock = socket.create_connection(address, timeout=WAIT)
        try:
            _read_lines(sock, 3)
            cycles += 1
        except (OSError, EOFError):
            errors += 1
        finally:
            sock.close()
    elapsed = time.monotonic() - start
    stop_server(server)
    return cycles / elapsed, errors


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


#: Descriptors a process needs beyond two per connection (both ends are local).
SPARE_DESCRIPTORS = 256


def _descriptors_for(n_clients):
    """Raise the soft limit on open files for ``n_clients`` connections with both
    ends in this process; return None, or why it cannot be done."""
    needed = 2 * n_clients + SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    if hard != resource.RLIM_INFINITY and hard < needed:
        return "needs %d open files; the hard limit is %d" % (needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return None


def _many_clients_in_child(which, n_clients):
    """Run :func:`many_clients` in a fresh interpreter, so that memory
    measurements do not see the other library's or earlier runs' heap.

    Returns ``(KiB per client, errors)``, or ``(nan, n_clients)`` with the
    child's complaint printed when it could not measure."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--many-clients-child",
                          which, str(n_clients)], capture_output=True, text=True, timeout=300)
    words = out.stdout.split()
    if out.returncode == 0 and len(words) >= 2:
        return float(words[-2]), int(words[-1])
    lines = (out.stderr or out.stdout).strip().splitlines() or ["exit status %d" % out.returncode]
    print("  (%s, %d clients: %s)" % (which, n_clients, lines[-1]))
    return float("nan"), n_clients


def _collect(socks, lines_wanted, deadline):
    """Read from all sockets until each has ``lines_wanted`` more lines or the
    deadline passes; return the sockets that got them and their data."""
    sel = selectors.DefaultSelector()
    data = {}
    for sock in socks:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
        data[sock] = b""
    complete = []
    while data and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            data[sock] += chunk
            if not chunk or data[sock].count(b"\n") >= lines_wanted:
                sel.unregister(sock)
                if chunk:
                    complete.append((sock, data[sock]))
                del data[sock]
    sel.close()
    return complete


def many_clients(lib, n_clients, budget=20.0):
    server = start_server(lib)
    address = server.bind_address
    gc.collect()
    before = _rss_kib()
    deadline = time.monotonic() + budget
    socks = []
    for _ in range(n_clients):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            socks.append(socket.create_connection(address, timeout=min(2.0, remaining)))
        except OSError:
            pass
    greeted = [sock for sock, _ in _collect(socks, 3, deadline)]
    for sock in greeted:
        sock.sendall(b"?watchdog\n")
    replies = _collect(greeted, 1, deadline)
    ok = sum(1 for _, data in replies if data.endswith(b"!watchdog ok\n"))
    gc.collect()
    after = _rss_kib()
    for sock in socks:
        sock.close()
    stop_server(server)
    return (after - before) / n_clients, n_clients - ok


# --------------------------------------------------------------------------- report

def _median_pair(measure, repeats):
    """Run ``measure(lib)`` alternately for both libraries; return the median
    rate of each with the total errors (the machine may be shared, so single
    runs are noisy)."""
    results = {katcp_compat: [], katcp: []}
    for _ in range(repeats):
        for lib in (katcp_compat, katcp):
            results[lib].append(measure(lib))
    pairs = []
    for lib in (katcp_compat, katcp):
        rates = sorted(rate for rate, _ in results[lib])
        pairs.append((rates[len(rates) // 2], sum(err for _, err in results[lib])))
    return pairs


def _row(name, ours, theirs, unit, higher_is_better=True):
    ratio = ours[0] / theirs[0] if theirs[0] else float("inf")
    if not higher_is_better:
        ratio = theirs[0] / ours[0] if ours[0] else float("inf")
    note = "" if not theirs[1] else "   (katcp's figure covers a failed run)"
    print("%-34s %12.1f %12.1f %-10s %6.2fx   errors ours/theirs: %d/%d%s"
          % (name, ours[0], theirs[0], unit, ratio, ours[1], theirs[1], note))
    sys.stdout.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--many-clients-child", nargs=2, metavar=("LIB", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.many_clients_child:
        logging.basicConfig(level=logging.CRITICAL)
        warnings.simplefilter("ignore")
        lib = katcp_compat if args.many_clients_child[0] == "ours" else katcp
        n_clients = int(args.many_clients_child[1])
        problem = _descriptors_for(n_clients)
        if problem:
            sys.exit(problem)
        print("%f %d" % many_clients(lib, n_clients))
        return
    logging.basicConfig(level=logging.CRITICAL)
    warnings.simplefilter("ignore")
    duration = 0.5 if args.quick else 1.5
    n_events = 10000 if args.quick else 30000
    repeats = 1 if args.quick else 3
    print("%-34s %12s %12s %-10s %7s" % ("measurement", "katcp_compat", "katcp 0.9.3", "unit",
                                         "ratio"))
    round_trips(katcp_compat, 1, 0.2)  # warm up both
    round_trips(katcp, 1, 0.2)
    for n in (1, 8):
        _row("watchdog round trips, %d client%s" % (n, "s" if n > 1 else ""),
             *_median_pair(lambda lib: round_trips(lib, n, duration), repeats), "req/s")
    _row("#sensor-status events",
         *_median_pair(lambda lib: sensor_events(lib, n_events), repeats), "events/s")
    _row("connect+disconnect cycles",
         *_median_pair(lambda lib: connect_cycles(lib, duration), repeats), "cycles/s")
    _row("1000 clients: memory per client", _many_clients_in_child("ours", 1000),
         _many_clients_in_child("theirs", 1000), "KiB", higher_is_better=False)


if __name__ == "__main__":
    main()
