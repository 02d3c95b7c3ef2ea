"""protocompat.messaging (clever-show's lib.messaging) between processes, beside the original and the limit.

Run::

    python tests/benchmarks/bench_messaging.py [--quick] [--runs N] [--original PATH]

``--original`` names a copy of clever-show's ``lib/messaging.py`` (also read
from the environment variable ``CLEVER_SHOW_MESSAGING``); without one its
rows say "not installed". The original is loaded from that file in the
benchmark's processes only.

Request round trips, one request in flight, server and client in separate
processes, each repetition running side by side:

* the physical limit (``benchlib``): a bare ``selectors`` server replying
  inline and a client blocking on ``recv``, with requests and replies of the
  size of the messaging frames;
* the limit with the encoding: the same server and client, each encoding
  and decoding every message with the messaging frame functions
  (``MessageManager``) and nothing else of the library: what any Python
  implementation of the protocol pays at least;
* the original and protocompat, each as clever-show runs it: the server is
  the application's selector loop calling ``process_events`` for every ready
  key; the client runs the same loop in one thread, and each response's
  callback sends the next request ("loop"); or a second thread of the client
  calls ``get_response`` and waits for the callback to set an event
  ("caller thread waits").

The medians of the repetitions are printed with their ratio to the limit.
Then protocompat alone, two processes: one-way action messages, round trips
with ten in flight, file transfer (50 MB, at ``buffer_size`` 1024 and 64 KiB);
and in one process (both loops in one process, as tests and simulators run
them): round trips with one in flight.
"""
import argparse
import errno
import importlib.util
import itertools
import logging
import multiprocessing
import os
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402  (puts the repository root on sys.path)
from benchlib import LOOPBACK, ServerProcess  # noqa: E402

PROTOCOMPAT = "protocompat"
MB = 1_000_000
WAIT = 120.0
#: Seconds between checks of the round-trip loop's deadline (it runs select() with this timeout).
SELECT_TIMEOUT = 1.0
#: The original's notifier listens on a random port of 26000-26100; tries before giving up.
NOTIFIER_ATTEMPTS = 20
#: The limit's shape with the messaging encoding at both ends (and nothing else of the library).
WITH_ENCODING = "limit with the encoding"
#: Seconds a caller waits for a response before other traffic is sent to unstick the original.
STALL = 1.0


# -- the modules under test ------------------------------------------------------------

def load_messaging(source: str) -> Any:
    """protocompat.messaging, or the original module loaded from the file ``source``."""
    if source == PROTOCOMPAT:
        from protocompat import messaging
        return messaging
    spec = importlib.util.spec_from_file_location("clever_show_messaging", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def init_notifier(messaging: Any, selector: Any) -> None:
    """``NotifierSock().init(selector)``, again when the original's random port is taken."""
    for _ in range(NOTIFIER_ATTEMPTS):
        try:
            messaging.NotifierSock().init(selector)
            return
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
    raise RuntimeError("no free port for the notifier in %d attempts" % NOTIFIER_ATTEMPTS)


def register_handlers(messaging: Any) -> None:
    counter = [0]

    @messaging.message_callback("tick")
    def tick(connection: Any, i: int) -> None:
        counter[0] += 1

    @messaging.request_callback("count")
    def count(connection: Any) -> int:
        return counter[0]

    @messaging.request_callback("echo")
    def echo(connection: Any, value: Any) -> Any:
        return value

    @messaging.request_callback("size")
    def size(connection: Any, path: str) -> int:
        result = os.path.getsize(path)
        os.unlink(path)
        return result


# -- the server: clever-show's application loop -------------------------------------

def serve_messaging(pipe: Any, source: str, buffer_size: int = 1024) -> None:
    """The application's selector loop calling ``process_events`` for every ready key."""
    logging.basicConfig(level=logging.CRITICAL)
    messaging = load_messaging(source)
    register_handlers(messaging)
    selector = selectors.DefaultSelector()
    init_notifier(messaging, selector)
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(socket.SOMAXCONN)
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    selector.register(pipe.fileno(), selectors.EVENT_READ, "stop")
    pipe.send(listener.getsockname()[1])
    while True:
        for key, mask in selector.select():
            data = key.data
            if data is None:
                sock, addr = listener.accept()
                sock.setblocking(False)
                connection = messaging.ConnectionManager()
                connection.buffer_size = buffer_size
                selector.register(sock, selectors.EVENT_READ, connection)
                connection.connect(selector, sock, addr)
            elif data == "stop":
                return
            else:
                try:
                    data.process_events(mask)
                except Exception:  # the peer left
                    data._close()


# -- clients ------------------------------------------------------------------------

class Client:
    """One connection on a selector loop run by :meth:`run` in the calling thread."""

    def __init__(self, messaging: Any, port: int, buffer_size: int = 1024) -> None:
        self.selector = selectors.DefaultSelector()
        init_notifier(messaging, self.selector)
        sock = socket.create_connection((LOOPBACK, port))
        sock.setblocking(False)
        self.connection = messaging.ConnectionManager()
        self.connection.buffer_size = buffer_size
        self.selector.register(sock, selectors.EVENT_READ, self.connection)
        self.connection.connect(self.selector, sock, sock.getpeername())
        self.running = True

    def run(self, until: Callable[[], bool]) -> None:
        select = self.selector.select
        while not until():
            for key, mask in select(SELECT_TIMEOUT):
                key.data.process_events(mask)

    def close(self) -> None:
        self.connection._close()


def loop_round_trips(messaging: Any, port: int, seconds: float) -> float:
    """Round trips/s when each response's callback sends the next request (one loop thread)."""
    client = Client(messaging, port)
    count = [0]
    stop = [False]
    waiting = [False]  # a request is in flight

    def answered(connection: Any, value: Any) -> None:
        count[0] += 1
        waiting[0] = not stop[0]
        if waiting[0]:
            connection.get_response("echo", answered, request_args=(value,))

    def measure(duration: float) -> float:
        count[0] = 0
        stop[0] = False
        start = time.perf_counter()
        deadline = start + duration
        waiting[0] = True
        client.connection.get_response("echo", answered, request_args=(12345,))

        def finished() -> bool:
            if time.perf_counter() >= deadline:
                stop[0] = True
            return stop[0]
        client.run(finished)
        elapsed = time.perf_counter() - start
        client.run(lambda: not waiting[0])  # the last answer
        return count[0] / elapsed

    try:
        measure(min(0.3, seconds))  # warm-up
        return measure(seconds)
    finally:
        client.close()


def caller_round_trips(messaging: Any, port: int, seconds: float) -> float:
    """Round trips/s of a thread that calls ``get_response`` and waits for the callback."""
    client = Client(messaging, port)
    finished = threading.Event()
    loop = threading.Thread(target=client.run, args=(finished.is_set,), daemon=True)
    loop.start()
    answered = threading.Event()

    def callback(connection: Any, value: Any) -> None:
        answered.set()

    def measure(duration: float) -> float:
        count = 0
        start = time.perf_counter()
        deadline = start + duration
        while True:
            answered.clear()
            client.connection.get_response("echo", callback, request_args=(12345,))
            waited = 0.0
            while not answered.wait(STALL):
                # The original can leave a frame queued with its socket watched for reading
                # only (a lost wake-up); other traffic sends it, as in a real application.
                waited += STALL
                if waited >= WAIT:
                    raise TimeoutError("no response")
                client.connection.send_message("tick", [0])
            count += 1
            if not count % 64 and time.perf_counter() >= deadline:
                break
        return count / (time.perf_counter() - start)

    try:
        measure(min(0.3, seconds))
        return measure(seconds)
    finally:
        finished.set()
        messaging.NotifierSock().notify()
        loop.join(WAIT)
        client.close()


def _client_child(pipe: Any, measure: str, source: str, port: int, seconds: float) -> None:
    logging.basicConfig(level=logging.CRITICAL)
    messaging = load_messaging(source)
    try:
        pipe.send(MEASURES[measure](messaging, port, seconds))
    except Exception as error:  # reported by the parent
        pipe.send(error)


MEASURES: Dict[str, Callable[[Any, int, float], float]] = {
    "loop": loop_round_trips,
    "caller": caller_round_trips,
}


def in_client_process(measure: str, source: str, port: int, seconds: float) -> float:
    """Run a client measure in a new process (the original's notifier can be set up once only)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_client_child, args=(child, measure, source, port, seconds),
                              daemon=True)
    process.start()
    try:
        if not parent.poll(seconds + WAIT):
            raise TimeoutError("the %s client of %s did not finish" % (measure, source))
        result = parent.recv()
    finally:
        process.join(WAIT)
        if process.is_alive():
            process.kill()
    if isinstance(result, Exception):
        raise result
    return float(result)


# -- the physical limit with frames of the messaging sizes -----------------------------

def frame_sizes() -> Tuple[int, int]:
    """Bytes of an ``echo`` request and of its response, as protocompat encodes them."""
    from protocompat.messaging import MessageManager
    request = MessageManager.create_request("echo", "0001", (12345,), {})
    response = MessageManager.create_response("echo", "0001", 12345)
    return len(request), len(response)


def limit_round_trips(port: int, seconds: float) -> float:
    request_size, reply_size = frame_sizes()
    return benchlib.blocking_round_trips(port, b"x" * (request_size - 1) + b"\n", reply_size, seconds)


class MessagingCodec(benchlib.Codec):
    """The messaging frames of an ``echo`` request and its response, without the library."""

    def __init__(self) -> None:
        from protocompat.messaging import MessageManager
        self._manager = MessageManager
        self._feed = MessageManager().feed
        self._ids = itertools.count()

    def answer(self, data: bytes) -> bytes:
        response = self._manager.create_response
        return b"".join(response(content["requested_value"], content["request_id"], content["args"][0])
                        for content in (message.content for message in self._feed(data)))

    def exchange(self, sock: socket.socket) -> None:
        sock.sendall(self._manager.create_request("echo", "%04d" % (next(self._ids) % 10000),
                                                  (12345,), {}))
        messages: List[Any] = []
        while not messages:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("server closed")
            messages = self._feed(data)
        if messages[0].content != {"value": 12345}:
            raise RuntimeError("unexpected response %r" % (messages[0].content,))


# -- protocompat alone: one-way, ten in flight, files ----------------------------------

def call(client: Client, name: str, *args: Any) -> Any:
    """A request answered while the caller runs the loop."""
    result: List[Any] = []
    client.connection.get_response(name, lambda c, value: result.append(value), request_args=args)
    deadline = time.perf_counter() + WAIT
    client.run(lambda: bool(result) or time.perf_counter() > deadline)
    if not result:
        raise TimeoutError("no answer to %s" % name)
    return result[0]


def one_way(client: Client, count: int) -> float:
    start_count = call(client, "count")
    t0 = time.perf_counter()
    for i in range(count):
        client.connection.send_message("tick", [i])
    got = call(client, "count")
    elapsed = time.perf_counter() - t0
    assert got - start_count == count, (got, start_count, count)
    return count / elapsed


def in_flight_round_trips(client: Client, count: int, in_flight: int) -> float:
    left = [count]
    sent = [0]

    def answered(connection: Any, value: Any) -> None:
        left[0] -= 1
        if sent[0] < count:
            sent[0] += 1
            connection.get_response("echo", answered, request_args=(value,))

    t0 = time.perf_counter()
    sent[0] = min(in_flight, count)
    for i in range(sent[0]):
        client.connection.get_response("echo", answered, request_args=(i,))
    client.run(lambda: left[0] == 0)
    return count / (time.perf_counter() - t0)


def file_transfer(client: Client, path: str, size: int, directory: str) -> float:
    dest = os.path.join(directory, "received.bin")
    t0 = time.perf_counter()
    client.connection.send_file(path, dest)
    got = call(client, "size", dest)
    elapsed = time.perf_counter() - t0
    assert got == size, (got, size)
    return size / MB / elapsed


def protocompat_alone(messages: int, trips: int, file_size: int, runs: int) -> Dict[str, List[float]]:
    from protocompat import messaging
    register_handlers(messaging)
    results: Dict[str, List[float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "payload.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(file_size))
        for _ in range(runs):
            for buffer_size in (1024, 64 * 1024):
                with ServerProcess(serve_messaging, PROTOCOMPAT, buffer_size) as port:
                    client = Client(messaging, port, buffer_size)
                    try:
                        if buffer_size == 1024:
                            one_way(client, 2000)  # warm-up
                            results.setdefault("one-way action messages/s", []).append(
                                one_way(client, messages))
                            results.setdefault("round trips/s, 10 in flight", []).append(
                                in_flight_round_trips(client, trips, 10))
                        results.setdefault("file MB/s, buffer_size %d" % buffer_size, []).append(
                            file_transfer(client, path, file_size, directory))
                    finally:
                        client.close()
                        messaging.NotifierSock().close()
    return results


def cpu_per_round_trip(source: str, count: int) -> float:
    """Microseconds of CPU per round trip with both ends driven by this thread (no wake-ups).

    Client and server connections sit on two selectors over a socket pair; one
    thread runs a turn of the server's loop, then of the client's, so that the
    figure is the work of both ends (system calls included) without any
    scheduling or waiting.
    """
    messaging = load_messaging(source)
    register_handlers(messaging)
    pair = socket.socketpair()
    loops = []
    for sock in pair:
        selector = selectors.DefaultSelector()
        sock.setblocking(False)
        connection = messaging.ConnectionManager()
        selector.register(sock, selectors.EVENT_READ, connection)
        connection.connect(selector, sock, "pair")
        loops.append((selector, connection))
    answered = [0]

    def answer(connection: Any, value: Any) -> None:
        answered[0] += 1
        connection.get_response("echo", answer, request_args=(value,))

    def turns(n: int) -> None:
        for _ in range(n):
            for selector, _ in (loops[1], loops[0]):
                for key, mask in selector.select(0):
                    key.data.process_events(mask)
    try:
        loops[0][1].get_response("echo", answer, request_args=(12345,))
        turns(1000)
        start, cpu = answered[0], time.process_time()
        turns(count)
        return (time.process_time() - cpu) / (answered[0] - start) * 1e6
    finally:
        for selector, connection in loops:
            connection._close()
            selector.close()


def limit_cpu_per_round_trip(count: int) -> float:
    """Microseconds of CPU per round trip of the physical limit's shape, driven by this thread."""
    request_size, reply_size = frame_sizes()
    request, reply = b"x" * (request_size - 1) + b"\n", b"x" * (reply_size - 1) + b"\n"
    client, server = socket.socketpair()
    server.setblocking(False)
    with selectors.DefaultSelector() as selector, client, server:
        selector.register(server, selectors.EVENT_READ)

        def turns(n: int) -> None:
            for _ in range(n):
                client.sendall(request)
                for _key, _mask in selector.select(0):
                    data = server.recv(65536)
                    server.sendall(reply * data.count(b"\n"))
                got = 0
                while got < len(reply):
                    got += len(client.recv(65536))
        turns(1000)
        cpu = time.process_time()
        turns(count)
        return (time.process_time() - cpu) / count * 1e6


def in_process_round_trips(seconds: float) -> float:
    """Round trips/s with the server's loop in a thread of this process (protocompat)."""
    from protocompat import messaging
    register_handlers(messaging)
    parent, child = multiprocessing.Pipe()
    server = threading.Thread(target=serve_messaging, args=(child, PROTOCOMPAT), daemon=True)
    server.start()
    port = parent.recv()
    try:
        return loop_round_trips(messaging, port, seconds)
    finally:
        parent.send("stop")
        server.join(WAIT)
        messaging.NotifierSock().close()


# -- main ----------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, a 10 MB file")
    parser.add_argument("--runs", type=int, default=None,
                        help="repetitions of each comparison (default 5, 3 with --quick)")
    parser.add_argument("--original", default=os.environ.get("CLEVER_SHOW_MESSAGING"),
                        help="path of clever-show's lib/messaging.py "
                             "(default: $CLEVER_SHOW_MESSAGING; none: not run)")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    seconds = 1.0 if args.quick else 2.0
    file_size = (10 if args.quick else 50) * MB
    messages = 30_000 if args.quick else 100_000
    trips = 10_000 if args.quick else 30_000

    sources = [("original", args.original), ("protocompat", PROTOCOMPAT)]
    rows: Dict[str, List[float]] = {}
    for run in range(runs):
        with ServerProcess(benchlib.serve_bare_selectors, b"x" * (frame_sizes()[1] - 1) + b"\n") as port:
            rows.setdefault("physical limit", []).append(limit_round_trips(port, seconds))
        with ServerProcess(benchlib.serve_codec_shape, MessagingCodec) as port:
            rows.setdefault(WITH_ENCODING, []).append(
                benchlib.codec_round_trips(port, MessagingCodec(), seconds))
        for name, source in sources:
            if source is None:
                continue
            with ServerProcess(serve_messaging, source) as port:
                for measure, label in (("loop", "loop"), ("caller", "caller thread waits")):
                    rows.setdefault("%s, %s" % (name, label), []).append(
                        in_client_process(measure, source, port, seconds))
        print("run %d of %d done" % (run + 1, runs), file=sys.stderr, flush=True)

    table: List[Tuple[str, Optional[float]]] = [
        ("physical limit", statistics.median(rows["physical limit"])),
        (WITH_ENCODING, statistics.median(rows[WITH_ENCODING]))]
    for name, source in sources:
        for label in ("loop", "caller thread waits"):
            key = "%s, %s" % (name, label)
            table.append((key, statistics.median(rows[key]) if key in rows else None))
    benchlib.print_table("Request round trips, 1 in flight, two processes (medians of %d runs of %.0f s)"
                         % (runs, seconds), table, "rt/s", baseline="physical limit")
    original = dict(table).get("original, loop")
    if original:
        print("  protocompat / original (loop): %.2fx" % (dict(table)["protocompat, loop"] / original))
    print("  protocompat / %s: %.2fx (loop), %.2fx (caller thread waits)" % (
        WITH_ENCODING, dict(table)["protocompat, loop"] / dict(table)[WITH_ENCODING],
        dict(table)["protocompat, caller thread waits"] / dict(table)[WITH_ENCODING]))

    alone = protocompat_alone(messages, trips, file_size, max(1, runs // 2))
    print("\nprotocompat alone, two processes (medians of %d runs; %d MB file)"
          % (max(1, runs // 2), file_size // MB))
    for key, values in alone.items():
        if "MB/s" in key:
            print("  %-34s %12.1f MB/s" % (key, statistics.median(values)))
        else:
            print("  %-34s %12.0f" % (key, statistics.median(values)))
    in_process = statistics.median(in_process_round_trips(seconds) for _ in range(3))
    print("\nIn one process (server loop in a thread, client loop in the main thread)")
    print("  %-34s %12.0f rt/s" % ("round trips/s, 1 in flight", in_process))
    print("\nCPU per round trip, both ends driven by one thread over a socket pair (no wake-ups;"
          " medians of 3)")
    turns = 5_000 if args.quick else 20_000
    value = statistics.median(limit_cpu_per_round_trip(turns) for _ in range(3))
    print("  %-34s %12.1f us" % ("physical limit's shape", value))
    for name, source in sources:
        if source is None:
            print("  %-34s %12s" % (name, "not installed"))
            continue
        # The original is slow enough per round trip for fewer turns to give a stable figure.
        count = turns if source == PROTOCOMPAT else turns // 4
        value = statistics.median(cpu_per_round_trip(source, count) for _ in range(3))
        print("  %-34s %12.1f us" % (name, value))


if __name__ == "__main__":
    # Disconnections at the end of each run are expected; show errors only.
    logging.basicConfig(level=logging.CRITICAL)
    main()
