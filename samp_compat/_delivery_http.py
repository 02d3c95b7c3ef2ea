"""Callbacks from the hub to a client's ``http://`` endpoint, made on the hub's loop.

A :class:`CallbackConnection` is one kept-alive HTTP/1.1 connection to a
client's XML-RPC server, carrying one call at a time. Connecting, sending,
reading the response and the per-call timeout all happen on the loop (the
request is sent from the calling thread when the socket takes it at once),
so a delivery holds no thread while it waits for the client, and a client
that never answers costs a socket and a timer, nothing more.
"""
import logging
import socket
import time
import urllib.parse
import xmlrpc.client
from typing import Any, Callable, Optional, Tuple

from protocompat.netutil import Connector, SelectorLoop, Stream

from ._http import BadResponse, Response, ResponseParser
from .xmlrpc import MAX_XMLRPC_BODY, safe_xmlrpc_loads, xmlrpc_dumps

log = logging.getLogger("samp_compat.hub")

_HTTP_OK = 200
_USER_AGENT = "samp_compat (xmlrpc)"

#: ``on_done(error)``: None on success, else the exception the call ended with:
#: :class:`xmlrpc.client.Fault`, :class:`socket.timeout`, ``ConnectionRefusedError``,
#: ``ConnectionResetError`` (a fresh connection closed without answering), another
#: :class:`OSError`, :class:`xmlrpc.client.ProtocolError` or
#: :class:`xmlrpc.client.ResponseError`.
OnDone = Callable[[Optional[BaseException]], None]


class StaleConnection(ConnectionError):
    """A kept-alive connection was closed before the call was answered: retry once."""


def http_target(url: str) -> Optional[Tuple[str, int, str]]:
    """``(host, port, path)`` of an ``http://`` URL, or None for any other URL."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 80
    except ValueError:
        return None
    if parts.scheme != "http" or not parts.hostname:
        return None
    return parts.hostname, port, parts.path or "/RPC2"


def request_bytes(host_header: str, path: str, method: str, params: tuple) -> bytes:
    """The whole HTTP request of XML-RPC call ``method(*params)``."""
    body = xmlrpc_dumps(params, method, allow_none=True).encode("utf-8", "xmlcharrefreplace")
    head = ("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nContent-Type: text/xml\r\n"
            "Content-Length: %d\r\n\r\n" % (path, host_header, _USER_AGENT, len(body)))
    return head.encode("latin-1") + body


class CallbackConnection:
    """One HTTP connection from the hub to a client's callback server, one call at a time.

    Every method runs on the loop thread (or, for :meth:`call`, on a thread
    the loop lets run it); ``on_done`` is called there once per call.

    Parameters
    ----------
    loop : SelectorLoop
        The hub's loop.
    host, port : str, int
        The client's callback server.
    timeout : float
        Seconds a call (connecting included) may take.
    on_closed : callable
        ``on_closed(connection)`` once the connection is closed and idle.
    """

    def __init__(self, loop: SelectorLoop, host: str, port: int, timeout: float,
                 on_closed: Callable[["CallbackConnection"], None]) -> None:
        self._loop = loop
        #: ``(host, port)`` of the client's callback server.
        self.address = (host, port)
        self._timeout = timeout
        self._on_closed = on_closed
        self._stream: Optional[Stream] = None
        self._connector: Optional[Connector] = None
        self._parser = ResponseParser(MAX_XMLRPC_BODY)
        self._pending: Optional[bytes] = None  # the request waiting for the connection
        self._on_done: Optional[OnDone] = None
        self._timer: Any = None
        self._deadline = 0.0  # when the call under way times out (time.monotonic clock)
        self._answered = 0  # calls answered on the current socket
        self.closed = False

    @property
    def busy(self) -> bool:
        """Whether a call is under way."""
        return self._on_done is not None

    def call(self, request: bytes, on_done: OnDone) -> None:
        """Send ``request`` (from :func:`request_bytes`) and report the outcome to ``on_done``."""
        self._on_done = on_done
        # One timer per connection, moved on lazily: no timer is made per call.
        self._deadline = time.monotonic() + self._timeout
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)
        if self._stream is not None and not self._stream.closed:
            self._stream.write(request)
            return
        self._pending = request
        self._answered = 0
        self._parser = ResponseParser(MAX_XMLRPC_BODY)
        self._connector = Connector(self._loop, self.address, self._connected,
                                    self._connect_failed, timeout=None)
        try:
            self._connector.start()
        except OSError as exc:  # no descriptor left for a socket, say
            self.close(exc)

    def close(self, error: Optional[BaseException] = None) -> None:
        """Close the connection; a call under way ends with ``error`` (or is interrupted)."""
        first = not self.closed
        self.closed = True
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        stream, self._stream = self._stream, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._finish(error if error is not None else ConnectionAbortedError("delivery interrupted"))
        if stream is not None:
            stream.close()
        if first:
            self._on_closed(self)

    # -- loop thread ----------------------------------------------------------------
    def _connected(self, sock: socket.socket) -> None:
        self._connector = None
        if self.closed or self._pending is None:
            sock.close()
            return
        self._stream = Stream(self._loop, sock, self._parser, self._on_response,
                              self._on_stream_closed, on_eof=self._on_eof,
                              name="callback %s:%s" % self.address)
        self._stream.start()
        request, self._pending = self._pending, None
        self._stream.write(request)

    def _connect_failed(self, error: BaseException, _retrying: bool) -> None:
        self._connector = None
        if isinstance(error, OSError) and not isinstance(error, ConnectionRefusedError) \
                and error.errno in (None, 0):
            error = ConnectionRefusedError(str(error))
        self.close(error)

    def _on_response(self, response: Response) -> None:
        head = response.head
        error: Optional[BaseException] = None
        if head.status != _HTTP_OK:
            error = xmlrpc.client.ProtocolError("%s:%s" % self.address, head.status, head.reason,
                                                dict(head.headers))
        else:
            try:
                safe_xmlrpc_loads(response.body)
            except xmlrpc.client.Fault as fault:
                error = fault
            except xmlrpc.client.ResponseError as exc:
                error = exc
        self._answered += 1
        if not head.keep_alive or head.status != _HTTP_OK:
            self._finish(error)
            self.close()
            return
        self._finish(error)

    def _on_eof(self) -> None:
        try:
            response = self._parser.eof()
        except BadResponse as exc:
            self.close(xmlrpc.client.ResponseError(str(exc)))
            return
        if response is not None:
            self._on_response(response)
        self._lost()

    def _on_stream_closed(self, error: Optional[BaseException]) -> None:
        if isinstance(error, BadResponse):
            self.close(xmlrpc.client.ResponseError(str(error)))
        elif self._stream is not None:
            self._lost(error)

    def _lost(self, error: Optional[BaseException] = None) -> None:
        """The server closed or reset the connection."""
        if self._on_done is None:
            self.close()
            return
        if self._answered and not self._parser.started:
            # A kept-alive connection the server had closed meanwhile: the caller
            # retries on a fresh one.
            self.close(StaleConnection("connection closed by the client before it answered"))
            return
        self.close(ConnectionResetError("connection closed by the client before it answered"))

    def _check_deadline(self) -> None:
        self._timer = None
        if self._on_done is None or self.closed:
            return
        if time.monotonic() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._check_deadline)
            return
        self.close(socket.timeout("no answer within %g s" % self._timeout))

    def _finish(self, error: Optional[BaseException]) -> None:
        on_done, self._on_done = self._on_done, None
        self._pending = None
        if on_done is not None:
            on_done(error)
