"""One server-side HTTP/1.1 connection: a Stream, the request parser, one request at a time."""
import logging
import socket
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from protocompat.netutil import Stream

from . import _http

log = logging.getLogger("samp_compat.xmlrpc")

#: The interim response sent to a request that waits for it before sending its body.
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HTTPConnection:
    """One client connection of an XML-RPC server.

    Bytes are decoded by :class:`~samp_compat._http.RequestParser` on the loop
    thread, and requests are handed to ``on_request(connection, request)`` one
    at a time: a request that arrives while the previous one is served waits,
    with reading paused, until the response has been given to :meth:`respond`.
    :meth:`respond` is called from any thread (a worker's) and writes straight
    to the socket when nothing is queued: serving a kept-alive request does not
    wake the loop.

    A peer that shuts down its sending side still gets the response to its
    request; then the connection closes. A request for ``Connection: close``
    (or an HTTP/1.0 request) closes once its response is sent.

    What the server uses: :meth:`start`, :meth:`respond`, :meth:`close`,
    :attr:`busy`, :attr:`idle_since`, :attr:`partial_since`, :attr:`address`.

    Parameters
    ----------
    loop : SelectorLoop
        The server's loop.
    sock : socket.socket
        The accepted socket (an ``ssl.SSLSocket`` does its handshake on the loop).
    address : tuple
        The peer's address.
    max_body : int
        Largest request body accepted (larger gets HTTP 413).
    on_request : callable
        ``on_request(connection, request)`` with a :class:`~samp_compat._http.Request`.
    on_close : callable
        ``on_close(connection)`` once, when the connection has closed.
    """

    def __init__(self, loop: Any, sock: socket.socket, address: Any, max_body: int,
                 on_request: Callable[["HTTPConnection", _http.Request], Any],
                 on_close: Callable[["HTTPConnection"], Any]) -> None:
        self.address: Tuple[str, int] = (
            tuple(address[:2]) if isinstance(address, tuple) else (str(address), 0))
        self._parser = _http.RequestParser(max_body)
        self._on_request = on_request
        self._on_closed = on_close
        self._lock = threading.Lock()
        self._busy = False
        self._waiting: Optional[_http.Item] = None  # decoded while busy; reading is paused
        self._eof = False
        #: When the last response was handed over (or the connection accepted), on
        #: the :func:`time.monotonic` clock.
        self.idle_since = time.monotonic()
        #: When the first bytes of a request not yet complete arrived, or None.
        self.partial_since: Optional[float] = None
        self.stream = Stream(loop, sock, self, self._on_message, self._on_close,
                             on_eof=self._on_eof, name="%s:%s" % self.address)

    @property
    def busy(self) -> bool:
        """True from the moment a request is handed over until its response is given."""
        return self._busy

    def start(self) -> None:
        """Start reading (on the loop thread)."""
        self.stream.start()

    def close(self) -> None:
        """Close at once, dropping what is queued; safe from any thread."""
        self.stream.close()

    # -- decoding (loop thread): the Stream's decoder ------------------------------
    def feed(self, data: bytes) -> List[_http.Item]:
        """Decode ``data``; note when a request is left incomplete."""
        items = self._parser.feed(data)
        if not self._parser.buffered:
            self.partial_since = None
        elif items or self.partial_since is None:
            self.partial_since = time.monotonic()
        return items

    def _on_message(self, item: _http.Item) -> None:
        with self._lock:
            wait = self._busy
            if wait:
                self._waiting = item
            else:
                self._busy = True
        if wait:
            self.stream.pause_reading()  # a pipelining peer waits for its response
        else:
            self._serve(item)

    def _serve(self, item: _http.Item) -> None:
        if isinstance(item, _http.Request):
            self._on_request(self, item)
        elif isinstance(item, _http.HTTPError):
            log.info("%s:%s: bad request (%d %s)", self.address[0], self.address[1],
                     item.status, item)
            self.respond(_http.build_response(
                item.status, [("Content-Type", "text/plain")], str(item).encode() + b"\n",
                keep_alive=False), keep_alive=False)
        else:  # CONTINUE: the body follows; the request itself comes later
            self.stream.write(CONTINUE_RESPONSE)
            self._done()

    def _on_eof(self) -> None:
        with self._lock:
            self._eof = True
            busy = self._busy
        if not busy:
            self.stream.close_after_flush()

    def _on_close(self, _error: Optional[BaseException]) -> None:
        self._waiting = None
        self._on_closed(self)

    # -- responding (any thread) -----------------------------------------------------
    def respond(self, data: bytes, keep_alive: bool) -> None:
        """Send the response to the request being served; safe from any thread.

        Parameters
        ----------
        data : bytes
            The whole response.
        keep_alive : bool
            False closes the connection once the response is sent.
        """
        self.stream.write(data)
        if not keep_alive:
            self.stream.close_after_flush()
            return
        self._done()

    def _done(self) -> None:
        """The request is served: take the one waiting, or become idle."""
        with self._lock:
            self.idle_since = time.monotonic()
            item, self._waiting = self._waiting, None
            if item is None:
                self._busy = False
            eof = self._eof
        if item is not None:
            self.stream.resume_reading()
            self._serve(item)
        elif eof:
            self.stream.close_after_flush()
