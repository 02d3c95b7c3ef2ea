"""HTTP/1.1 request framing for the XML-RPC server (no sockets, no threads)."""
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

#: Largest request line plus headers, in bytes.
MAX_HEADER_BYTES = 64 * 1024
#: Most header lines in one request.
MAX_HEADER_COUNT = 100

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
        return super().get(key.lower(), default)


class HTTPError(Exception):
    """A request that cannot be served; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


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


class RequestParser:
    """Incremental HTTP request parser with bounded buffers.

    Parameters
    ----------
    max_body : int
        Largest Content-Length accepted; more is :class:`HTTPError` 413.
    """

    def __init__(self, max_body: int) -> None:
        self._buf = bytearray()
        self._max_body = max_body
        self._pending: Optional[Tuple[str, str, str, Headers, int, int]] = None
        self.wants_continue = False

    @property
    def buffered(self) -> int:
        """Number of bytes received and not yet consumed."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        self._buf += data

    def next_request(self) -> Optional[Request]:
        """Return the next complete request, or None if more bytes are needed.

        Raises
        ------
        HTTPError
            The request is malformed or over a limit.
        """
        if self._pending is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEADER_BYTES:
                    raise HTTPError(431, "request header too large")
                return None
            if end > MAX_HEADER_BYTES:
                raise HTTPError(431, "request header too large")
            head = bytes(self._buf[:end]).decode("latin-1")
            method, path, version, headers = _parse_head(head)
            length = _content_length(headers, self._max_body)
            self._pending = (method, path, version, headers, end + 4, length)
            self.wants_continue = headers.get("expect", "").lower() == "100-continue"
        method, path, version, headers, start, length = self._pending
        if len(self._buf) < start + length:
            return None
        body = bytes(self._buf[start:start + length])
        del self._buf[:start + length]
        self._pending = None
        self.wants_continue = False
        return Request(method, path, version, headers, body)


def _parse_head(head: str) -> Tuple[str, str, str, Headers]:
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise HTTPError(400, "bad request line")
    method, path, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HTTPError(505, "unsupported HTTP version")
    if len(lines) - 1 > MAX_HEADER_COUNT:
        raise HTTPError(431, "too many request headers")
    headers = Headers()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[:1] in (" ", "\t"):
            raise HTTPError(400, "bad header line")
        headers[name] = value.strip()
    return method.upper(), path, version, headers


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
