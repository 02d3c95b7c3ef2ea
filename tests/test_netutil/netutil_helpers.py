"""Shared pieces of the foundation's tests: a loop fixture, socket pairs, a line decoder."""
import socket
import threading
from typing import Any, List, Optional

from protocompat.netutil import SelectorLoop, loopback_listener

WAIT = 5.0  # upper bound of any wait in these tests


def connected_pair() -> "tuple[socket.socket, socket.socket]":
    """(ours, peer): two connected TCP sockets over loopback."""
    listener = loopback_listener()
    try:
        peer = socket.create_connection(listener.getsockname(), timeout=WAIT)
        ours, _ = listener.accept()
    finally:
        listener.close()
    return ours, peer


class LineDecoder:
    """A tiny newline decoder for the tests: raises ValueError on a line with b"BAD"."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> List[bytes]:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if b"BAD" in line:
                raise ValueError("bad line %r" % line)
        return lines


class Recorder:
    """Collects messages and the close error; lets a test wait for either."""

    def __init__(self) -> None:
        self.messages: List[Any] = []
        self.threads: List[threading.Thread] = []
        self.closes: List[Optional[BaseException]] = []
        self.close_threads: List[threading.Thread] = []
        self._cond = threading.Condition()

    def on_message(self, message: Any) -> None:
        with self._cond:
            self.messages.append(message)
            self.threads.append(threading.current_thread())
            self._cond.notify_all()

    def on_close(self, error: Optional[BaseException]) -> None:
        with self._cond:
            self.closes.append(error)
            self.close_threads.append(threading.current_thread())
            self._cond.notify_all()

    def wait_messages(self, count: int, timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.messages) >= count, timeout)

    def wait_closed(self, timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self.closes), timeout)


def recv_exactly(sock: socket.socket, size: int, timeout: float = WAIT) -> bytes:
    sock.settimeout(timeout)
    parts = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def started_loop(name: str = "test-loop") -> SelectorLoop:
    loop = SelectorLoop(name=name)
    loop.start()
    return loop
