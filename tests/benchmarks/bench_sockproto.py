"""Throughput of sockproto over TCP on 127.0.0.1.

Measures, with pure_json_protocol (and struct_json_protocol):

* one-way messages/s: the client sends N response-type messages that a
  server callback counts, then one request; its answer proves all N were
  handled;
* request/response round trips/s: send a request, wait for its response
  with ``receive()``, repeat. The round trips run in batches; the median
  and the best batch are printed, since on a loaded machine single runs
  vary a lot. "CPU us/trip" is the CPU time (user + system, all threads)
  of the client's process per round trip; with the server in the same
  process it includes the server's share.

The server runs in a separate process (as it would in use), and once more
in a thread of the client's process for comparison. The original
socket_protocol cannot be installed here, so the numbers are printed as
absolute values against the target of 10,000 round trips/s.

Run: ``python tests/benchmarks/bench_sockproto.py [--quick]``
"""
import argparse
import multiprocessing
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from sockproto import (  # noqa: E402
    SID_EXECUTE_REQUEST, SID_EXECUTE_RESPONSE, STATUS_OKAY, pure_json_protocol, struct_json_protocol,
)
from sockproto.tcp import tcp_client_stp, tcp_server_stp  # noqa: E402

TARGET_ROUND_TRIPS = 10_000
ONE_WAY_SID = (40, 41)  # a service whose responses carry the one-way messages
WAIT = 10.0
BATCHES = 5
PROTOCOLS = {"pure_json_protocol": pure_json_protocol, "struct_json_protocol": struct_json_protocol}


def _serve(protocol_name, port_out=None):
    """Start a server protocol: echo on EXECUTE, count one-way messages; return its comm."""
    comm = tcp_server_stp("127.0.0.1", 0, rx_log_lvl=5)
    prot = PROTOCOLS[protocol_name](comm)
    prot.add_service(*ONE_WAY_SID)
    count = [0]

    def one_way(msg):
        count[0] += 1

    prot.register_callback(ONE_WAY_SID[1], None, one_way)
    prot.register_callback(SID_EXECUTE_REQUEST, None, lambda msg: (STATUS_OKAY, msg.get_data()))
    prot.register_callback(SID_EXECUTE_REQUEST, 1, lambda msg: (STATUS_OKAY, count[0]))
    return comm


def _server_process(protocol_name, pipe):
    comm = _serve(protocol_name)
    pipe.send(comm.port)
    pipe.recv()  # until the benchmark is done
    comm.close()


def _client(port, protocol_name):
    comm = tcp_client_stp("127.0.0.1", port, rx_log_lvl=5)
    prot = PROTOCOLS[protocol_name](comm)
    prot.add_service(*ONE_WAY_SID)
    if not comm.wait_connected(WAIT):
        raise RuntimeError("no connection to the server")
    return comm, prot


def round_trips(prot, count):
    """Run ``count`` round trips; return (round trips/s, CPU seconds of this process)."""
    payload = {"value": 1, "text": "hello"}
    cpu = time.process_time()
    start = time.perf_counter()
    for i in range(count):
        prot.send(SID_EXECUTE_REQUEST, 0, payload)
        if prot.receive(SID_EXECUTE_RESPONSE, 0, timeout=WAIT) is None:
            raise RuntimeError("no response")
    return count / (time.perf_counter() - start), time.process_time() - cpu


def round_trip_batches(prot, count):
    """Round trips in BATCHES batches: (median rate, best rate, CPU microseconds per round trip)."""
    per_batch = max(1, count // BATCHES)
    results = [round_trips(prot, per_batch) for _ in range(BATCHES)]
    rates = [rate for rate, _ in results]
    cpu_us = sum(cpu for _, cpu in results) / (per_batch * BATCHES) * 1e6
    return statistics.median(rates), max(rates), cpu_us


def one_way(prot, count):
    payload = {"value": 1, "text": "hello"}
    prot.send(SID_EXECUTE_REQUEST, 1, None)
    before = prot.receive(SID_EXECUTE_RESPONSE, 1, timeout=WAIT).get_data()
    start = time.perf_counter()
    for _ in range(count):
        prot.send(ONE_WAY_SID[1], 0, payload)
    prot.send(SID_EXECUTE_REQUEST, 1, None)
    counted = prot.receive(SID_EXECUTE_RESPONSE, 1, timeout=WAIT).get_data()
    rate = count / (time.perf_counter() - start)
    if counted - before != count:
        raise RuntimeError("server counted %d of %d messages" % (counted - before, count))
    return rate


def run(protocol_name, where, n_rt, n_ow):
    if where == "process":
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_server_process, args=(protocol_name, theirs), daemon=True)
        proc.start()
        port = ours.recv()
        server = None
    else:
        server = _serve(protocol_name)
        port = server.port
    comm, prot = _client(port, protocol_name)
    try:
        round_trips(prot, min(500, n_rt))  # warm-up
        rt = round_trip_batches(prot, n_rt)
        ow = one_way(prot, n_ow)
    finally:
        comm.close()
        if server is not None:
            server.close()
        else:
            ours.send("stop")
            proc.join(WAIT)
    return rt, ow


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    args = parser.parse_args()
    n_rt, n_ow = (2_000, 10_000) if args.quick else (20_000, 100_000)
    print("sockproto over TCP on 127.0.0.1 (%d round trips, %d one-way messages per run)" % (n_rt, n_ow))
    print("no original socket_protocol is installable: absolute numbers, target %d round trips/s"
          % TARGET_ROUND_TRIPS)
    print("load average at start: %.2f %.2f %.2f (%d CPUs)" % (os.getloadavg() + (os.cpu_count(),)))
    print("%-22s %-14s %14s %9s %8s %12s %15s" % (
        "protocol", "server", "round trips/s", "best", "target", "CPU us/trip", "one-way msgs/s"))
    for protocol_name in PROTOCOLS:
        for where in ("process", "thread"):
            (rt, best, cpu_us), ow = run(protocol_name, where, n_rt, n_ow)
            print("%-22s %-14s %14.0f %9.0f %7.2fx %12.1f %15.0f" % (
                protocol_name, "other process" if where == "process" else "same process",
                rt, best, rt / TARGET_ROUND_TRIPS, cpu_us, ow))


if __name__ == "__main__":
    main()
