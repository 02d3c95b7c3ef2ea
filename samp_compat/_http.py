"""HTTP/1.1 heads in both directions: one parser for requests, one for responses.

Pure functions and an incremental request parser: no sockets, no threads. The
XML-RPC server's connections decode requests with :class:`RequestParser` (built
on :func:`parse_request_head`); the client transport parses responses with
:func:`parse_response_head` and :func:`parse_chunk_size`.
"""
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

#: Largest request or status line plus headers, in bytes.
MAX_HEADER_BYTES = 64 * 1024
#: Most header lines in one head.
MAX_HEADER_COUNT = 100
#: Longest chunk-size line of a chunked body, in bytes.
MAX_CHUNK_LINE = 1024
_HTTP_VERSIONS = ("HTTP/1.0", "HTTP/1.1")
_STATUS_DIGITS = 3

_REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    411: "Length Required", 413: "Payload Too Large", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 505: "HTTP Version Not Supported",
}


class Headers(dict):
    """A dict of HTTP headers whose keys are case-insensitive (stored lower case)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        for key, value in (items.items() if isinstance(items, dict) else items):
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of header ``key`` (any case) or ``default``."""
        return dict.get(self, key.lower(), default)


class HTTPError(Exception):
    """A request that cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class BadResponse(ValueError):
    """A response head (or chunk-size line) that is not valid HTTP/1.x."""


class ResponseHead(NamedTuple):
    """A parsed status line and headers."""

    version: str
    status: int
    reason: str
    headers: Headers

    @property
    def keep_alive(self) -> bool:
        """Whether the server keeps the connection open after this response."""
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


class Request(NamedTuple):
    """One parsed HTTP request."""

    method: str
    path: str
    version: str
    headers: Headers
    body: bytes

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after the response."""
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


def reason(status: int) -> str:
    """Return the reason phrase of ``status``."""
    return _REASONS.get(status, "Unknown")


def build_response(status: int, headers: List[Tuple[str, str]], body: bytes,
                   keep_alive: bool, head_only: bool = False) -> bytes:
    """Return the bytes of an HTTP/1.1 response with a Content-Length."""
    lines = ["HTTP/1.1 %d %s" % (status, reason(status))]
    names = set()
    for name, value in headers:
        names.add(name.lower())
        lines.append("%s: %s" % (name, value))
    if "content-length" not in names:
        lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: %s" % ("keep-alive" if keep_alive else "close"))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


class _Continue:
    """The type of :data:`CONTINUE`."""

    def __repr__(self) -> str:
        return "CONTINUE"


#: What :meth:`RequestParser.feed` returns, in order among the requests, when a
#: request head asks for ``Expect: 100-continue`` and its body has not arrived.
CONTINUE = _Continue()

#: One item of :meth:`RequestParser.feed`'s result.
Item = Union[Request, HTTPError, _Continue]


class RequestParser:
    """Incremental HTTP/1.x request parser with bounded buffers: bytes in, requests out.

    It is the decoder of a server connection. :meth:`feed` returns, in order,
    each complete :class:`Request`, :data:`CONTINUE` when a request waits for
    ``100 Continue`` before sending its body, and at most one
    :class:`HTTPError`: the request that cannot be served, whose answer ends
    the connection. After an error every further byte is ignored. It never
    raises on bad input and holds at most :data:`MAX_HEADER_BYTES` plus
    ``max_body`` plus one fed chunk.

    Parameters
    ----------
    max_body : int
        Largest Content-Length accepted; more is :class:`HTTPError` 413.
    """

    def __init__(self, max_body: int) -> None:
        self._buf = bytearray()
        self._max_body = max_body
        # The parsed head of the request whose body is awaited:
        # method, path, version, headers, body start, body length.
        self._pending: Optional[Tuple[str, str, str, Headers, int, int]] = None
        self._continue_due = False
        self._failed = False

    @property
    def buffered(self) -> int:
        """Number of bytes received and not yet returned as a request."""
        return len(self._buf)

    def feed(self, data: bytes) -> List[Item]:
        """Add received bytes; return what they complete.

        Parameters
        ----------
        data : bytes

        Returns
        -------
        items : list
            :class:`Request`, :data:`CONTINUE` and :class:`HTTPError` items, in order.
        """
        if self._failed:
            return []
        self._buf += data
        items: List[Item] = []
        try:
            while self._buf:
                item = self._next()
                if item is None:
                    break
                items.append(item)
        except HTTPError as exc:
            self._fail(exc, items)
        except Exception:  # a parser defect: never leave the peer unanswered
            self._fail(HTTPError(400, "bad request"), items)
        return items

    def _fail(self, error: HTTPError, items: List[Item]) -> None:
        self._failed = True
        self._buf = bytearray()
        self._pending = None
        items.append(error)

    def _next(self) -> Optional[Item]:
        """The next complete request (or CONTINUE), or None if more bytes are needed."""
        buf = self._buf
        if self._pending is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise HTTPError(431, "request header too large")
                return None
            if end > MAX_HEADER_BYTES:
                raise HTTPError(431, "request header too large")
            method, path, version, headers = parse_request_head(bytes(buf[:end]))
            length = _content_length(headers, self._max_body)
            self._pending = (method, path, version, headers, end + 4, length)
            self._continue_due = headers.get("expect", "").lower() == "100-continue"
        method, path, version, headers, start, length = self._pending
        if len(buf) < start + length:
            if self._continue_due:
                self._continue_due = False
                return CONTINUE
            return None
        body = bytes(buf[start:start + length])
        del buf[:start + length]
        self._pending = None
        self._continue_due = False
        return Request(method, path, version, headers, body)


def _parse_headers(lines: List[str], error: Any, strict: bool) -> Headers:
    """Headers of ``lines``; ``strict`` also refuses whitespace around a name (requests)."""
    parsed = {}
    for line in lines:
        name, sep, value = line.partition(":")
        stripped = name.strip()
        if not sep or not stripped or line[:1] in (" ", "\t") or (strict and name != stripped):
            raise error("bad header line")
        parsed[stripped.lower()] = value.strip()
    headers = Headers()
    dict.update(headers, parsed)  # the names are lower case already
    return headers


def parse_request_head(head: bytes) -> Tuple[str, str, str, Headers]:
    """Parse a request line and its headers (without the blank line that ends them).

    Parameters
    ----------
    head : bytes
        At most :data:`MAX_HEADER_BYTES` bytes.

    Returns
    -------
    method, path, version, headers : tuple
        The method upper-cased, the request target, ``HTTP/1.0`` or ``HTTP/1.1``,
        and the headers (names case-insensitive).

    Raises
    ------
    HTTPError
        400 for a malformed head, 505 for another HTTP version, 431 for a head
        that is too large or has too many headers.
    """
    if len(head) > MAX_HEADER_BYTES:
        raise HTTPError(431, "request header too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isascii() or not parts[0].isalpha() or not parts[1]:
        raise HTTPError(400, "bad request line")
    method, path, version = parts
    if version not in _HTTP_VERSIONS:
        raise HTTPError(505, "unsupported HTTP version")
    if len(lines) - 1 > MAX_HEADER_COUNT:
        raise HTTPError(431, "too many request headers")
    headers = _parse_headers(lines[1:], lambda text: HTTPError(400, text), strict=True)
    return method.upper(), path, version, headers


def parse_response_head(head: bytes) -> ResponseHead:
    """Parse a status line and its headers (without the blank line that ends them).

    Parameters
    ----------
    head : bytes
        At most :data:`MAX_HEADER_BYTES` bytes.

    Returns
    -------
    ResponseHead

    Raises
    ------
    BadResponse
        The head is too large or has too many headers, the status line is not
        ``HTTP/1.x NNN reason``, or a header line is malformed.
    """
    if len(head) > MAX_HEADER_BYTES:
        raise BadResponse("HTTP response header too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if (len(parts) < 2 or parts[0] not in _HTTP_VERSIONS or len(parts[1]) != _STATUS_DIGITS
            or not parts[1].isascii() or not parts[1].isdigit()):
        raise BadResponse("bad HTTP status line")
    if len(lines) - 1 > MAX_HEADER_COUNT:
        raise BadResponse("too many response headers")
    headers = _parse_headers(lines[1:], BadResponse, strict=False)
    return ResponseHead(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers)


def parse_chunk_size(line: bytes) -> int:
    """Return the size given by the size line of a chunk (extensions ignored).

    Parameters
    ----------
    line : bytes
        The line without its CRLF.

    Returns
    -------
    size : int

    Raises
    ------
    BadResponse
        The line is too long or is not a hexadecimal size.
    """
    if len(line) > MAX_CHUNK_LINE:
        raise BadResponse("chunk-size line too long")
    text = line.split(b";", 1)[0].strip()
    if not text or not all(c in b"0123456789abcdefABCDEF" for c in text):
        raise BadResponse("bad chunk size")
    return int(text, 16)


def _content_length(headers: Dict[str, str], max_body: int) -> int:
    if "transfer-encoding" in headers:
        raise HTTPError(501, "transfer encodings are not supported")
    text = headers.get("content-length")
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise HTTPError(400, "bad Content-Length")
    length = int(text)
    if length > max_body:
        raise HTTPError(413, "request body larger than %d bytes" % max_body)
    return length


class Response(NamedTuple):
    """One parsed HTTP response: its head and its whole body."""

    head: ResponseHead
    body: bytes


class ResponseParser:
    """Incremental HTTP/1.x response parser with bounded buffers: bytes in, responses out.

    It is the decoder of a client connection that sends one request at a
    time. :meth:`feed` returns each complete :class:`Response`; a body without
    a length (read until the server closes) is returned by :meth:`eof`.

    Parameters
    ----------
    max_body : int
        Largest body accepted.

    Raises
    ------
    BadResponse
        From :meth:`feed` or :meth:`eof`, for a malformed or too large response.
    """

    def __init__(self, max_body: int) -> None:
        self._buf = bytearray()
        self._max_body = max_body
        self._head: Optional[ResponseHead] = None
        self._length: Optional[int] = None  # None: until close; -1: chunked
        self._chunks = bytearray()

    @property
    def started(self) -> bool:
        """Whether any byte of a response not yet returned has arrived."""
        return bool(self._buf) or self._head is not None

    def feed(self, data: bytes) -> List[Response]:
        """Add received bytes; return the responses they complete.

        Parameters
        ----------
        data : bytes

        Returns
        -------
        responses : list of Response
        """
        self._buf += data
        responses = []
        while self._buf:
            response = self._next()
            if response is None:
                break
            responses.append(response)
        return responses

    def eof(self) -> Optional[Response]:
        """The server closed: return the response it ended, if it was read until close."""
        if self._head is not None and self._length is None:
            body, self._buf = bytes(self._buf), bytearray()
            head, self._head = self._head, None
            return Response(head, body)
        return None

    def _next(self) -> Optional[Response]:
        buf = self._buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise BadResponse("HTTP response header too large")
                return None
            head = parse_response_head(bytes(buf[:end]))
            del buf[:end + 4]
            if head.status == 100:
                return None if not buf else self._next()
            self._head = head
            self._length = _response_length(head.headers, self._max_body)
        if self._length is None:
            if len(buf) > self._max_body:
                raise BadResponse("HTTP response body larger than %d bytes" % self._max_body)
            return None
        if self._length < 0:
            return self._next_chunk()
        if len(buf) < self._length:
            return None
        body = bytes(buf[:self._length])
        del buf[:self._length]
        head, self._head = self._head, None
        return Response(head, body)

    def _next_chunk(self) -> Optional[Response]:
        buf = self._buf
        while True:
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > MAX_CHUNK_LINE:
                    raise BadResponse("chunk-size line too long")
                return None
            size = parse_chunk_size(bytes(buf[:end]))
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", end)
                if buf[end:end + 4] == b"\r\n\r\n":
                    trailer_end = end
                if trailer_end < 0:
                    if len(buf) > MAX_HEADER_BYTES:
                        raise BadResponse("HTTP trailers too large")
                    return None
                del buf[:trailer_end + 4]
                body, self._chunks = bytes(self._chunks), bytearray()
                head, self._head = self._head, None
                return Response(head, body)  # type: ignore[arg-type]
            if len(buf) < end + 2 + size + 2:
                return None
            if len(self._chunks) + size > self._max_body:
                raise BadResponse("HTTP response body larger than %d bytes" % self._max_body)
            self._chunks += buf[end + 2:end + 2 + size]
            del buf[:end + 2 + size + 2]


def _response_length(headers: Dict[str, str], max_body: int) -> Optional[int]:
    """The body length of a response: bytes, -1 for chunked, None for until-close."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return -1
    text = headers.get("content-length")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise BadResponse("bad Content-Length")
    length = int(text)
    if length > max_body:
        raise BadResponse("HTTP response body larger than %d bytes" % max_body)
    return length
