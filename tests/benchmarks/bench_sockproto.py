"""sockproto over TCP on 127.0.0.1, beside the physical limit, server and client in two processes.

For pure_json_protocol and struct_json_protocol, with the server in its own
process:

* **round trips**: the client sends a request and blocks in ``receive()``
  for its response (the blocking API), again and again;
* **callback round trips**: the response callback sends the next request;
  the caller waits until the last response has come;
* **one-way messages/s**: the client sends messages that a server callback
  counts, then one request whose answer proves they were all handled.

Beside them, in the same run, the physical limit of each shape: a bare
``selectors`` server in its own process answering each newline-ended
request inline, and a client that sends one request and blocks on ``recv``
(requests and replies the size of the protocol's frames); for one-way
messages, one ``send`` per message to that server and one answer at the end.
Every figure is the median of several runs, the limits being measured in
each run between the others; ratios are medians over medians, and beside
them ("per run") the median of each run's ratio to the limit measured next
to it. Beside the blocking round trips, the same bare server and client
encoding and decoding each message with the protocol's own frame functions
(stp framing, JSON, checksum) and nothing else: what any Python
implementation of the protocol pays at least. For the blocking round trips
the CPU time (user + system) per round trip of each process follows: of the
client, of the server, and of the limit's client. The same
figures with the server in a thread of the client's process follow, for
those who run both ends in one process (tests, simulators).

The original socket_protocol is not on the package index and cannot be
installed here, so there is no column for it.

Run: ``python tests/benchmarks/bench_sockproto.py [--quick] [--runs N]``
"""
import argparse
import contextlib
import os
import resource
import socket
import statistics
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from benchlib import (LOOPBACK, Codec, ServerProcess, blocking_round_trips, codec_round_trips,
                      serve_bare_selectors, serve_codec_shape, wait_for_stop)

from sockproto import (SID_EXECUTE_REQUEST, SID_EXECUTE_RESPONSE, STATUS_OKAY, pure_json_protocol,
                       struct_json_protocol)
from sockproto.codec import StpDecoder, stp_encode
from sockproto.tcp import tcp_client_stp, tcp_server_stp

#: The services of the benchmark: EXECUTE echoes; ONE_WAY's responses are counted.
ONE_WAY_SID = (40, 41)
COUNT_DID = 1  # EXECUTE with this Data-ID answers the count of one-way messages
PAYLOAD = {"value": 1, "text": "hello"}
WAIT = 10.0
QUIET = 5  # log level of the comm's raw RX lines: below INFO, off
PROTOCOLS = {"pure_json_protocol": pure_json_protocol, "struct_json_protocol": struct_json_protocol}
ORIGINAL_NOTE = ("the original socket_protocol is not on the package index and cannot be installed "
                 "here: no column for it")


def frame_size(protocol_name: str) -> int:
    """Bytes on the wire of one benchmark request (stp framing included)."""
    encode = PROTOCOLS[protocol_name]._encode_frame
    return len(stp_encode(encode(STATUS_OKAY, SID_EXECUTE_REQUEST, 0, PAYLOAD)))


def _line(size: int) -> bytes:
    return b"x" * (size - 1) + b"\n"


# -- the limit with the protocol's encoding ------------------------------------------------

class _StpCodec(Codec):
    """stp framing and a protocol's frame encoding, without the library around them."""

    protocol_name = ""

    def __init__(self) -> None:
        protocol = PROTOCOLS[self.protocol_name]
        self._encode = protocol._encode_frame
        self._decode = protocol._decode_frame
        self._feed = StpDecoder().feed

    def answer(self, data: bytes) -> bytes:
        encode, decode = self._encode, self._decode
        return b"".join(stp_encode(encode(STATUS_OKAY, SID_EXECUTE_RESPONSE, msg["data_id"],
                                          msg["data"]))
                        for msg in map(decode, self._feed(data)))

    def exchange(self, sock: socket.socket) -> None:
        sock.sendall(stp_encode(self._encode(STATUS_OKAY, SID_EXECUTE_REQUEST, 0, PAYLOAD)))
        frames: List[Any] = []
        while not frames:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("server closed")
            frames = self._feed(data)
        self._decode(frames[0])


class PureCodec(_StpCodec):
    protocol_name = "pure_json_protocol"


class StructCodec(_StpCodec):
    protocol_name = "struct_json_protocol"


CODECS = {"pure_json_protocol": PureCodec, "struct_json_protocol": StructCodec}


# -- the sockproto server --------------------------------------------------------------

def start_server(protocol_name: str) -> Tuple[tcp_server_stp, Any]:
    """A server protocol that echoes EXECUTE requests and counts one-way messages."""
    comm = tcp_server_stp(LOOPBACK, 0, rx_log_lvl=QUIET)
    prot = PROTOCOLS[protocol_name](comm)
    prot.add_service(*ONE_WAY_SID)
    count = [0]

    def one_way(msg: Any) -> None:
        count[0] += 1

    prot.register_callback(ONE_WAY_SID[1], None, one_way)
    prot.register_callback(SID_EXECUTE_REQUEST, None, lambda msg: (STATUS_OKAY, msg.get_data()))
    prot.register_callback(SID_EXECUTE_REQUEST, COUNT_DID, lambda msg: (STATUS_OKAY, count[0]))
    return comm, prot


def serve_sockproto(pipe: Any, protocol_name: str) -> None:
    comm, _prot = start_server(protocol_name)
    pipe.send((comm.port, os.getpid()))
    wait_for_stop(pipe)
    comm.close()


# -- CPU time ------------------------------------------------------------------------------

def own_cpu() -> float:
    """Seconds of CPU (user + system) used by this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: Optional[int]) -> Optional[float]:
    """Seconds of CPU (user + system) used by process ``pid`` so far; None where unknown."""
    if pid is None:
        return None
    try:
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:  # not Linux
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU microseconds per operation of this process and of a server process."""

    def __init__(self, server_pid: Optional[int] = None) -> None:
        self._server_pid = server_pid
        self._own = own_cpu()
        self._server = process_cpu(server_pid)

    def per_operation(self, count: int) -> Tuple[float, Optional[float]]:
        own = (own_cpu() - self._own) / count * 1e6
        server = process_cpu(self._server_pid)
        if server is None or self._server is None:
            return own, None
        return own, (server - self._server) / count * 1e6


# -- the client's measures ---------------------------------------------------------------

class Client:
    """A client protocol connected to ``port``, with the measures of the benchmark."""

    def __init__(self, port: int, protocol_name: str, server_pid: Optional[int] = None) -> None:
        self.server_pid = server_pid
        self.cpu: Tuple[float, Optional[float]] = (0.0, None)
        self.comm = tcp_client_stp(LOOPBACK, port, rx_log_lvl=QUIET)
        self.prot = PROTOCOLS[protocol_name](self.comm)
        self.prot.add_service(*ONE_WAY_SID)
        if not self.comm.wait_connected(WAIT):
            self.comm.close()
            raise RuntimeError("no connection to the server on port %d" % port)

    def close(self) -> None:
        self.comm.close()

    def round_trips(self, seconds: float) -> float:
        """Round trips/s of ``send`` + ``receive``; their CPU time is left in ``cpu``."""
        send, receive = self.prot.send, self.prot.receive
        count = 0
        meter = CpuMeter(self.server_pid)
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            send(SID_EXECUTE_REQUEST, 0, PAYLOAD)
            if receive(SID_EXECUTE_RESPONSE, 0, WAIT) is None:
                raise RuntimeError("no response within %s s" % WAIT)
            count += 1
            if not count % 64 and time.perf_counter() >= deadline:
                break
        rate = count / (time.perf_counter() - start)
        self.cpu = meter.per_operation(count)
        return rate

    def callback_round_trips(self, seconds: float) -> float:
        """Round trips/s when the response callback sends the next request."""
        prot = self.prot
        done = threading.Event()
        count = [0]
        deadline = [0.0]

        def on_response(msg: Any) -> None:
            count[0] += 1
            if count[0] % 64 or time.perf_counter() < deadline[0]:
                prot.send(SID_EXECUTE_REQUEST, 0, PAYLOAD)
            else:
                done.set()

        prot.register_callback(SID_EXECUTE_RESPONSE, 0, on_response)
        try:
            start = time.perf_counter()
            deadline[0] = start + seconds
            prot.send(SID_EXECUTE_REQUEST, 0, PAYLOAD)
            if not done.wait(seconds + WAIT):
                raise RuntimeError("callback round trips stalled after %d" % count[0])
            return count[0] / (time.perf_counter() - start)
        finally:
            prot.register_callback(SID_EXECUTE_RESPONSE, 0, None)

    def count(self) -> int:
        self.prot.send(SID_EXECUTE_REQUEST, COUNT_DID, None)
        msg = self.prot.receive(SID_EXECUTE_RESPONSE, COUNT_DID, WAIT)
        if msg is None:
            raise RuntimeError("no answer to the count request")
        return msg.get_data()

    def one_way(self, count: int) -> float:
        """Messages/s of ``count`` one-way messages, the last one known handled."""
        send = self.prot.send
        before = self.count()
        start = time.perf_counter()
        for _ in range(count):
            send(ONE_WAY_SID[1], 0, PAYLOAD)
        counted = self.count() - before
        rate = count / (time.perf_counter() - start)
        if counted != count:
            raise RuntimeError("server counted %d of %d messages" % (counted, count))
        return rate


# -- the physical limit of one-way messages ---------------------------------------------

def blocking_one_way(port: int, size: int, count: int) -> float:
    """Messages/s of one ``send`` per message to the bare server, one answer at the end."""
    message = b"x" * size
    with socket.create_connection((LOOPBACK, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send = sock.send
        start = time.perf_counter()
        for _ in range(count):
            if send(message) != size:
                raise RuntimeError("short send")
        sock.sendall(b"\n")
        if not sock.recv(65536):
            raise ConnectionError("server closed")
        return count / (time.perf_counter() - start)


# -- runs and tables ---------------------------------------------------------------------------

Figures = Dict[str, List[float]]


def measure_run(figures: Figures, limit_ports: Dict[str, int], codec_ports: Dict[str, int],
                servers: Dict[str, Tuple[int, Optional[int]]], seconds: float, one_way_count: int,
                where: str) -> None:
    """One run of every figure; the limits are measured between the protocols' figures.

    ``servers`` gives each protocol's server as (port, process id or None);
    ``codec_ports`` the limit's server with the protocol's encoding.
    """
    add = figures.setdefault
    for protocol_name, (port, server_pid) in servers.items():
        size = frame_size(protocol_name)
        limit_port = limit_ports[protocol_name]
        meter = CpuMeter()
        started = time.perf_counter()
        limit_rt = blocking_round_trips(limit_port, _line(size), size, seconds)
        add("limit round trips %s" % protocol_name, []).append(limit_rt)
        add("limit cpu client %s" % protocol_name, []).append(
            meter.per_operation(max(1, round(limit_rt * (time.perf_counter() - started))))[0])
        add("codec round trips %s" % protocol_name, []).append(
            codec_round_trips(codec_ports[protocol_name], CODECS[protocol_name](), seconds))
        client = Client(port, protocol_name, server_pid)
        try:
            client.round_trips(min(0.2, seconds))  # warm-up
            add("%s round trips %s" % (where, protocol_name), []).append(client.round_trips(seconds))
            client_cpu, server_cpu = client.cpu
            add("%s cpu client %s" % (where, protocol_name), []).append(client_cpu)
            if server_cpu is not None:
                add("%s cpu server %s" % (where, protocol_name), []).append(server_cpu)
            add("%s callback round trips %s" % (where, protocol_name), []).append(
                client.callback_round_trips(seconds))
            add("%s one-way messages %s" % (where, protocol_name), []).append(client.one_way(one_way_count))
        finally:
            client.close()
        limit_ow = blocking_one_way(limit_port, size, one_way_count)
        add("limit one-way %s" % protocol_name, []).append(limit_ow)


def print_tables(figures: Figures, where: str, title: str) -> None:
    median = {name: statistics.median(values) for name, values in figures.items()}
    print("\n%s" % title)
    print("  %-22s %-22s %11s %11s %6s %8s  %s" % ("protocol", "measure (per second)", "sockproto",
                                                   "limit", "ratio", "per run", "runs of sockproto"))
    for protocol_name in PROTOCOLS:
        for measure, limit_name in (("round trips", "limit round trips"),
                                    ("callback round trips", "limit round trips"),
                                    ("one-way messages", "limit one-way")):
            name = "%s %s %s" % (where, measure, protocol_name)
            if name not in median:
                continue
            limit_key = "%s %s" % (limit_name, protocol_name)
            limit = median[limit_key]
            # Each run's ratio to the limit measured beside it: steadier when the load changes.
            per_run = statistics.median(value / run_limit for value, run_limit
                                        in zip(figures[name], figures[limit_key]))
            runs = " ".join("%.0f" % value for value in figures[name])
            print("  %-22s %-22s %11.0f %11.0f %5.2fx %7.2fx  %s" % (
                protocol_name, measure, median[name], limit, median[name] / limit, per_run, runs))
    print("  Blocking round trips beside the limit with the protocol's encoding (its server and "
          "client\n  encode and decode each message, nothing else), medians:")
    for protocol_name in PROTOCOLS:
        name = "%s round trips %s" % (where, protocol_name)
        codec_key = "codec round trips %s" % protocol_name
        if name not in median or codec_key not in median:
            continue
        codec = median[codec_key]
        limit = median["limit round trips %s" % protocol_name]
        per_run = statistics.median(value / run_codec for value, run_codec
                                    in zip(figures[name], figures[codec_key]))
        print("  %-22s with encoding %7.0f/s = %4.2fx the limit; sockproto %4.2fx of it "
              "(per run %4.2fx)" % (protocol_name, codec, codec / limit, median[name] / codec, per_run))
    print("  CPU time (user + system) per blocking round trip, medians:")
    for protocol_name in PROTOCOLS:
        client = median.get("%s cpu client %s" % (where, protocol_name))
        if client is None:
            continue
        server = median.get("%s cpu server %s" % (where, protocol_name))
        limit = median["limit cpu client %s" % protocol_name]
        print("  %-22s client %5.1f us, server %s; the limit's client %5.1f us" % (
            protocol_name, client, "%5.1f us" % server if server is not None else
            "(in the client's process)", limit))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter and fewer runs")
    parser.add_argument("--runs", type=int, help="runs per figure (median taken)")
    parser.add_argument("--no-thread", action="store_true",
                        help="skip the figures with the server in the client's process")
    args = parser.parse_args()
    seconds, runs, one_way_count = (0.5, 3, 10_000) if args.quick else (2.0, 5, 50_000)
    if args.runs:
        runs = args.runs
    print("sockproto over TCP on %s: %d runs of %.1f s per round-trip figure, %d one-way messages"
          % (LOOPBACK, runs, seconds, one_way_count))
    print(ORIGINAL_NOTE)
    print("load average at start: %.2f %.2f %.2f (%d CPUs)" % (os.getloadavg() + (os.cpu_count(),)))
    for name in PROTOCOLS:
        print("  %s: %d bytes per request and per reply on the wire" % (name, frame_size(name)))
    process_figures: Figures = {}
    with contextlib.ExitStack() as stack:
        # A bare server per frame size (it answers each line with a reply of that size).
        limit_ports = {name: stack.enter_context(ServerProcess(serve_bare_selectors,
                                                               _line(frame_size(name))))
                       for name in PROTOCOLS}
        codec_ports = {name: stack.enter_context(ServerProcess(serve_codec_shape, CODECS[name]))
                       for name in PROTOCOLS}
        servers = {name: stack.enter_context(ServerProcess(serve_sockproto, name))
                   for name in PROTOCOLS}
        for _ in range(runs):
            measure_run(process_figures, limit_ports, codec_ports, servers, seconds, one_way_count, "process")
        print_tables(process_figures, "process",
                     "server in another process (medians; ratio to the physical limit)")
        if args.no_thread:
            return
        thread_figures: Figures = {}
        comms = {name: start_server(name)[0] for name in PROTOCOLS}
        try:
            in_process: Dict[str, Tuple[int, Optional[int]]] = {
                name: (comm.port, None) for name, comm in comms.items()}
            for _ in range(runs):
                measure_run(thread_figures, limit_ports, codec_ports, in_process, seconds, one_way_count, "thread")
        finally:
            for comm in comms.values():
                comm.close()
        print_tables(thread_figures, "thread",
                     "server in a thread of the client's process (medians; the limit is still "
                     "two processes)")

if __name__ == "__main__":
    main()
