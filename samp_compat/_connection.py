"""One server-side HTTP connection, driven by the server's selector loop."""
import selectors
import socket
import ssl
import threading
import time
from typing import Any, Optional

from . import _http

_RECV_SIZE = 64 * 1024


class Connection:
    """One client connection.

    Every method runs on the loop thread except :meth:`respond_directly`,
    which a worker calls; ``lock`` orders it against :meth:`process`.
    Plain-TCP connections stay armed for reading while a request is being
    served, so a worker can send its response without waking the loop.
    """

    def __init__(self, server: Any, sock: socket.socket, address: Any) -> None:
        self.server = server
        self.sock = sock
        self.address = tuple(address[:2]) if isinstance(address, tuple) else (str(address), 0)
        self.parser = _http.RequestParser(server.max_body)
        self.out = bytearray()
        self.busy = False
        self.close_after_write = False
        self.closed = False
        self.handshaking = isinstance(sock, ssl.SSLSocket)
        self.last_activity = time.monotonic()
        self.request_started: Optional[float] = None  # first byte of an unfinished request
        self.events = 0
        self.lock = threading.RLock()
        self.tls = isinstance(sock, ssl.SSLSocket)

    def set_events(self, events: int) -> None:
        if self.closed or events == self.events:
            return
        loop = self.server._loop
        if self.events == 0:
            loop.register(self.sock, events, self.on_ready)
        elif events == 0:
            loop.unregister(self.sock)
        else:
            loop.modify(self.sock, events, self.on_ready)
        self.events = events

    def on_ready(self, _sock: Any, mask: int) -> None:
        with self.lock:
            self.last_activity = time.monotonic()
            if self.handshaking:
                self._handshake()
                return
            if mask & selectors.EVENT_WRITE:
                self._write()
            if mask & selectors.EVENT_READ and not self.closed:
                self._read()

    def _handshake(self) -> None:
        try:
            self.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self.set_events(selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self.set_events(selectors.EVENT_WRITE)
            return
        except (OSError, ValueError):
            self.close()
            return
        self.handshaking = False
        self.set_events(selectors.EVENT_READ)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(_RECV_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except (OSError, ValueError):
                self.close()
                return
            if not data:
                with self.lock:
                    if not self.busy and not self.out:
                        self.close()
                    else:
                        self.close_after_write = True
                        self.set_events(selectors.EVENT_WRITE if self.out else 0)
                return
            self.parser.feed(data)
            if self.request_started is None:
                self.request_started = time.monotonic()
            if self.parser.buffered > self.server.max_body + _http.MAX_HEADER_BYTES:
                if self.busy:
                    self.set_events(0)  # a pipelining peer waits until the response is out
                break
            if len(data) < _RECV_SIZE and not self.tls:
                # The socket is drained; the selector reports anything that arrives
                # later (TLS may hold decrypted bytes the selector cannot see).
                break
        self.process()

    def process(self) -> None:
        """Hand the next complete request to a worker, if idle."""
        with self.lock:
            self._process()

    def _process(self) -> None:
        if self.busy or self.closed or self.close_after_write:
            return
        try:
            request = self.parser.next_request()
        except Exception as exc:  # HTTPError, or a parser defect: never leave the peer hanging
            status = exc.status if isinstance(exc, _http.HTTPError) else 400
            text = str(exc) if isinstance(exc, _http.HTTPError) else "bad request"
            self.respond(_http.build_response(
                status, [("Content-Type", "text/plain")], text.encode() + b"\n",
                keep_alive=False), keep_alive=False)
            return
        if request is None:
            if self.parser.wants_continue:
                self.parser.wants_continue = False
                self.out += b"HTTP/1.1 100 Continue\r\n\r\n"
                self._write()
            self.set_events(selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0))
            return
        self.busy = True
        self.request_started = time.monotonic() if self.parser.buffered else None
        keep_reading = 0 if self.tls else selectors.EVENT_READ
        self.set_events(keep_reading | (selectors.EVENT_WRITE if self.out else 0))
        self.server._pool.submit(self.server._handle, self, request)

    def respond_directly(self, data: bytes, keep_alive: bool) -> Optional[bytes]:
        """Send a response from a worker thread when nothing else is pending.

        Returns
        -------
        rest : bytes or None
            None when the response went out whole and the connection is
            ready for the next request; otherwise the bytes the loop must
            still send (through :meth:`respond`).
        """
        if self.tls or not keep_alive:
            return data
        with self.lock:
            if (self.closed or self.out or self.close_after_write or self.parser.buffered
                    or self.events != selectors.EVENT_READ):
                return data
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return data
            if sent < len(data):
                return data[sent:]
            self.busy = False
            self.last_activity = time.monotonic()
            return None

    def respond(self, data: bytes, keep_alive: bool) -> None:
        """Queue a response; called on the loop thread."""
        with self.lock:
            if self.closed:
                return
            self.busy = False
            self.out += data
            if not keep_alive:
                self.close_after_write = True
            self._write()

    def _write(self) -> None:
        while self.out:
            try:
                sent = self.sock.send(self.out)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                break
            except (OSError, ValueError):
                self.close()
                return
            del self.out[:sent]
        if self.out:
            self.set_events(selectors.EVENT_WRITE)
        elif self.close_after_write:
            self.close()
        elif not self.busy:
            self.set_events(selectors.EVENT_READ)
            self.process()

    def close(self) -> None:
        with self.lock:
            self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.set_events(0)
        self.closed = True
        self.server._connections.discard(self)
        try:
            self.sock.close()
        except OSError:
            pass
