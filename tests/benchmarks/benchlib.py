"""What the benchmarks share: servers in other processes, the physical limit, medians, tables.

The physical limit of a request/response exchange is measured with the
shape every benchmark compares against: a bare ``selectors`` server in its
own process that answers each newline-ended request inline, and a client
that sends one request and blocks on ``recv`` for the answer.
"""
import multiprocessing
import os
import selectors
import socket
import statistics
import sys
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

LOOPBACK = "127.0.0.1"
#: Seconds a server process may take to start or stop.
PROCESS_WAIT = 30.0


# -- servers in other processes --------------------------------------------------

def _serve_child(target: Callable[..., Any], args: Tuple[Any, ...], pipe: Any) -> None:
    target(pipe, *args)


class ServerProcess:
    """Runs ``target(pipe, *args)`` in a new process; the target sends its port on the pipe
    when ready and returns when it receives anything on it.

    Use as a context manager: ``with ServerProcess(serve_x, arg) as port: ...``.
    """

    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_pipe = context.Pipe()
        self._process = context.Process(target=_serve_child, args=(target, args, child_pipe),
                                        daemon=True)

    def __enter__(self) -> Any:
        self._process.start()
        if not self._pipe.poll(PROCESS_WAIT):
            self._process.kill()
            raise RuntimeError("server process did not start")
        return self._pipe.recv()

    def __exit__(self, *exc: Any) -> None:
        try:
            self._pipe.send("stop")
        except OSError:
            pass
        self._process.join(PROCESS_WAIT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(PROCESS_WAIT)


def wait_for_stop(pipe: Any) -> None:
    """In a server process: block until the benchmark says stop."""
    pipe.recv()


# -- the physical limit ---------------------------------------------------------------

def serve_inline(pipe: Any, make_answer: Callable[[], Callable[[bytes], bytes]]) -> None:
    """A bare selectors server: each chunk received is answered inline.

    Each connection gets its own ``make_answer()``, a function that takes
    the bytes received and returns the bytes to send back (empty for none).
    """
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(socket.SOMAXCONN)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    sel.register(pipe.fileno(), selectors.EVENT_READ, "stop")
    pipe.send(listener.getsockname()[1])
    answers: Dict[socket.socket, Callable[[bytes], bytes]] = {}
    while True:
        for key, _ in sel.select():
            if key.data == "stop":
                for sock in answers:
                    sock.close()
                listener.close()
                return
            if key.data is None:
                conn, _ = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setblocking(False)
                answers[conn] = make_answer()
                sel.register(conn, selectors.EVENT_READ, conn)
                continue
            conn = key.data
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(conn)
                conn.close()
                del answers[conn]
                continue
            reply = answers[conn](data)
            if reply:
                conn.sendall(reply)


def serve_bare_selectors(pipe: Any, reply: bytes) -> None:
    """The physical limit's server: one ``reply`` per newline-ended request, sent inline."""
    def lines() -> Callable[[bytes], bytes]:
        rest = [b""]

        def answer(data: bytes) -> bytes:
            data = rest[0] + data
            rest[0] = data[data.rfind(b"\n") + 1:]
            return reply * data.count(b"\n")
        return answer
    serve_inline(pipe, lines)


def blocking_round_trips(port: int, request: bytes, reply_size: int, seconds: float) -> float:
    """Round trips/s of a client that sends ``request`` and blocks for ``reply_size`` bytes.

    The loop is :func:`codec_round_trips`' written out, so that the physical
    limit's client makes no Python call per round trip besides its system calls.
    """
    sock = socket.create_connection((LOOPBACK, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            sock.sendall(request)
            got = 0
            while got < reply_size:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed")
                got += len(chunk)
            count += 1
            if not count % 64 and time.perf_counter() >= deadline:
                break
        return count / (time.perf_counter() - start)
    finally:
        sock.close()


# -- the limit with the protocol's own encoding -----------------------------------------

class Codec:
    """What a protocol's encoding costs at each end, for :func:`serve_codec_shape`.

    A subclass (defined at module level, so that a server process can make
    one) implements :meth:`answer` for the server and :meth:`exchange` for
    the client, with the protocol's own encoding and decoding functions and
    nothing of its library around them.
    """

    def answer(self, data: bytes) -> bytes:
        """Server side: decode the requests ``data`` completes; return their encoded replies."""
        raise NotImplementedError

    def exchange(self, sock: socket.socket) -> None:
        """Client side: encode one request, send it, block until its reply is decoded."""
        raise NotImplementedError


def serve_codec_shape(pipe: Any, codec_class: Callable[[], Codec]) -> None:
    """The limit's server, decoding each request and encoding its reply with ``codec_class``."""
    serve_inline(pipe, lambda: codec_class().answer)


def codec_round_trips(port: int, codec: Codec, seconds: float) -> float:
    """Round trips/s of a blocking client that encodes and decodes with ``codec``."""
    sock = socket.create_connection((LOOPBACK, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        exchange = codec.exchange
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            exchange(sock)
            count += 1
            if not count % 64 and time.perf_counter() >= deadline:
                break
        return count / (time.perf_counter() - start)
    finally:
        sock.close()


def physical_limit(request: bytes = b"?watchdog\n", reply: bytes = b"!watchdog ok\n",
                   seconds: float = 2.0, runs: int = 3) -> float:
    """Median round trips/s of the bare selectors server and a blocking client."""
    with ServerProcess(serve_bare_selectors, reply) as port:
        return statistics.median(blocking_round_trips(port, request, len(reply), seconds)
                                 for _ in range(runs))


# -- figures --------------------------------------------------------------------

def median_rate(measure: Callable[[], float], runs: int) -> float:
    """The median of ``runs`` calls of ``measure()``."""
    return statistics.median(measure() for _ in range(runs))


def print_table(title: str, rows: Sequence[Tuple[str, Optional[float]]], unit: str,
                baseline: Optional[str] = None) -> None:
    """Print ``(name, value)`` rows, with each value's ratio to the row named ``baseline``."""
    base = dict(rows).get(baseline) if baseline else None
    print("\n%s" % title)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        if value is None:
            print("  %-*s  %12s" % (width, name, "not installed"))
            continue
        ratio = ""
        if base:
            ratio = "  %6.2fx %s" % (value / base, baseline)
        print("  %-*s  %12.0f %s%s" % (width, name, value, unit, ratio))

