"""The only place where samp_compat parses XML: XXE-safe XML-RPC.

Every XML-RPC document, request or response, goes through
:func:`safe_xmlrpc_loads`. A document in which no markup declaration can
appear (no ``<!`` at all, UTF-8 or ASCII, no NUL byte) has no document type
declaration, so no entity can be declared or referenced from outside: the
common SAMP documents of strings, structs and arrays, up to 64 KiB, are read
from :mod:`xml.etree.ElementTree`'s C parser. Every other document, and any
document that parser or the reading of its tree does not take as the
common case, goes to defusedxml's expat parser with document type
declarations, entity declarations and external references all forbidden,
whose result or error is the answer. The transports in this module parse
responses with it, and the package's XML-RPC server
(:mod:`samp_compat.standard_profile`) parses each request exactly once with
it. This module imports nothing else of the package.
"""
import re
import socket
import xml.etree.ElementTree as ElementTree
import xmlrpc.client
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

from xml.parsers.expat import ErrorString, ExpatError

from defusedxml import DefusedXmlException
from defusedxml.xmlrpc import DefusedExpatParser

__all__ = [
    "MAX_XMLRPC_BODY",
    "MAX_XMLRPC_DEPTH",
    "UnsafeXMLError",
    "safe_xmlrpc_loads",
    "xmlrpc_dumps",
    "SafeTransport",
    "SafeSafeTransport",
]

#: Largest XML-RPC body (request or response) accepted, in bytes.
MAX_XMLRPC_BODY = 8 * 1024 * 1024
#: Deepest nesting of arrays and structs (values within values) accepted in an
#: XML-RPC document.
MAX_XMLRPC_DEPTH = 100
_READ_CHUNK = 64 * 1024


class UnsafeXMLError(xmlrpc.client.ResponseError, ValueError):
    """An XML-RPC document with a DTD, an entity declaration or an external reference.

    It is both a :class:`ValueError` and an :class:`xmlrpc.client.ResponseError`,
    so code that catches malformed XML-RPC also catches it. The message never
    contains the offending document.
    """

    def __str__(self) -> str:
        return Exception.__str__(self)


class _MalformedXMLError(xmlrpc.client.ResponseError, ExpatError):
    """Malformed XML: a ResponseError that ``except ExpatError`` also catches (as upstream)."""

    def __str__(self) -> str:
        return Exception.__str__(self)


class _OpenContainers(list):
    """The unmarshaller's marks of the arrays and structs open, refusing one too many."""

    __slots__ = ()

    def append(self, mark: int) -> None:
        if len(self) >= MAX_XMLRPC_DEPTH:
            raise xmlrpc.client.ResponseError("XML-RPC document nested too deeply")
        list.append(self, mark)


class _BoundedUnmarshaller(xmlrpc.client.Unmarshaller):
    """An unmarshaller that refuses arrays and structs nested deeper than :data:`MAX_XMLRPC_DEPTH`.

    The stdlib unmarshaller notes each array and struct it opens in its
    ``_marks`` list; bounding that list costs nothing per element.
    """

    def __init__(self, use_datetime: bool = False, use_builtin_types: bool = False) -> None:
        super().__init__(use_datetime, use_builtin_types)
        self._marks = _OpenContainers()


def _safe_parser(use_datetime: bool, use_builtin_types: bool
                 ) -> Tuple[DefusedExpatParser, _BoundedUnmarshaller]:
    target = _BoundedUnmarshaller(use_datetime, use_builtin_types)
    parser = DefusedExpatParser(target, forbid_dtd=True, forbid_entities=True,
                                forbid_external=True)
    return parser, target


def safe_xmlrpc_loads(data: Any, use_datetime: bool = False, use_builtin_types: bool = False
                      ) -> Tuple[tuple, Optional[str]]:
    """Parse an XML-RPC request or response without DTDs, entities or external references.

    A drop-in replacement for :func:`xmlrpc.client.loads`.

    Parameters
    ----------
    data : bytes or str
        The XML-RPC document (at most :data:`MAX_XMLRPC_BODY` bytes).
    use_datetime : bool, optional
        Return ``dateTime.iso8601`` values as :class:`datetime.datetime`.
    use_builtin_types : bool, optional
        Return dates as :class:`datetime.datetime` and binary data as :class:`bytes`.

    Returns
    -------
    params : tuple
        The parameters (a request) or a one-element tuple with the result (a response).
    methodname : str or None
        The method name of a request, ``None`` for a response.

    Raises
    ------
    xmlrpc.client.Fault
        The document is a fault response.
    UnsafeXMLError
        The document has a DOCTYPE, an entity declaration or an external reference.
    xmlrpc.client.ResponseError
        The document is malformed, too large, too deep or not XML-RPC.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise xmlrpc.client.ResponseError("XML-RPC document must be bytes or str")
    if len(data) > MAX_XMLRPC_BODY:
        raise xmlrpc.client.ResponseError("XML-RPC document larger than %d bytes" % MAX_XMLRPC_BODY)
    data = bytes(data)
    read = _read_common(data)  # raises the Fault of a fault response
    if read is not None:
        return read
    parser, target = _safe_parser(use_datetime, use_builtin_types)
    try:
        parser.feed(data)
        parser.close()
        return target.close(), target.getmethodname()
    except xmlrpc.client.Fault:
        raise
    except DefusedXmlException as exc:
        raise UnsafeXMLError("XML-RPC document rejected: %s is forbidden"
                             % _unsafe_kind(exc)) from None
    except xmlrpc.client.ResponseError as exc:
        text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
        raise xmlrpc.client.ResponseError(text or "malformed XML-RPC document") from None
    except ExpatError as exc:
        raise _MalformedXMLError("malformed XML: %s" % _expat_reason(exc)) from None
    except Exception as exc:  # the unmarshaller raises ValueError, TypeError, IndexError...
        raise xmlrpc.client.ResponseError("malformed XML-RPC document (%s)"
                                          % type(exc).__name__) from None


# -- the common documents, read from an ElementTree ---------------------------------------

# An XML declaration naming an encoding; only UTF-8 and ASCII documents take the tree path.
_DECLARED_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]*)[\"']")
_TREE_ENCODINGS = (b"utf-8", b"utf8", b"us-ascii", b"ascii")
_INT_TAGS = ("int", "i4", "i8", "i1", "i2", "biginteger")
#: Largest document read through a tree (a tree takes several times the document's size;
#: larger documents are read as they are parsed).
_TREE_MAX = 64 * 1024


class _NotCommon(Exception):
    """The document is not one the tree path reads; the general parser takes it."""


def _read_common(data: bytes) -> Optional[Tuple[tuple, Optional[str]]]:
    """``(params, methodname)`` read from an ElementTree; a fault response raises its Fault.

    None when the document could hold a markup declaration (any ``<!``:
    DOCTYPE, comment, CDATA), is not plainly UTF-8 or ASCII, or has anything
    the tree path does not read exactly as :class:`xmlrpc.client.Unmarshaller`
    does (dates, binary, namespaces, malformed XML...): the general parser
    then decides.
    """
    if len(data) > _TREE_MAX or not data.startswith(b"<") or b"<!" in data or b"\x00" in data:
        return None
    if data.startswith(b"<?xml"):
        declared = _DECLARED_ENCODING.search(data, 0, data.find(b"?>"))
        if declared is not None and declared.group(1).lower() not in _TREE_ENCODINGS:
            return None
    try:
        parser = ElementTree.XMLParser()
        parser.feed(data)
        root = parser.close()
        return _read_root(root)
    except (_NotCommon, ElementTree.ParseError, ValueError, RecursionError):
        return None


def _read_root(root: Any) -> Tuple[tuple, Optional[str]]:
    tag = root.tag
    children = list(root)
    if tag == "methodCall":
        if len(children) != 2 or children[0].tag != "methodName" or len(children[0]):
            raise _NotCommon()
        return _read_params(children[1]), children[0].text or ""
    if tag != "methodResponse" or len(children) != 1:
        raise _NotCommon()
    body = children[0]
    if body.tag == "params":
        return _read_params(body), None
    if body.tag == "fault" and len(body) == 1 and body[0].tag == "value":
        fault = _read_value(body[0], 0)
        if type(fault) is dict and sorted(fault) == ["faultCode", "faultString"]:
            raise xmlrpc.client.Fault(**fault)
    raise _NotCommon()


def _read_params(params: Any) -> Tuple[Any, ...]:
    if params.tag != "params":
        raise _NotCommon()
    values = []
    for param in params:
        if param.tag != "param" or len(param) != 1:
            raise _NotCommon()
        values.append(_read_value(param[0], 0))
    return tuple(values)


def _read_value(value: Any, depth: int) -> Any:
    """The Python value of a ``<value>`` element, as the stdlib unmarshaller makes it."""
    if value.tag != "value":
        raise _NotCommon()
    count = len(value)
    if not count:
        return value.text or ""  # untyped: a string
    if count != 1:
        raise _NotCommon()
    typed = value[0]
    tag = typed.tag
    if tag == "struct":
        if depth >= MAX_XMLRPC_DEPTH:
            raise _NotCommon()
        struct: Dict[str, Any] = {}
        for member in typed:
            if member.tag != "member" or len(member) != 2:
                raise _NotCommon()
            name, item = member
            if name.tag != "name" or len(name):
                raise _NotCommon()
            struct[name.text or ""] = _read_value(item, depth + 1)
        return struct
    if tag == "array":
        if depth >= MAX_XMLRPC_DEPTH or len(typed) != 1 or typed[0].tag != "data":
            raise _NotCommon()
        items: List[Any] = [_read_value(item, depth + 1) for item in typed[0]]
        return items
    if len(typed):
        raise _NotCommon()
    text = typed.text or ""
    if tag == "string":
        return text
    if tag in _INT_TAGS:
        return int(text)
    if tag == "boolean":
        if text == "0":
            return False
        if text == "1":
            return True
    elif tag == "double":
        return float(text)
    elif tag == "nil":
        return None
    raise _NotCommon()


# -- writing ------------------------------------------------------------------------------

_XML_HEADER = "<?xml version='1.0'?>\n"


def xmlrpc_dumps(params: Any, methodname: Optional[str] = None,
                 methodresponse: Optional[bool] = None, allow_none: bool = False) -> str:
    """The XML-RPC document of ``params``: the text :func:`xmlrpc.client.dumps` writes.

    Strings, numbers, booleans, None, lists, tuples and dicts with string keys
    are written here; anything else (a fault, dates, binary, objects, deeply
    nested or recursive values) by :func:`xmlrpc.client.dumps`, whose errors
    are then raised.

    Parameters
    ----------
    params : tuple or xmlrpc.client.Fault
    methodname : str, optional
        Makes a request.
    methodresponse : bool, optional
        Makes a response (``params`` holds one value).
    allow_none : bool, optional
        Write None as ``<nil/>``.

    Returns
    -------
    document : str
    """
    if type(params) is tuple and (methodname or methodresponse) \
            and (not methodresponse or len(params) == 1):
        out = ["<params>\n"]
        try:
            for value in params:
                out.append("<param>\n")
                _write_value(value, out, allow_none, 0)
                out.append("</param>\n")
        except _NotCommon:
            pass
        else:
            out.append("</params>\n")
            if methodname:
                return "%s<methodCall>\n<methodName>%s</methodName>\n%s</methodCall>\n" % (
                    _XML_HEADER, methodname, "".join(out))
            return "%s<methodResponse>\n%s</methodResponse>\n" % (_XML_HEADER, "".join(out))
    return xmlrpc.client.dumps(params, methodname, methodresponse, allow_none=allow_none)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _write_value(value: Any, out: List[str], allow_none: bool, depth: int) -> None:
    kind = type(value)
    if kind is str:
        out.append("<value><string>%s</string></value>\n" % _escape(value))
    elif kind is dict:
        if depth >= MAX_XMLRPC_DEPTH:
            raise _NotCommon()
        out.append("<value><struct>\n")
        for key, item in value.items():
            if type(key) is not str:
                raise _NotCommon()
            out.append("<member>\n<name>%s</name>\n" % _escape(key))
            _write_value(item, out, allow_none, depth + 1)
            out.append("</member>\n")
        out.append("</struct></value>\n")
    elif kind is list or kind is tuple:
        if depth >= MAX_XMLRPC_DEPTH:
            raise _NotCommon()
        out.append("<value><array><data>\n")
        for item in value:
            _write_value(item, out, allow_none, depth + 1)
        out.append("</data></array></value>\n")
    elif kind is bool:
        out.append("<value><boolean>1</boolean></value>\n" if value else
                   "<value><boolean>0</boolean></value>\n")
    elif kind is int and xmlrpc.client.MININT <= value <= xmlrpc.client.MAXINT:
        out.append("<value><int>%d</int></value>\n" % value)
    elif kind is float:
        out.append("<value><double>%r</double></value>\n" % value)
    elif value is None and allow_none:
        out.append("<value><nil/></value>")
    else:
        raise _NotCommon()


def _unsafe_kind(exc: DefusedXmlException) -> str:
    name = type(exc).__name__
    return {"DTDForbidden": "a document type declaration",
            "EntitiesForbidden": "an entity declaration",
            "ExternalReferenceForbidden": "an external reference"}.get(name, "unsafe XML")


def _expat_reason(exc: ExpatError) -> str:
    # Only expat's fixed message text and the position, never document content.
    return "%s at line %s, column %s" % (ErrorString(exc.code), exc.lineno, exc.offset)


def _read_bounded(response: Any, limit: int) -> bytes:
    """Read a whole HTTP response body, gunzipping it, at most ``limit`` bytes."""
    raw = bytearray()
    while True:
        chunk = response.read(_READ_CHUNK)
        if not chunk:
            break
        raw += chunk
        if len(raw) > limit:
            raise xmlrpc.client.ResponseError("XML-RPC response larger than %d bytes" % limit)
    if response.getheader("Content-Encoding", "") == "gzip":
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = decomp.decompress(bytes(raw), limit + 1)
        except zlib.error:
            raise xmlrpc.client.ResponseError("invalid gzip XML-RPC response") from None
        if len(out) > limit or decomp.unconsumed_tail:
            raise xmlrpc.client.ResponseError("XML-RPC response larger than %d bytes" % limit)
        return out
    return bytes(raw)


class _SafeTransportMixin:
    """Response parsing with :func:`safe_xmlrpc_loads`, a socket timeout and a size cap."""

    _timeout: Optional[float]
    _use_datetime: bool
    _use_builtin_types: bool
    max_response = MAX_XMLRPC_BODY
    _aborted = False

    def abort(self) -> None:
        """Break the current request from any thread; later requests fail.

        A thread blocked on the response gets an error at once, and every
        later request raises :class:`ConnectionAbortedError`.
        """
        self._aborted = True
        conn = getattr(self, "_connection", (None, None))[1]
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def make_connection(self, host: Any) -> Any:
        if self._aborted:
            raise ConnectionAbortedError("transport aborted")
        conn = super().make_connection(host)  # type: ignore[misc]
        if self._timeout is not None:
            conn.timeout = self._timeout
            if conn.sock is not None:
                conn.sock.settimeout(self._timeout)
        return conn

    def getparser(self) -> Tuple[Any, Any]:
        """Return a defused parser and its unmarshaller (for code that calls it directly).

        Returns
        -------
        parser, unmarshaller : tuple
        """
        return _safe_parser(self._use_datetime, self._use_builtin_types)

    def parse_response(self, response: Any) -> tuple:
        """Read and safely parse an XML-RPC response.

        Parameters
        ----------
        response : http.client.HTTPResponse

        Returns
        -------
        params : tuple

        Raises
        ------
        xmlrpc.client.Fault, xmlrpc.client.ResponseError
        """
        body = _read_bounded(response, self.max_response)
        if getattr(self, "verbose", False):
            print("body:", repr(body[:1024]))
        params, _ = safe_xmlrpc_loads(body, self._use_datetime, self._use_builtin_types)
        return params


class SafeTransport(_SafeTransportMixin, xmlrpc.client.Transport):
    """An HTTP XML-RPC transport that parses responses safely.

    Parameters
    ----------
    use_datetime, use_builtin_types : bool, optional
        As for :class:`xmlrpc.client.Transport`.
    headers : sequence of tuple, optional
        Extra HTTP headers sent with every request, as ``(name, value)`` pairs of str.
    timeout : float, optional
        Socket timeout in seconds for connecting and for each read; ``None``
        uses the global default.
    """

    def __init__(self, use_datetime: bool = False, use_builtin_types: bool = False, *,
                 headers: Sequence[Tuple[str, str]] = (), timeout: Optional[float] = None) -> None:
        super().__init__(use_datetime, use_builtin_types, headers=headers)
        self._timeout = timeout


class SafeSafeTransport(_SafeTransportMixin, xmlrpc.client.SafeTransport):
    """An HTTPS XML-RPC transport that parses responses safely.

    Parameters
    ----------
    use_datetime, use_builtin_types : bool, optional
        As for :class:`xmlrpc.client.SafeTransport`.
    headers : sequence of tuple, optional
        Extra HTTP headers sent with every request, as ``(name, value)`` pairs of str.
    timeout : float, optional
        Socket timeout in seconds; ``None`` uses the global default.
    context : ssl.SSLContext, optional
        The TLS context.
    """

    def __init__(self, use_datetime: bool = False, use_builtin_types: bool = False, *,
                 headers: Sequence[Tuple[str, str]] = (), timeout: Optional[float] = None,
                 context: Any = None) -> None:
        super().__init__(use_datetime, use_builtin_types, headers=headers, context=context)
        self._timeout = timeout
