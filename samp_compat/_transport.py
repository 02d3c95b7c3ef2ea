"""A lean HTTP/1.1 transport for outgoing XML-RPC calls.

It keeps one connection alive, writes each request in a single ``sendall``
and reads the response with a small, bounded header parser. Response bodies
are handed to :func:`samp_compat.xmlrpc.safe_xmlrpc_loads`, the only XML
parser of the package.
"""
import socket
import ssl
import urllib.parse
import xmlrpc.client
import zlib
from typing import Any, Dict, Optional, Tuple

from ._http import MAX_CHUNK_LINE, MAX_HEADER_BYTES, BadResponse, parse_chunk_size
from ._http import parse_response_head
from .xmlrpc import MAX_XMLRPC_BODY, SafeSafeTransport, SafeTransport, safe_xmlrpc_loads

_RECV = 64 * 1024
_HTTP_OK = 200
_USER_AGENT = "samp_compat (xmlrpc)"


class _ConnectionHandle:
    """What ``xmlrpc.client.Transport`` keeps in ``_connection``: the socket, closable.

    Code that reaches into a transport (``transport._connection[1].sock``) to
    shut a busy connection down finds the socket here.
    """

    def __init__(self, sock: socket.socket, timeout: Optional[float]) -> None:
        self.sock = sock
        self.timeout = timeout

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class _StaleConnection(ConnectionError):
    """A kept-alive connection was closed by the peer before it answered."""


class _Reader:
    """Buffered reads from a socket with size limits."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(_RECV)
        if not data:
            return False
        self.buf += data
        return True

    def head(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[:end + 4]
                return head
            if len(self.buf) > MAX_HEADER_BYTES:
                raise xmlrpc.client.ResponseError("HTTP response header too large")
            if not self._fill():
                raise _StaleConnection("connection closed before the response")

    def exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            if not self._fill():
                raise xmlrpc.client.ResponseError("connection closed inside the response body")
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                data = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return data
            if len(self.buf) > MAX_CHUNK_LINE or not self._fill():
                raise xmlrpc.client.ResponseError("bad chunked HTTP response")

    def until_close(self, limit: int) -> bytes:
        while self._fill():
            if len(self.buf) > limit:
                raise xmlrpc.client.ResponseError("XML-RPC response larger than %d bytes" % limit)
        data = bytes(self.buf)
        self.buf.clear()
        return data


def _read_body(reader: _Reader, headers: Dict[str, str], limit: int) -> Tuple[bytes, bool]:
    """Return the body and whether the connection must be closed afterwards."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            try:
                size = parse_chunk_size(reader.line())
            except BadResponse:
                raise xmlrpc.client.ResponseError("bad chunked HTTP response") from None
            if size == 0:
                while reader.line():
                    pass  # trailers
                return bytes(body), False
            if len(body) + size > limit:
                raise xmlrpc.client.ResponseError("XML-RPC response larger than %d bytes" % limit)
            body += reader.exactly(size)
            reader.exactly(2)
    length = headers.get("content-length")
    if length is None:
        return reader.until_close(limit), True
    if not (length.isascii() and length.isdigit()):
        raise xmlrpc.client.ResponseError("bad Content-Length")
    if int(length) > limit:
        raise xmlrpc.client.ResponseError("XML-RPC response larger than %d bytes" % limit)
    return reader.exactly(int(length)), False


def _gunzip(body: bytes, limit: int) -> bytes:
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decomp.decompress(body, limit + 1)
    except zlib.error:
        raise xmlrpc.client.ResponseError("invalid gzip XML-RPC response") from None
    if len(out) > limit or decomp.unconsumed_tail:
        raise xmlrpc.client.ResponseError("XML-RPC response larger than %d bytes" % limit)
    return out


class _LeanMixin:
    """Replaces ``request`` of an ``xmlrpc.client`` transport with a lean one."""

    _timeout: Optional[float]
    _use_datetime: bool
    _use_builtin_types: bool
    _extra_headers: Any

    def _lean_init(self) -> None:
        self._sock: Optional[socket.socket] = None
        self._sock_host: Optional[str] = None
        self._reader: Optional[_Reader] = None

    def _open(self, host: str) -> socket.socket:
        parsed = urllib.parse.urlsplit("//" + host)
        port = parsed.port or self._default_port
        sock = socket.create_connection((parsed.hostname, port), timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._wrap(sock, parsed.hostname)

    def _wrap(self, sock: socket.socket, hostname: str) -> socket.socket:
        return sock

    def request(self, host: Any, handler: str, request_body: bytes, verbose: bool = False) -> Any:
        """Send one XML-RPC request and return the parsed response params.

        Parameters
        ----------
        host : str
            ``host[:port]`` of the server.
        handler : str
            Request path.
        request_body : bytes
            The XML-RPC request.
        verbose : bool, optional
            Ignored.

        Returns
        -------
        params : tuple
        """
        if not isinstance(host, str):
            host = host[0]
        fresh = self._sock is None or self._sock_host != host
        try:
            return self._request_once(host, handler, request_body)
        except (_StaleConnection, ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            self.close()
            self._check_aborted()
            if fresh:
                raise ConnectionResetError("connection closed by the XML-RPC server") from None
        except OSError:
            self._check_aborted()
            raise
        try:
            return self._request_once(host, handler, request_body)
        except OSError:
            self._check_aborted()
            raise

    def _check_aborted(self) -> None:
        if getattr(self, "_aborted", False):
            self.close()
            raise ConnectionAbortedError("transport aborted")

    def _request_once(self, host: str, handler: str, body: bytes) -> Any:
        self._check_aborted()
        if self._sock is None or self._sock_host != host:
            self.close()
            self._sock = self._open(host)
            self._sock_host = host
            self._reader = _Reader(self._sock)
            self._connection = (host, _ConnectionHandle(self._sock, self._timeout))
            # abort() may have run while connecting, before it could see the socket.
            self._check_aborted()
        elif self._sock.gettimeout() != self._timeout:
            self._sock.settimeout(self._timeout)
        head = ("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nContent-Type: text/xml\r\n"
                "Content-Length: %d\r\n\r\n" % (handler, host, _USER_AGENT, len(body)))
        sock, reader = self._sock, self._reader
        try:
            sock.sendall(head.encode("latin-1") + body)
            try:
                response = parse_response_head(reader.head())
            except BadResponse as exc:
                raise xmlrpc.client.ResponseError(str(exc)) from None
            headers = response.headers
            data, must_close = _read_body(reader, headers, MAX_XMLRPC_BODY)
        except BaseException:
            self.close()
            raise
        if must_close or not response.keep_alive:
            self.close()
        if response.status != _HTTP_OK:
            self.close()
            raise xmlrpc.client.ProtocolError(host + handler, response.status, response.reason,
                                              dict(headers))
        if headers.get("content-encoding", "").lower() == "gzip":
            data = _gunzip(data, MAX_XMLRPC_BODY)
        params, _ = safe_xmlrpc_loads(data, self._use_datetime, self._use_builtin_types)
        return params

    def close(self) -> None:
        """Close the kept-alive connection, if any."""
        sock, self._sock, self._reader = self._sock, None, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        super().close()  # type: ignore[misc]


class LeanTransport(_LeanMixin, SafeTransport):
    """HTTP transport with a socket timeout and safe response parsing.

    Parameters
    ----------
    use_datetime, use_builtin_types : bool, optional
        As for :class:`xmlrpc.client.Transport`.
    timeout : float, optional
        Socket timeout in seconds (connect and each read).
    """

    _default_port = 80

    def __init__(self, use_datetime: bool = False, use_builtin_types: bool = False, *,
                 timeout: Optional[float] = None) -> None:
        super().__init__(use_datetime, use_builtin_types, timeout=timeout)
        self._lean_init()


class LeanSafeTransport(_LeanMixin, SafeSafeTransport):
    """HTTPS transport with a socket timeout and safe response parsing.

    Parameters
    ----------
    use_datetime, use_builtin_types : bool, optional
        As for :class:`xmlrpc.client.SafeTransport`.
    timeout : float, optional
        Socket timeout in seconds.
    context : ssl.SSLContext, optional
        TLS context; the default one verifies the server certificate.
    """

    _default_port = 443

    def __init__(self, use_datetime: bool = False, use_builtin_types: bool = False, *,
                 timeout: Optional[float] = None, context: Any = None) -> None:
        super().__init__(use_datetime, use_builtin_types, timeout=timeout, context=context)
        self._lean_init()

    def _wrap(self, sock: socket.socket, hostname: str) -> socket.socket:
        context = self.context or ssl.create_default_context()
        try:
            return context.wrap_socket(sock, server_hostname=hostname)
        except BaseException:
            sock.close()
            raise


def safe_transport(url: str, timeout: Optional[float], *, use_datetime: bool = False,
                   use_builtin_types: bool = False, context: Any = None) -> Any:
    """Return the transport for XML-RPC calls to ``url``: HTTPS for ``https:``, else HTTP.

    Parameters
    ----------
    url : str
        The server's URL.
    timeout : float or None
        Socket timeout in seconds (None: the global default).
    use_datetime, use_builtin_types : bool, optional
        As for :class:`xmlrpc.client.Transport`.
    context : ssl.SSLContext, optional
        TLS context of an ``https:`` URL (ignored for ``http:``).

    Returns
    -------
    transport : LeanTransport or LeanSafeTransport
    """
    options = {"use_datetime": use_datetime, "use_builtin_types": use_builtin_types,
               "timeout": timeout}
    if urllib.parse.urlsplit(url).scheme == "https":
        return LeanSafeTransport(context=context, **options)
    return LeanTransport(**options)
