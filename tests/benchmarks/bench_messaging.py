"""Throughput of protocompat.messaging (clever-show's lib.messaging) between two processes over loopback.

Run: ``python tests/benchmarks/bench_messaging.py [--quick]``

Measures one-way action messages per second, request/response round trips
per second (one at a time and ten in flight) and file transfer MB/s for a
50 MB file at the default ``buffer_size`` (1024) and at 64 KiB. A peer
process (this script with ``--peer``) receives and answers.

The round-trip rate with one request in flight is a latency figure: every
round trip wakes both processes once, and what a wake-up costs depends on the
machine (other load, the two processes on one CPU or on two, virtualisation),
so it varies from run to run more than the CPU the module spends. The script
therefore also prints this process's CPU time per round trip.

No copy of clever-show's original module is installed, so there is no
side-by-side run of it. For comparison the script times a *reconstruction of
the upstream buffering algorithm* (receiver ``income_raw += chunk`` and
sender ``buffer = buffer[sent:]`` per ``buffer_size`` chunk, written here
from the published description, not upstream code); it is quadratic in the
file size. The upstream figures measured on a 2-core machine and published
with the module's description are printed for reference.
"""
import argparse
import concurrent.futures
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "test_messaging"))  # the tests' peer loop

from messaging_node import Node  # noqa: E402

from protocompat import messaging  # noqa: E402

TARGET_MESSAGES = 40_000
TARGET_ROUND_TRIPS = 10_000
TARGET_MB_S = 100.0
MB = 1_000_000
WAIT = 120.0
UPSTREAM_REFERENCE = {
    "messages/s": "about 40,000",
    "round trips/s": "1,300 to 4,600 (1 s stalls from a lost wake-up)",
    "file MB/s, buffer 1024": "0.45 for 10 MB; 50 MB did not finish in 11 minutes",
    "file MB/s, buffer 64 KiB": "3.9 for 50 MB",
}


# -- peer process --------------------------------------------------------
def run_peer() -> None:
    counter = [0]

    @messaging.message_callback("tick")
    def tick(connection, i):
        counter[0] += 1

    @messaging.request_callback("count")
    def count(connection):
        return counter[0]

    @messaging.request_callback("echo")
    def echo(connection, value):
        return value

    @messaging.request_callback("size")
    def size(connection, path):
        result = os.path.getsize(path)
        os.unlink(path)
        return result

    node = Node("bench-peer")
    node.on_connect = lambda c: setattr(c, "buffer_size", int(sys.argv[-1]))
    _, port = node.listen()
    print(port, flush=True)
    node.start()
    sys.stdin.read()  # runs until the parent closes stdin
    node.stop()


# -- measurements --------------------------------------------------------
# CPU time (user + system) of this process per round trip, by requests in flight. The
# round-trip rate with one in flight is a latency: it also counts both processes'
# wake-ups, which vary with the machine's load; this figure does not.
cpu_us = {}


def call(connection, name, *args):
    future = concurrent.futures.Future()
    connection.get_response(name, lambda c, v: future.set_result(v), request_args=args)
    return future.result(WAIT)


def one_way(connection, count):
    start_count = call(connection, "count")
    t0 = time.perf_counter()
    for i in range(count):
        connection.send_message("tick", [i])
    got = call(connection, "count")
    elapsed = time.perf_counter() - t0
    assert got - start_count == count, (got, start_count, count)
    return count / elapsed


def round_trips(connection, count, in_flight):
    done = threading.Event()
    left = [count]
    sent = [0]
    lock = threading.Lock()

    def answered(c, value):
        with lock:
            left[0] -= 1
            if left[0] == 0:
                done.set()
            more = sent[0] < count
            if more:
                sent[0] += 1
        if more:
            c.get_response("echo", answered, request_args=(value,))

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    with lock:
        first = min(in_flight, count)
        sent[0] = first
    for i in range(first):
        connection.get_response("echo", answered, request_args=(i,))
    if not done.wait(WAIT):
        raise TimeoutError("round trips did not finish")
    elapsed = time.perf_counter() - t0
    cpu_us[in_flight] = (time.process_time() - cpu0) / count * 1e6
    return count / elapsed


def file_transfer(connection, path, size, directory):
    dest = os.path.join(directory, "received.bin")
    t0 = time.perf_counter()
    connection.send_file(path, dest)
    got = call(connection, "size", dest)
    elapsed = time.perf_counter() - t0
    assert got == size, (got, size)
    return size / MB / elapsed


def upstream_buffering_reconstruction(size, chunk):
    """MB/s of the quadratic buffer handling described for upstream (no sockets)."""
    data = os.urandom(size)
    t0 = time.perf_counter()
    outgoing = data
    income_raw = b""
    while outgoing:
        piece = outgoing[:chunk]
        outgoing = outgoing[len(piece):]  # sender: buffer = buffer[sent:]
        income_raw += piece               # receiver: income_raw += chunk
    elapsed = time.perf_counter() - t0
    assert len(income_raw) == size
    return size / MB / elapsed


def with_peer(buffer_size, body):
    peer = subprocess.Popen([sys.executable, __file__, "--peer", str(buffer_size)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    node = Node("bench")
    try:
        port = int(peer.stdout.readline())
        node.start()
        connection = messaging.ConnectionManager()
        connection.buffer_size = buffer_size
        node.connect("127.0.0.1", port, connection)
        return body(connection)
    finally:
        node.stop()
        messaging.NotifierSock().close()
        peer.stdin.close()
        peer.wait(WAIT)


def line(name, value, target, unit):
    status = "ok" if value >= target else "BELOW TARGET"
    print("%-36s %12.0f %-6s (target %s %s: %s)" % (name, value, unit, format(target, ","), unit, status)
          if unit != "MB/s" else
          "%-36s %12.1f %-6s (target %s %s: %s)" % (name, value, unit, target, unit, status))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller counts, 10 MB file")
    args = parser.parse_args()
    messages = 30_000 if args.quick else 100_000
    trips = 5_000 if args.quick else 20_000
    file_size = (10 if args.quick else 50) * MB

    results = {}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "payload.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(file_size))

        def small(connection):
            one_way(connection, 2000)  # warm-up
            results["one-way messages/s"] = one_way(connection, messages)
            results["round trips/s (1 in flight)"] = round_trips(connection, trips, 1)
            results["round trips/s (10 in flight)"] = round_trips(connection, trips, 10)
            results["file MB/s, buffer 1024"] = file_transfer(connection, path, file_size, directory)
        with_peer(1024, small)
        results["file MB/s, buffer 64 KiB"] = with_peer(
            64 * 1024, lambda c: file_transfer(c, path, file_size, directory))

    print("protocompat.messaging, two processes over loopback (%d MB file)" % (file_size // MB))
    line("one-way messages/s", results["one-way messages/s"], TARGET_MESSAGES, "msg/s")
    line("round trips/s (1 in flight)", results["round trips/s (1 in flight)"], TARGET_ROUND_TRIPS, "rt/s")
    line("round trips/s (10 in flight)", results["round trips/s (10 in flight)"], TARGET_ROUND_TRIPS,
         "rt/s")
    print("%-36s %12.1f us/rt (1 in flight), %.1f us/rt (10 in flight)"
          % ("client CPU per round trip", cpu_us[1], cpu_us[10]))
    line("file, buffer_size 1024", results["file MB/s, buffer 1024"], TARGET_MB_S, "MB/s")
    line("file, buffer_size 64 KiB", results["file MB/s, buffer 64 KiB"], TARGET_MB_S, "MB/s")

    print()
    print("Reconstruction of the upstream buffering algorithm (quadratic; not upstream code):")
    for size_mb, chunk in ((2, 1024), (5, 1024), (10, 64 * 1024)):
        rate = upstream_buffering_reconstruction(size_mb * MB, chunk)
        print("  %2d MB in %5d-byte chunks: %8.2f MB/s (buffer handling alone)" % (size_mb, chunk, rate))
    print("Published upstream-to-upstream measurements (reference, not run here):")
    for name, value in UPSTREAM_REFERENCE.items():
        print("  %-26s %s" % (name, value))


if __name__ == "__main__":
    # Disconnections at the end of each run are expected; show errors only.
    logging.basicConfig(level=logging.ERROR)
    if "--peer" in sys.argv:
        run_peer()
    else:
        main()
