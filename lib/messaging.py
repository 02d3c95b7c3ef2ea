"""clever-show's ``lib.messaging``: the same API and the same bytes on the wire.

Frames are ``protoheader | JSON header | content``: a 2-byte big-endian
length of the JSON header, the header itself (``json.dumps(...,
ensure_ascii=False)`` in UTF-8) and the content (JSON or raw bytes).

The module is organised in three parts:

* the codec (:class:`MessageManager`), which turns bytes into messages and
  back and does no I/O;
* :class:`ConnectionManager`, the per-connection state driven by a selector
  loop that the application owns (``cm.process_events(mask)`` for every ready
  key whose ``data`` is the connection), and :class:`NotifierSock`, which
  wakes that loop when another thread queues data;
* a small example (``python -m lib.messaging serve|client|demo``).

The module works both as ``lib.messaging`` and, with ``lib/`` on
``sys.path``, as top-level ``messaging``.
"""

import argparse
import codecs
import collections
import heapq
import importlib
import itertools
import json
import logging
import os
import selectors
import socket
import sys
import tempfile
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union



def _import_netutil() -> Any:
    """Import the sibling ``netutil`` the way this module itself was imported."""
    if __package__:  # ``lib.messaging`` (also ``python -m lib.messaging``)
        names = [__package__ + ".netutil", "netutil"]
    else:  # top-level ``messaging`` with lib/ on sys.path
        names = ["netutil", "lib.netutil"]
    for name in names[:-1]:
        try:
            return importlib.import_module(name)
        except ImportError:
            pass
    return importlib.import_module(names[-1])


_netutil = _import_netutil()

__all__ = [
    "MessageManager",
    "ConnectionManager",
    "NotifierSock",
    "Singleton",
    "Namespace",
    "PendingRequest",
    "message_callback",
    "request_callback",
    "set_keepalive",
    "get_ip_address",
    "MAX_CONTENT_LENGTH",
]

logger = logging.getLogger(__name__ if __name__ != "__main__" else "lib.messaging")

get_ip_address = _netutil.get_ip_address
set_keepalive = _netutil.set_keepalive

#: Largest content a received frame may announce (``content-length``).
MAX_CONTENT_LENGTH = 64 * 1024 * 1024
# Bytes of the fixed-length protoheader (``struct ">H"``).
_PROTOHEADER_LENGTH = 2
# Headers every frame must carry.
_REQUIRED_HEADERS = ("byteorder", "content-length", "content-type", "content-encoding", "message-type")
# Smallest number of bytes asked of one ``recv``/``send`` call.
_MIN_IO_SIZE = 64 * 1024
#: Small queued frames are joined into one ``send`` up to this size.
_COALESCE_LIMIT = 64 * 1024
#: Bytes read from a file per step of a streamed file frame.
_FILE_CHUNK = 256 * 1024
#: Bytes sent per write event, in I/O-size units, before other sockets get their turn.
_WRITE_ROUNDS = 4
#: Bytes of binary content shown in debug logs.
_LOG_CONTENT_BYTES = 256
# The action and request name used for file transfers.
_FILETRANSFER = "filetransfer"

_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False)
_JSON_DECODER = json.JSONDecoder(object_pairs_hook=collections.OrderedDict)


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
class Namespace:
    """An attribute bag that also supports ``ns["name"]`` access.

    Parameters
    ----------
    **kwargs
        Initial attributes.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    def __repr__(self) -> str:
        fields = ", ".join("%s=%r" % item for item in self.__dict__.items())
        return "%s(%s)" % (type(self).__name__, fields)


class PendingRequest(Namespace):
    """A request sent with :meth:`ConnectionManager.get_response` and not yet answered.

    Fields: ``requested_value, value, callback, callback_args, callback_kwargs,
    request_args, request_kwargs, resend`` and ``expires_on`` (a
    :func:`time.monotonic` deadline, or None for no timeout).
    """


class _SingletonMeta(type):
    """Metaclass giving each class one shared instance."""

    _instances: Dict[type, Any] = {}
    _lock = threading.Lock()

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = _SingletonMeta._instances.get(cls)
        if instance is None:
            with _SingletonMeta._lock:
                instance = _SingletonMeta._instances.get(cls)
                if instance is None:
                    instance = super().__call__(*args, **kwargs)
                    _SingletonMeta._instances[cls] = instance
        return instance


class Singleton(metaclass=_SingletonMeta):
    """Singleton base class: every call of a subclass returns its one instance."""


# ---------------------------------------------------------------------------
# Codec (no I/O)
# ---------------------------------------------------------------------------
class _FrameError(ValueError):
    """A received frame breaks the format; the connection cannot go on."""


def _json_encode(obj: Any, encoding: str = "utf-8") -> bytes:
    return _JSON_ENCODER.encode(obj).encode(encoding)


def _json_decode(data: Union[bytes, bytearray], encoding: str = "utf-8") -> Any:
    return _JSON_DECODER.decode(data.decode(encoding))


def _decode_header(raw: Union[bytes, bytearray], max_content_length: Optional[int]) -> Any:
    """Parse and check a JSON header; raise :class:`_FrameError` if it is bad."""
    try:
        header = _json_decode(raw, "utf-8")
    except (UnicodeDecodeError, ValueError) as error:
        raise _FrameError("JSON header is not valid UTF-8 JSON: %s" % error) from None
    if not isinstance(header, dict):
        raise _FrameError("JSON header is not an object: %r" % (header,))
    for name in _REQUIRED_HEADERS:
        if name not in header:
            raise _FrameError("Missing required header {}".format(name))
    length = header["content-length"]
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise _FrameError("Invalid content-length %r" % (length,))
    if max_content_length is not None and length > max_content_length:
        raise _FrameError("content-length %d exceeds the maximum of %d bytes"
                          % (length, max_content_length))
    return header


def _decode_content(header: Any, data: bytes) -> Any:
    """Decode JSON content with the header's encoding; keep anything else as bytes."""
    if header["content-type"] != "json":
        return data
    encoding = header["content-encoding"]
    try:
        codecs.lookup(encoding)
        return _json_decode(data, encoding)
    except (LookupError, TypeError) as error:
        raise _FrameError("Unknown content-encoding %r: %s" % (encoding, error)) from None
    except (UnicodeDecodeError, ValueError) as error:
        raise _FrameError("JSON content is not valid %s JSON: %s" % (encoding, error)) from None


class MessageManager:
    """One incoming message, decoded incrementally, plus the frame encoders.

    A frame has three parts: a 2-byte big-endian protoheader holding the
    length of the JSON header; the JSON header (``byteorder``,
    ``content-type``, ``content-encoding``, ``content-length``,
    ``message-type`` and extra keys for the message type); the content (JSON,
    or raw bytes for ``content-type`` other than ``"json"``).

    Received bytes go to :attr:`income_raw` (``message.income_raw += data``),
    then :meth:`process_message` consumes what this message needs.

    Attributes
    ----------
    jsonheader : dict or None
        The header, once it has been decoded.
    content : object or None
        The content, once the whole message has been decoded.
    max_content_length : int or None
        Largest accepted ``content-length``; None for no limit.
    """

    max_content_length: Optional[int] = MAX_CONTENT_LENGTH

    def __init__(self) -> None:
        """Create an empty message: ``message = MessageManager()``."""
        self._raw = bytearray()
        self._jsonheader_len: Optional[int] = None
        self.jsonheader: Optional[Any] = None
        self.content: Any = None
        self._complete = False
        self._sink: Any = None
        self._sink_left = 0
        # Called with the header once decoded; may return a sink object with
        # write(bytes) and finish() -> content, to stream the content.
        self._on_header: Optional[Callable[[Any], Any]] = None

    @property
    def income_raw(self) -> bytes:
        """Received bytes not consumed yet (bytes after the message stay here)."""
        return bytes(self._raw)

    @income_raw.setter
    def income_raw(self, value: Union[bytes, bytearray]) -> None:
        self._raw = bytearray(value)

    @property
    def complete(self) -> bool:
        """True once header and content have been decoded (even a JSON ``null``)."""
        return self._complete

    # -- encoders --------------------------------------------------------
    @classmethod
    def create_message(cls, content_bytes: bytes, content_type: str, message_type: str,
                       content_encoding: str = "utf-8",
                       additional_headers: Optional[Dict[str, Any]] = None) -> bytes:
        """Return one encoded frame.

        Parameters
        ----------
        content_bytes : bytes
            The content.
        content_type : str
            ``"json"`` or ``"binary"``.
        message_type : str
            ``"message"``, ``"request"`` or ``"response"``.
        content_encoding : str, optional
            Encoding of JSON content, written as is (also for binary).
        additional_headers : dict, optional
            Keys added to the header after the standard ones.

        Returns
        -------
        bytes
            The frame.
        """
        return cls._create_header(len(content_bytes), content_type, message_type,
                                  content_encoding, additional_headers) + bytes(content_bytes)

    @staticmethod
    def _create_header(content_length: int, content_type: str, message_type: str,
                       content_encoding: str = "utf-8",
                       additional_headers: Optional[Dict[str, Any]] = None) -> bytes:
        """Return protoheader and JSON header for a content of ``content_length`` bytes."""
        header = {
            "byteorder": sys.byteorder,
            "content-type": content_type,
            "content-encoding": content_encoding,
            "content-length": content_length,
            "message-type": message_type,
        }
        if additional_headers:
            header.update(additional_headers)
        header_bytes = _json_encode(header)
        if len(header_bytes) > 0xFFFF:
            raise ValueError("JSON header of %d bytes does not fit the 2-byte protoheader"
                             % len(header_bytes))
        return len(header_bytes).to_bytes(_PROTOHEADER_LENGTH, "big") + header_bytes

    @classmethod
    def create_json_message(cls, contents: Any,
                            additional_headers: Optional[Dict[str, Any]] = None) -> bytes:
        """Return a ``message`` frame with JSON content.

        Parameters
        ----------
        contents : object
            Any JSON-serialisable object.
        additional_headers : dict, optional
            Extra header keys.

        Returns
        -------
        bytes
            The frame.
        """
        return cls.create_message(_json_encode(contents), "json", "message",
                                  additional_headers=additional_headers)

    @classmethod
    def create_action_message(cls, action: str, args: Iterable[Any] = (),
                              kwargs: Optional[Dict[str, Any]] = None) -> bytes:
        """Return an action message: header ``action``, content ``{"args", "kwargs"}``.

        Parameters
        ----------
        action : str
            Name of the action, matched by :func:`message_callback` on the peer.
        args : tuple, optional
            Positional arguments (sent as a JSON list).
        kwargs : dict, optional
            Keyword arguments.

        Returns
        -------
        bytes
            The frame.
        """
        if kwargs is None:
            kwargs = {}
        return cls.create_json_message({"args": args, "kwargs": kwargs}, {"action": action})

    @classmethod
    def create_request(cls, requested_value: str, request_id: str, args: Iterable[Any] = (),
                       kwargs: Optional[Dict[str, Any]] = None) -> bytes:
        """Return a request; its name and id travel in the content.

        Parameters
        ----------
        requested_value : str
            Name matched by :func:`request_callback` on the peer.
        request_id : str
            Id the response will carry.
        args : tuple, optional
            Positional arguments.
        kwargs : dict, optional
            Keyword arguments.

        Returns
        -------
        bytes
            The frame.
        """
        if kwargs is None:
            kwargs = {}
        contents = {"requested_value": requested_value, "request_id": request_id,
                    "args": args, "kwargs": kwargs}
        return cls.create_message(_json_encode(contents), "json", "request")

    @classmethod
    def create_response(cls, requested_value: str, request_id: str, value: Any,
                        filetransfer: bool = False) -> bytes:
        """Return a response; its name and id travel in the header.

        Parameters
        ----------
        requested_value : str
            Name of the request answered.
        request_id : str
            Id of the request answered.
        value : object
            The value (content ``{"value": value}``), or file bytes.
        filetransfer : bool, optional
            If True, ``value`` is sent as raw binary content.

        Returns
        -------
        bytes
            The frame.
        """
        headers = {"requested_value": requested_value, "request_id": request_id}
        if filetransfer:
            return cls.create_message(value, "binary", "response", additional_headers=headers)
        return cls.create_message(_json_encode({"value": value}), "json", "response",
                                  additional_headers=headers)

    # -- decoder ---------------------------------------------------------
    def process_message(self) -> None:
        """Consume as much of :attr:`income_raw` as this message needs.

        Fills :attr:`jsonheader`, then :attr:`content`; bytes of the next
        message stay in :attr:`income_raw`.

        Raises
        ------
        ValueError
            If the header is not JSON, lacks a required key, or announces a
            content over :attr:`max_content_length`, or JSON content cannot
            be decoded.
        """
        if self._complete:
            return
        raw = self._raw
        if self._jsonheader_len is None:
            if len(raw) < _PROTOHEADER_LENGTH:
                return
            self._jsonheader_len = int.from_bytes(raw[:_PROTOHEADER_LENGTH], "big")
            del raw[:_PROTOHEADER_LENGTH]
        if self.jsonheader is None:
            length = self._jsonheader_len
            if len(raw) < length:
                return
            header = _decode_header(raw[:length], self.max_content_length)
            del raw[:length]
            self.jsonheader = header
            if self._on_header is not None:
                self._sink = self._on_header(header)
                self._sink_left = header["content-length"]
        if self._sink is not None:
            self._stream_content()
            return
        length = self.jsonheader["content-length"]
        if len(raw) < length:
            return
        data = bytes(raw[:length])
        del raw[:length]
        self.content = _decode_content(self.jsonheader, data)
        self._complete = True

    def _stream_content(self) -> None:
        raw = self._raw
        take = min(len(raw), self._sink_left)
        if take:
            self._sink.write(bytes(raw[:take]))
            del raw[:take]
            self._sink_left -= take
        if self._sink_left == 0:
            self.content = self._sink.finish()
            self._sink = None
            self._complete = True

    def _abort(self) -> None:
        """Drop a half-received message (releasing a content sink)."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.discard()


# ---------------------------------------------------------------------------
# Files on the connection (streamed in and out)
# ---------------------------------------------------------------------------
def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


class _FileSink:
    """Receives file content into a temporary file next to its destination."""

    def __init__(self, filepath: str) -> None:
        self.error: Optional[BaseException] = None
        self._tmp: Optional[str] = None
        self._file: Any = None
        try:
            directory = os.path.dirname(os.path.abspath(filepath))
            fd, self._tmp = tempfile.mkstemp(prefix="." + os.path.basename(filepath) + ".",
                                             suffix=".part", dir=directory)
            self._file = os.fdopen(fd, "wb")
        except OSError as error:
            self.error = error

    def write(self, data: bytes) -> None:
        if self._file is None:
            return
        try:
            self._file.write(data)
        except OSError as error:
            self.error = error
            self.discard()

    def finish(self) -> "_FileSink":
        if self._file is not None:
            try:
                self._file.close()
            except OSError as error:
                self.error = error
                self.discard()
            self._file = None
        return self

    def commit(self, filepath: str) -> None:
        """Move the received file to ``filepath`` (mode as ``open(path, "wb")`` gives)."""
        if self.error is not None or self._tmp is None:
            raise self.error or OSError("file content was not stored")
        try:
            mode = os.stat(filepath).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_umask()
        try:
            os.chmod(self._tmp, mode)
            os.replace(self._tmp, filepath)
        except OSError:
            self.discard()
            raise
        self._tmp = None

    def discard(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            self._tmp = None


class _FileFrame:
    """An outgoing frame whose binary content is read from a file while sending."""

    def __init__(self, header: bytes, fileobj: Any, size: int, name: str) -> None:
        self.header = header
        self.size = size
        self.name = name
        self._file = fileobj
        self._sent_header = False
        self._left = size

    def next_chunk(self, size: int) -> Optional[bytes]:
        """The next bytes of the frame, or None when it is complete."""
        if not self._sent_header:
            self._sent_header = True
            return self.header
        if self._left == 0:
            return None
        data = self._file.read(min(size, self._left))
        if not data:
            raise _FrameError("file %s shrank while being sent (%d bytes missing)"
                              % (self.name, self._left))
        self._left -= len(data)
        return data

    def rewind(self) -> None:
        self._file.seek(0)
        self._sent_header = False
        self._left = self.size

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass


def _open_file_frame(filepath: str, headers_for: Callable[[int], bytes]) -> _FileFrame:
    """Open ``filepath`` and build a frame streaming it; raises OSError."""
    fileobj = open(filepath, "rb")
    try:
        size = os.fstat(fileobj.fileno()).st_size
        return _FileFrame(headers_for(size), fileobj, size, filepath)
    except BaseException:
        fileobj.close()
        raise


# ---------------------------------------------------------------------------
# Callback registration
# ---------------------------------------------------------------------------
def message_callback(action_string: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function for action messages named ``action_string``.

    The function is called as ``f(connection, *args, **kwargs)`` on the loop
    thread; its return value is ignored and an exception it raises is logged.
    The registry is :attr:`ConnectionManager.messages_callbacks` (shared by
    every connection; the last registration wins).

    Parameters
    ----------
    action_string : str
        The action to handle.

    Returns
    -------
    callable
        A decorator returning a wrapper of the function.
    """
    def inner(f: Callable[..., Any]) -> Callable[..., Any]:
        ConnectionManager.messages_callbacks[action_string] = f
        logger.debug("Registered message function %s for %s", f, action_string)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return f(*args, **kwargs)
        wrapper.__wrapped__ = f  # type: ignore[attr-defined]
        return wrapper
    return inner


def request_callback(string_command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function for requests named ``string_command``.

    The function is called as ``f(connection, *args, **kwargs)`` on the loop
    thread and its JSON-serialisable return value is sent back. If it raises,
    the error is logged and no response is sent (the requester's timeout, if
    any, then fails the request). The registry is
    :attr:`ConnectionManager.requests_callbacks`.

    Parameters
    ----------
    string_command : str
        The requested value to answer.

    Returns
    -------
    callable
        A decorator returning a wrapper of the function.
    """
    def inner(f: Callable[..., Any]) -> Callable[..., Any]:
        ConnectionManager.requests_callbacks[string_command] = f
        logger.debug("Registered callback function %s for %s", f, string_command)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return f(*args, **kwargs)
        wrapper.__wrapped__ = f  # type: ignore[attr-defined]
        return wrapper
    return inner


# ---------------------------------------------------------------------------
# Request timeouts
# ---------------------------------------------------------------------------
class _RequestExpiry:
    """One thread, alive only while timed requests are pending, that fails them on expiry."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: List[Tuple[float, int, Any, str]] = []
        self._seq = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def add(self, deadline: float, connection: "ConnectionManager", request_id: str) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), weakref.ref(connection), request_id))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="messaging-request-expiry",
                                                daemon=True)
                self._thread.start()
            else:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            due = []
            with self._cond:
                if not self._heap:
                    self._thread = None
                    return
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
            for _, _, ref, request_id in due:
                connection = ref()
                if connection is not None:
                    connection._expire_request(request_id)


_expiry = _RequestExpiry()


# ---------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------
_EVENT_MASKS = {
    "r": selectors.EVENT_READ,
    "w": selectors.EVENT_WRITE,
    "rw": selectors.EVENT_READ | selectors.EVENT_WRITE,
}


class ConnectionManager:
    """One TCP connection speaking the messaging protocol.

    The connection does not own a loop: the application registers the socket
    with its selector (``data`` = this object), calls :meth:`connect`, and for
    every ready key calls :meth:`process_events`. If that raises, the
    connection has already been closed (the exception says why). Sending
    (:meth:`send_message`, :meth:`get_response`, :meth:`send_file`,
    :meth:`get_file`, :meth:`close`) is safe from any thread; callbacks run
    on the loop thread.

    Parameters
    ----------
    whoami : str, optional
        ``"computer"`` or ``"pi"``; on ``"pi"`` received files are given to
        the user ``pi``.

    Attributes
    ----------
    selector : selectors.BaseSelector
        The selector the socket is registered with (None when closed).
    socket : socket.socket
        The connection's socket (None when closed).
    addr : object
        Address of the peer.
    buffer_size : int
        Bytes asked of each ``recv``/``send`` call (at least 64 KiB
        are used; the bytes on the wire do not depend on it).
    resume_queue : bool
        Keep unsent frames across a reconnection (a frame cut by the
        disconnection is sent again whole).
    resend_requests : bool
        On :meth:`connect`, send unanswered requests again, once, with their
        original arguments.
    max_content_length : int or None
        Largest content a received frame may announce; a larger one closes
        the connection.
    request_timeout : float or None
        Default timeout of :meth:`get_response`, in seconds (None: wait
        forever).
    """

    messages_callbacks: Dict[str, Callable[..., Any]] = {}
    requests_callbacks: Dict[str, Callable[..., Any]] = {}

    def __init__(self, whoami: str = "computer") -> None:
        """Create an unconnected connection: ``ConnectionManager(whoami)``."""
        self.selector: Any = None
        self.socket: Optional[socket.socket] = None
        self.addr: Any = None
        self.whoami = whoami
        self.buffer_size = 1024
        self.resume_queue = False
        self.resend_requests = True
        self.max_content_length: Optional[int] = MAX_CONTENT_LENGTH
        self.request_timeout: Optional[float] = None

        self._should_close = False
        self._send_queue: collections.deque = collections.deque()
        self._received_queue: collections.deque = collections.deque()
        self._request_queue: "collections.OrderedDict[str, PendingRequest]" = collections.OrderedDict()
        self._send_lock = threading.RLock()
        self._request_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._request_ids = itertools.count(1)

        self._incoming = self._new_incoming()
        self._out = memoryview(b"")
        self._out_pos = 0
        self._out_frames: List[Tuple[int, bytes]] = []  # (end offset in _out, frame)
        self._current_file: Optional[_FileFrame] = None
        self._writing = False  # the selector mask includes EVENT_WRITE
        self._loop_ident: Optional[int] = None
        self._generation = 0  # counts connects and closes
        self._in_events = False  # the loop thread is inside process_events

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self.addr)

    # -- selector --------------------------------------------------------
    def _set_selector_events_mask(self, mode: str) -> Any:
        """Set the events watched: ``"r"``, ``"w"`` or ``"rw"``."""
        try:
            events = _EVENT_MASKS[mode]
        except KeyError:
            raise ValueError("Invalid events mask mode {}.".format(mode)) from None
        with self._send_lock:
            self._writing = bool(events & selectors.EVENT_WRITE)
            return self._modify(events)

    def _modify(self, events: int) -> Any:
        """Change the watched events, keeping the key's data (send lock held)."""
        key = self.selector.get_key(self.socket)
        if key.events == events:
            return key
        return self.selector.modify(self.socket, events, key.data)

    def _notify(self) -> None:
        """Wake the loop if the caller is not the loop thread."""
        if threading.get_ident() != self._loop_ident:
            selector = self.selector
            if selector is not None:
                NotifierSock()._notify_selector(selector)

    # -- lifecycle -------------------------------------------------------
    def connect(self, client_selector: Any, client_socket: socket.socket, client_addr: Any) -> None:
        """Attach the connection to a socket registered with ``client_selector``.

        Parameters
        ----------
        client_selector : selectors.BaseSelector
            The application's selector.
        client_socket : socket.socket
            A connected, non-blocking socket (registered with ``data`` = this
            object; it is registered here if it is not yet).
        client_addr : object
            Address of the peer.
        """
        with self._send_lock:
            self.selector = client_selector
            self.socket = client_socket
            self.addr = client_addr
            self._generation += 1
            with self._close_lock:
                self._should_close = False
            self._clear()
            self._reset_incoming()
            events = selectors.EVENT_READ
            if self._send_queue or self._current_file is not None or self._out_pos < len(self._out):
                events |= selectors.EVENT_WRITE
            self._writing = bool(events & selectors.EVENT_WRITE)
            try:
                self._modify(events)
            except KeyError:
                client_selector.register(client_socket, events, self)
        if self.resend_requests:
            self._resend_requests()

    def _clear(self) -> None:
        """Drop queued frames and buffers, unless :attr:`resume_queue`."""
        if self.resume_queue:
            return
        with self._send_lock:
            for item in self._send_queue:
                if isinstance(item, _FileFrame):
                    item.close()
            self._send_queue.clear()
            if self._current_file is not None:
                self._current_file.close()
                self._current_file = None
            self._out = memoryview(b"")
            self._out_pos = 0
            self._out_frames = []
            self._received_queue.clear()

    def _new_incoming(self) -> MessageManager:
        message = MessageManager()
        message.max_content_length = getattr(self, "max_content_length", MAX_CONTENT_LENGTH)
        message._on_header = self._content_sink
        return message

    def _reset_incoming(self) -> None:
        self._incoming._abort()
        self._incoming = self._new_incoming()

    def _requeue_unsent(self) -> None:
        """Put frames not completely sent back at the head of the queue (send lock held)."""
        if self._current_file is not None:
            self._current_file.rewind()
            self._send_queue.appendleft(self._current_file)
            self._current_file = None
        unsent = [frame for end, frame in self._out_frames if end > self._out_pos]
        self._send_queue.extendleft(reversed(unsent))
        self._out = memoryview(b"")
        self._out_pos = 0
        self._out_frames = []

    def close(self) -> None:
        """Close the connection; safe from any thread (done by the loop's next event)."""
        with self._close_lock:
            self._should_close = True
        with self._send_lock:
            if self.selector is None or self.socket is None:
                return
            try:
                self._writing = True
                self._modify(selectors.EVENT_READ | selectors.EVENT_WRITE)
            except (KeyError, ValueError, OSError):
                pass
        self._notify()

    def _close(self) -> None:
        """Unregister and close the socket now (loop thread); idempotent."""
        with self._send_lock:
            selector, sock = self.selector, self.socket
            if sock is not None:
                self._generation += 1
            self.selector = None
            self.socket = None
            self._writing = False
            if sock is not None:
                logger.info("Closing connection to %s", self.addr)
            if selector is not None and sock is not None:
                try:
                    selector.unregister(sock)
                except (KeyError, ValueError):
                    pass
                except Exception as error:
                    logger.error("%s: Error during selector unregistering: %s", self.addr, error)
            if sock is not None:
                try:
                    sock.close()
                except OSError as error:
                    logger.error("%s: Error during socket closing: %s", self.addr, error)
            with self._close_lock:
                self._should_close = False
            self._requeue_unsent()
            self._reset_incoming()
            self._clear()

    # -- events ----------------------------------------------------------
    def process_events(self, mask: int) -> None:
        """Handle the selector events ``mask`` of this connection (loop thread).

        Parameters
        ----------
        mask : int
            ``selectors.EVENT_READ`` and/or ``selectors.EVENT_WRITE``.

        Raises
        ------
        RuntimeError
            ``"Peer closed."`` when the peer closed the connection.
        ValueError
            When the peer sent a malformed frame.
        OSError
            When the socket failed.

        In every case the connection is closed before the exception leaves.
        """
        self._loop_ident = threading.get_ident()
        with self._close_lock:
            close = self._should_close
        if close:
            self._close()
            return
        self._in_events = True
        try:
            if mask & selectors.EVENT_READ:
                self.read()
        finally:
            self._in_events = False
        # Frames queued by callbacks just now go out without another select round.
        if self.socket is not None and (mask & selectors.EVENT_WRITE or self._send_queue):
            self.write()

    def _io_size(self) -> int:
        return max(int(self.buffer_size), _MIN_IO_SIZE)

    def read(self) -> None:
        """Receive available bytes and handle every complete message."""
        sock = self.socket
        if sock is None:
            return
        try:
            data = sock.recv(self._io_size())
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            logger.warning("Connection to %s lost: %s", self.addr, error)
            self._close()
            raise
        if not data:
            pending = len(self._incoming._raw) + (self._incoming.jsonheader is not None)
            if pending:
                logger.warning("Connection to %s lost in the middle of a frame!", self.addr)
            else:
                logger.warning("Connection to %s lost!", self.addr)
            self._close()
            raise RuntimeError("Peer closed.")
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        incoming = self._incoming
        incoming._raw += data
        generation = self._generation
        while generation == self._generation:  # a callback may close or reconnect us
            try:
                incoming.process_message()
                if not incoming._complete:
                    return
                following = self._new_incoming()
                following._raw, incoming._raw = incoming._raw, bytearray()
                self._incoming = following
                self.process_received(incoming)
            except _FrameError as error:
                logger.error("Bad data from %s, closing the connection: %s", self.addr, error)
                self._close()
                raise
            incoming = self._incoming
            if not incoming._raw:
                return

    def write(self) -> None:
        """Send queued frames; go back to read-only events when all is sent."""
        sock = self.socket
        if sock is None:
            return
        size = self._io_size()
        budget = size * _WRITE_ROUNDS
        try:
            self._write_some(sock, size, budget)
        finally:
            if self.socket is not None and not self._writing:
                self._watch_writes_if_pending()

    def _watch_writes_if_pending(self) -> None:
        with self._send_lock:
            if self._writing or self.socket is None:
                return
            if self._send_queue or self._current_file is not None or self._out_pos < len(self._out):
                try:
                    self._modify(selectors.EVENT_READ | selectors.EVENT_WRITE)
                    self._writing = True
                except (KeyError, ValueError, OSError) as error:
                    logger.debug("Cannot watch %s for writing: %s", self.addr, error)

    def _write_some(self, sock: socket.socket, size: int, budget: int) -> None:
        while budget > 0:
            if self._out_pos >= len(self._out):
                try:
                    if not self._fill_out(size):
                        return
                except _FrameError as error:
                    logger.error("Cannot send to %s, closing the connection: %s", self.addr, error)
                    self._close()
                    raise
            wanted = self._out[self._out_pos:self._out_pos + size]
            try:
                sent = sock.send(wanted)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                logger.warning("Sending to %s failed: %s", self.addr, error)
                self._close()
                raise
            self._out_pos += sent
            budget -= sent
            if sent < len(wanted):
                return  # the socket buffer is full

    def _fill_out(self, size: int) -> bool:
        """Load the next bytes to send; False (and read-only events) when there are none."""
        with self._send_lock:
            if self._current_file is None:
                queue = self._send_queue
                if not queue:
                    self._out = memoryview(b"")
                    self._out_pos = 0
                    self._out_frames = []
                    if self._writing and self.socket is not None:
                        self._writing = False
                        try:
                            self._modify(selectors.EVENT_READ)
                        except (KeyError, ValueError, OSError) as error:
                            logger.debug("Cannot stop watching %s for writing: %s", self.addr, error)
                    return False
                if isinstance(queue[0], _FileFrame):
                    self._current_file = queue.popleft()
                else:
                    frames = []
                    total = 0
                    while queue and total < _COALESCE_LIMIT and not isinstance(queue[0], _FileFrame):
                        frame = queue.popleft()
                        total += len(frame)
                        frames.append((total, frame))
                    self._out_frames = frames
                    self._out = memoryview(frames[0][1] if len(frames) == 1
                                           else b"".join(frame for _, frame in frames))
                    self._out_pos = 0
                    return True
            current = self._current_file
        chunk = current.next_chunk(max(size, _FILE_CHUNK))
        with self._send_lock:
            if chunk is None:
                current.close()
                if self._current_file is current:
                    self._current_file = None
                self._out = memoryview(b"")
                self._out_pos = 0
                self._out_frames = []
            else:
                self._out = memoryview(chunk)
                self._out_pos = 0
                self._out_frames = []
        return True if chunk is not None else self._fill_out(size)

    def _send(self, data: Union[bytes, _FileFrame]) -> None:
        """Queue one frame for sending; safe from any thread."""
        with self._send_lock:
            self._send_queue.append(data)
            if self._writing or self.selector is None or self.socket is None:
                if self.selector is None:
                    logger.debug("Not connected: frame queued for %s", self.addr)
                return
            if self._in_events and threading.get_ident() == self._loop_ident:
                return  # process_events writes before it returns
            try:
                self._modify(selectors.EVENT_READ | selectors.EVENT_WRITE)
            except (KeyError, ValueError, OSError) as error:
                logger.debug("Cannot watch %s for writing: %s", self.addr, error)
                return
            self._writing = True
        self._notify()

    # -- receiving -------------------------------------------------------
    def _content_sink(self, header: Any) -> Optional[_FileSink]:
        """Stream received file content to disk instead of memory."""
        if header.get("content-type") != "binary":
            return None
        message_type = header.get("message-type")
        if message_type == "message" and header.get("action") == _FILETRANSFER:
            filepath = header.get("filepath")
            return _FileSink(filepath) if isinstance(filepath, str) else None
        if message_type == "response" and header.get("requested_value") == _FILETRANSFER:
            with self._request_lock:
                request = self._request_queue.get(header.get("request_id"))
            if request is not None and request.requested_value == _FILETRANSFER:
                filepath = request.callback_kwargs.get("filepath")
                if isinstance(filepath, str):
                    return _FileSink(filepath)
        return None

    def process_received(self, message: MessageManager) -> None:
        """Dispatch a complete message by its ``message-type``.

        Parameters
        ----------
        message : MessageManager
            A decoded message.
        """
        header = message.jsonheader
        message_type = header["message-type"]
        if logger.isEnabledFor(logging.DEBUG):
            content = message.content
            if isinstance(content, (bytes, bytearray)):
                content = content[:_LOG_CONTENT_BYTES]
            logger.debug("Received message! Header: %s, content: %s", header, content)
        if message_type == "message":
            self._process_message(message)
        elif message_type == "response":
            self._process_response(message)
        elif message_type == "request":
            self._process_request(message)
        else:
            logger.warning("Unknown message-type %r from %s ignored", message_type, self.addr)

    def _process_message(self, message: MessageManager) -> None:
        action = message.jsonheader.get("action")
        if action is None:
            raise _FrameError("message without action")
        if not isinstance(action, str):
            raise _FrameError("action is not a string: %r" % (action,))
        if action == _FILETRANSFER:
            filepath = message.jsonheader.get("filepath")
            if not isinstance(filepath, str):
                _discard(message.content)
                raise _FrameError("file transfer without a filepath")
            self._process_filetransfer(message.content, filepath)
        else:
            self._process_action(message)

    def _process_action(self, message: MessageManager) -> None:
        action = message.jsonheader["action"]
        args, kwargs = _call_arguments(message.content, "action %r" % (action,))
        callback = self.messages_callbacks.get(action)
        if callback is None:
            logger.warning("Action {} does not exist!".format(action))
            return
        try:
            callback(self, *args, **kwargs)
        except Exception as error:
            logger.error("Error during action {} execution: {}".format(action, error), exc_info=True)

    def _process_request(self, message: MessageManager) -> None:
        content = message.content
        if not isinstance(content, dict) or "requested_value" not in content \
                or "request_id" not in content:
            raise _FrameError("request without requested_value or request_id: %r" % (content,))
        requested_value = content["requested_value"]
        request_id = content["request_id"]
        if not isinstance(requested_value, str):
            raise _FrameError("requested_value is not a string: %r" % (requested_value,))
        args, kwargs = _call_arguments(content, "request %r" % (requested_value,))
        if requested_value == _FILETRANSFER:
            self._send_file_response(request_id, kwargs.get("filepath"))
            return
        callback = self.requests_callbacks.get(requested_value)
        if callback is None:
            logger.warning("Request {} does not exist!".format(requested_value))
            return
        try:
            value = callback(self, *args, **kwargs)
            frame = MessageManager.create_response(requested_value, request_id, value)
        except Exception as error:
            logger.error("Error during request {} processing: {}".format(requested_value, error),
                         exc_info=True)
            return
        self._send(frame)

    def _send_file_response(self, request_id: Any, filepath: Any) -> None:
        headers = {"requested_value": _FILETRANSFER, "request_id": request_id}
        try:
            frame = _open_file_frame(filepath, lambda size: MessageManager._create_header(
                size, "binary", "response", additional_headers=headers))
        except (OSError, TypeError, ValueError) as error:
            logger.error("Error during request {} processing: {}".format(_FILETRANSFER, error))
            return
        self._send(frame)

    def _process_response(self, message: MessageManager) -> None:
        header = message.jsonheader
        if "request_id" not in header or "requested_value" not in header:
            _discard(message.content)
            raise _FrameError("response without request_id or requested_value")
        request_id, requested_value = header["request_id"], header["requested_value"]
        now = time.monotonic()
        with self._request_lock:
            request = self._request_queue.get(request_id) if isinstance(request_id, str) else None
            if request is not None and request.requested_value == requested_value:
                del self._request_queue[request_id]
            else:
                request = None
        if request is None:
            _discard(message.content)
            logger.warning("Unexpected response! (%s %s from %s)", requested_value, request_id, self.addr)
            return
        if request.expires_on is not None and request.expires_on <= now:
            _discard(message.content)
            self._log_expired(request_id, request)
            return
        if requested_value == _FILETRANSFER:
            value = True
            if not self._process_filetransfer(message.content, request.callback_kwargs["filepath"]):
                return  # logged; the callback only hears of files that arrived
        else:
            if not isinstance(message.content, dict) or "value" not in message.content:
                raise _FrameError("response without value: %r" % (message.content,))
            value = message.content["value"]
        if request.callback is None:
            logger.info("No callback were registered for response: %s", request)
            return
        try:
            request.callback(self, value, *request.callback_args, **request.callback_kwargs)
        except Exception as error:
            logger.error("Error during response {} processing: {}".format(request, error),
                         exc_info=True)

    def _process_filetransfer(self, content: Any, filepath: str) -> bool:
        try:
            if isinstance(content, _FileSink):
                content.commit(filepath)
            elif isinstance(content, (bytes, bytearray)):
                with open(filepath, "wb") as f:
                    f.write(content)
            else:
                raise TypeError("file content is not binary")
        except (OSError, TypeError) as error:
            logger.error("File {} can not be written due error: {}".format(filepath, error))
            return False
        logger.info("File %s successfully received", filepath)
        if self.whoami == "pi":
            _give_to_pi(filepath)
        return True

    # -- requests --------------------------------------------------------
    def get_response(self, requested_value: str, callback: Optional[Callable[..., Any]],
                     request_args: Iterable[Any] = (), request_kwargs: Optional[Dict[str, Any]] = None,
                     callback_args: Iterable[Any] = (), callback_kwargs: Optional[Dict[str, Any]] = None,
                     timeout: Optional[float] = None) -> str:
        """Send a request; ``callback(connection, value, *callback_args, **callback_kwargs)``
        is called on the loop thread when the response arrives.

        Parameters
        ----------
        requested_value : str
            Name of the requested value.
        callback : callable or None
            Called with the response.
        request_args : tuple, optional
            Positional arguments of the request.
        request_kwargs : dict, optional
            Keyword arguments of the request.
        callback_args : tuple, optional
            Extra positional arguments for the callback.
        callback_kwargs : dict, optional
            Extra keyword arguments for the callback.
        timeout : float, optional
            Seconds after which the request fails (a warning is logged and
            the callback is never called); defaults to
            :attr:`request_timeout`.

        Returns
        -------
        str
            The request id (unique on this connection).
        """
        if request_kwargs is None:
            request_kwargs = {}
        if callback_kwargs is None:
            callback_kwargs = {}
        if timeout is None:
            timeout = self.request_timeout
        frame_args = tuple(request_args)
        with self._request_lock:
            request_id = "%04d" % next(self._request_ids)
        # Encoded first: arguments that are not JSON raise here, leaving nothing pending.
        frame = MessageManager.create_request(requested_value, request_id, frame_args, request_kwargs)
        expires_on = None if timeout is None else time.monotonic() + timeout
        with self._request_lock:
            self._request_queue[request_id] = PendingRequest(
                requested_value=requested_value, value=None, callback=callback,
                callback_args=callback_args, callback_kwargs=callback_kwargs,
                request_args=frame_args, request_kwargs=request_kwargs, resend=True,
                expires_on=expires_on, frame=frame)
        if expires_on is not None:
            _expiry.add(expires_on, self, request_id)
        self._send(frame)
        return request_id

    def _expire_request(self, request_id: str) -> None:
        with self._request_lock:
            request = self._request_queue.get(request_id)
            if request is None or request.expires_on is None or request.expires_on > time.monotonic():
                return
            del self._request_queue[request_id]
        self._log_expired(request_id, request)

    def _log_expired(self, request_id: str, request: PendingRequest) -> None:
        logger.warning("Request %s (%s) to %s expired without a response",
                       request.requested_value, request_id, self.addr)

    def _resend_requests(self) -> None:
        with self._send_lock:
            queued = {id(item) for item in self._send_queue}
        with self._request_lock:
            frames = []
            for request_id, request in self._request_queue.items():
                if id(getattr(request, "frame", None)) in queued:
                    continue  # its first sending is still queued
                if request.resend:
                    frames.append(MessageManager.create_request(
                        request.requested_value, request_id, request.request_args, request.request_kwargs))
                    request.resend = False
        for frame in frames:
            self._send(frame)

    def get_file(self, client_filepath: str, filepath: Optional[str] = None,
                 callback: Optional[Callable[..., Any]] = None, callback_args: Iterable[Any] = (),
                 callback_kwargs: Optional[Dict[str, Any]] = None) -> str:
        """Ask the peer for the file at ``client_filepath`` and write it to ``filepath``.

        The callback is called as ``callback(connection, True, *callback_args,
        filepath=filepath, **callback_kwargs)`` once the file is written.

        Parameters
        ----------
        client_filepath : str
            Path of the file on the peer.
        filepath : str, optional
            Where to write it; defaults to the basename of ``client_filepath``.
        callback : callable, optional
            Called once the file has arrived.
        callback_args : tuple, optional
            Extra positional arguments for the callback.
        callback_kwargs : dict, optional
            Extra keyword arguments for the callback (``filepath`` is added).

        Returns
        -------
        str
            The request id.
        """
        if callback_kwargs is None:
            callback_kwargs = {}
        if filepath is None:
            filepath = os.path.split(client_filepath)[1]
        callback_kwargs.update({"filepath": filepath})
        return self.get_response(_FILETRANSFER, callback, request_kwargs={"filepath": client_filepath},
                                 callback_args=callback_args, callback_kwargs=callback_kwargs)

    # -- sending ---------------------------------------------------------
    def send_message(self, action: str, args: Iterable[Any] = (),
                     kwargs: Optional[Dict[str, Any]] = None) -> None:
        """Send an action message.

        Parameters
        ----------
        action : str
            Action name, matched by :func:`message_callback` on the peer.
        args : tuple, optional
            Positional arguments.
        kwargs : dict, optional
            Keyword arguments.
        """
        self._send(MessageManager.create_action_message(action, args, kwargs))

    def _send_response(self, requested_value: str, request_id: str, value: Any,
                       filetransfer: bool = False) -> None:
        self._send(MessageManager.create_response(requested_value, request_id, value, filetransfer))

    def send_file(self, filepath: str, dest_filepath: str) -> None:
        """Send the file ``filepath`` for the peer to write at ``dest_filepath``.

        The file is read while it is being sent, not loaded whole. A file
        that cannot be opened is logged and nothing is sent.

        Parameters
        ----------
        filepath : str
            Local file to send.
        dest_filepath : str
            Path the peer writes it to.
        """
        headers = {"action": _FILETRANSFER, "filepath": dest_filepath}
        try:
            frame = _open_file_frame(filepath, lambda size: MessageManager._create_header(
                size, "binary", "message", additional_headers=headers))
        except OSError as error:
            logger.warning("File can not be opened due error: {}".format(error))
            return
        logger.info("Sending file %s to %s (as: %s)", filepath, self.addr, dest_filepath)
        self._send(frame)


def _call_arguments(content: Any, what: str) -> Tuple[List[Any], Dict[str, Any]]:
    """The ``args``/``kwargs`` of an action or request content, checked."""
    if not isinstance(content, dict):
        raise _FrameError("%s content is not an object: %r" % (what, content))
    args = content.get("args", [])
    kwargs = content.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise _FrameError("%s has invalid args/kwargs: %r" % (what, content))
    return args, kwargs


def _discard(content: Any) -> None:
    if isinstance(content, _FileSink):
        content.discard()


def _give_to_pi(filepath: str) -> None:
    """Make the user ``pi`` own a received file (as clever-show drones expect)."""
    try:
        import pwd
        entry = pwd.getpwnam("pi")
        os.chown(filepath, entry.pw_uid, entry.pw_gid)
    except (ImportError, KeyError, OSError) as error:
        logger.warning("Cannot give %s to pi:pi: %s", filepath, error)
    else:
        logger.info("Return rights to pi:pi after file transfer")


# ---------------------------------------------------------------------------
# Loop wake-up
# ---------------------------------------------------------------------------
class NotifierSock(Singleton):
    """Wakes the application's selector loop when another thread queues data.

    ``init(selector)`` registers the read end of a loopback socket pair with
    ``data`` = this object; the loop calls :meth:`process_events` for it.
    The pair is connected over 127.0.0.1 on a port the OS chooses, and
    nothing listens once it is set up. Several selectors (several loops in
    one process) may each be initialised; a connection wakes only the loop
    of its own selector.
    """

    def __init__(self) -> None:
        """Create the (single) notifier; call :meth:`init` to use it."""
        self._lock = threading.Lock()
        self._wakers: Dict[int, Tuple[Any, Any]] = {}  # id(selector) -> (selector, WakeupSocket)
        self._last: Any = None

    def init(self, selector: Any, port: int = 26000) -> None:
        """Register a wake-up socket with ``selector`` (again for the same selector: no-op).

        Parameters
        ----------
        selector : selectors.BaseSelector
            The loop's selector.
        port : int, optional
            Accepted for compatibility and ignored: the port is chosen by the OS.
        """
        with self._lock:
            if id(selector) in self._wakers:
                return
            waker = _netutil.WakeupSocket()
            try:
                selector.register(waker.recv_socket, selectors.EVENT_READ, data=self)
            except BaseException:
                waker.close()
                raise
            self._wakers[id(selector)] = (selector, waker)
            self._last = waker
        logger.info("Notify socket: selector registered")

    def get_sock(self) -> Optional[socket.socket]:
        """Return the receiving socket registered last, or None before :meth:`init`."""
        waker = self._last
        return None if waker is None else waker.recv_socket

    def notify(self) -> None:
        """Wake every initialised loop; safe from any thread."""
        with self._lock:
            wakers = [waker for _, waker in self._wakers.values()]
        for waker in wakers:
            waker.wake()

    def _notify_selector(self, selector: Any) -> None:
        entry = self._wakers.get(id(selector))
        if entry is not None and entry[0] is selector:
            entry[1].wake()

    def process_events(self, mask: int) -> None:
        """Drain the wake-up bytes (loop thread).

        Parameters
        ----------
        mask : int
            The selector events of the notifier's key.
        """
        if not mask & selectors.EVENT_READ:
            return
        with self._lock:
            wakers = [waker for _, waker in self._wakers.values()]
        for waker in wakers:
            waker.drain()

    def _forget(self, selector: Any) -> None:
        """Unregister and close the wake-up socket of one selector."""
        with self._lock:
            entry = self._wakers.pop(id(selector), None)
            if entry is not None and self._last is entry[1]:
                self._last = None
        if entry is not None:
            _unregister_quietly(entry[0], entry[1].recv_socket)
            entry[1].close()

    def close(self) -> None:
        """Unregister and close every wake-up socket."""
        with self._lock:
            entries = list(self._wakers.values())
            self._wakers.clear()
            self._last = None
        for selector, waker in entries:
            _unregister_quietly(selector, waker.recv_socket)
            waker.close()


def _unregister_quietly(selector: Any, fileobj: Any) -> None:
    try:
        selector.unregister(fileobj)
    except (KeyError, ValueError, OSError, RuntimeError):
        pass


# ---------------------------------------------------------------------------
# Example: a server and a drone-like client (python -m lib.messaging)
# ---------------------------------------------------------------------------
_POLL_INTERVAL = 0.5  # seconds; the example loop's select timeout
_CONNECT_TIMEOUT = 5.0
_DEMO_TIMEOUT = 10.0
_DEFAULT_PORT = 25000


class _Node:
    """A selector loop driving connections the way clever-show's server and drone do."""

    def __init__(self, name: str = "messaging", on_connect: Optional[Callable[[Any], Any]] = None,
                 on_disconnect: Optional[Callable[[Any], Any]] = None) -> None:
        self.name = name
        self.selector = selectors.DefaultSelector()
        self.connections: List[ConnectionManager] = []
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self._listener: Optional[socket.socket] = None
        self._calls: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        NotifierSock().init(self.selector)

    def listen(self, host: str = _netutil.LOOPBACK, port: int = 0) -> Tuple[str, int]:
        """Listen for peers (before :meth:`start`); return the bound address."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
            listener.listen()
            listener.setblocking(False)
            self.selector.register(listener, selectors.EVENT_READ, data=None)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        return listener.getsockname()[:2]

    def connect(self, host: str, port: int, connection: Optional[ConnectionManager] = None,
                timeout: float = _CONNECT_TIMEOUT) -> ConnectionManager:
        """Connect to a server and attach ``connection`` (a new one by default) on the loop."""
        connection = connection if connection is not None else ConnectionManager()
        sock = socket.create_connection((host, port), timeout=timeout)
        attached = threading.Event()

        def attach() -> None:
            try:
                self._attach(sock, sock.getpeername(), connection)
            finally:
                attached.set()
        self.call_soon(attach)
        if not attached.wait(timeout):
            raise TimeoutError("the loop did not attach the connection in %s s" % timeout)
        return connection

    def call_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the loop thread."""
        self._calls.append((function, args))
        NotifierSock()._notify_selector(self.selector)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = _CONNECT_TIMEOUT) -> bool:
        """Stop the loop and close its sockets; True if the loop thread ended."""
        self._stop.set()
        NotifierSock()._notify_selector(self.selector)
        if self._thread is None:
            self._shutdown()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _attach(self, sock: socket.socket, addr: Any, connection: ConnectionManager) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            set_keepalive(sock)
        except (NotImplementedError, OSError):
            pass
        self.selector.register(sock, selectors.EVENT_READ, data=connection)
        connection.connect(self.selector, sock, addr)
        if connection not in self.connections:
            self.connections.append(connection)
        if self.on_connect is not None:
            self.on_connect(connection)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, addr = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self._attach(sock, addr, ConnectionManager())

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for key, mask in self.selector.select(timeout=_POLL_INTERVAL):
                    data = key.data
                    if data is None:
                        self._accept()
                    elif isinstance(data, NotifierSock):
                        data.process_events(mask)
                    else:
                        self._dispatch(data, mask)
                while self._calls:
                    function, args = self._calls.popleft()
                    try:
                        function(*args)
                    except Exception:
                        logger.exception("%s: call %r failed", self.name, function)
        finally:
            self._shutdown()

    def _dispatch(self, connection: ConnectionManager, mask: int) -> None:
        try:
            connection.process_events(mask)
        except Exception as error:
            logger.info("%s: connection to %s ended: %r", self.name, connection.addr, error)
            connection._close()
        if connection.socket is None and connection in self.connections:
            self.connections.remove(connection)
            if self.on_disconnect is not None:
                self.on_disconnect(connection)

    def _shutdown(self) -> None:
        for connection in list(self.connections):
            connection._close()
        self.connections.clear()
        if self._listener is not None:
            _unregister_quietly(self.selector, self._listener)
            self._listener.close()
            self._listener = None
        NotifierSock()._forget(self.selector)
        self.selector.close()


def _demo_file(directory: str) -> str:
    path = os.path.join(directory, "animation.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("frame,x,y,z\n" + "".join("%d,0,0,%.1f\n" % (i, i / 10) for i in range(50)))
    return path


def _run_server(node: _Node, directory: str, out: Callable[[str], Any]) -> None:
    """Set up the example server on ``node``: greets each drone and answers ``time``."""
    served_file = _demo_file(directory)

    @message_callback("hello")
    def hello(connection: ConnectionManager, text: str) -> None:
        out("server: action hello(%r) from %s" % (text, connection.addr))

    @request_callback("time")
    def current_time(connection: ConnectionManager) -> float:
        return time.time()

    def greet(connection: ConnectionManager) -> None:
        connection.get_response("id", lambda c, value: out("server: drone id is %r" % (value,)))
        connection.send_message("takeoff", kwargs={"z": 1.5})
        connection.send_message("welcome", kwargs={"file": served_file})
    node.on_connect = greet


def _run_client(node: _Node, host: str, port: int, directory: str,
                out: Callable[[str], Any]) -> threading.Event:
    """Connect a drone-like client; the returned event is set when the exchange is done."""
    done = threading.Event()
    steps = {"takeoff", "time", "file"}

    def step(name: str) -> None:
        steps.discard(name)
        if not steps:
            done.set()

    @request_callback("id")
    def drone_id(connection: ConnectionManager) -> str:
        return "copter01"

    @message_callback("takeoff")
    def takeoff(connection: ConnectionManager, z: float) -> None:
        out("client: action takeoff(z=%s)" % z)
        step("takeoff")

    @message_callback("welcome")
    def welcome(connection: ConnectionManager, file: str) -> None:
        target = os.path.join(directory, "received-" + os.path.basename(file))

        def received(c: ConnectionManager, value: bool, filepath: str) -> None:
            out("client: got file %s from the server (%d bytes)" % (os.path.basename(file),
                                                                   os.path.getsize(filepath)))
            step("file")
        connection.get_file(file, target, callback=received)

    connection = node.connect(host, port)
    connection.send_message("hello", ["drone here"])

    def got_time(c: ConnectionManager, value: float) -> None:
        out("client: server time is %.3f" % value)
        step("time")
    connection.get_response("time", got_time)
    return done


def _main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.messaging",
                                     description="clever-show messaging example")
    parser.add_argument("--demo", action="store_true", help="run server and client in one process")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the example server")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=_DEFAULT_PORT)
    client = commands.add_parser("client", help="run the drone-like client")
    client.add_argument("host")
    client.add_argument("--port", type=int, default=_DEFAULT_PORT)
    commands.add_parser("demo", help="run server and client in one process on 127.0.0.1")
    args = parser.parse_args(argv)
    # The demo's own disconnections are expected: show errors only there.
    quiet = args.demo or args.command == "demo"
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    out = lambda text: print(text, flush=True)  # noqa: E731

    with tempfile.TemporaryDirectory() as directory:
        if args.demo or args.command == "demo":
            server = _Node("demo-server")
            host, port = server.listen(_netutil.LOOPBACK, 0)
            _run_server(server, directory, out)
            server.start()
            drone = _Node("demo-client")
            drone.start()
            try:
                done = _run_client(drone, host, port, directory, out)
                ok = done.wait(_DEMO_TIMEOUT)
            finally:
                drone.stop()
                server.stop()
                NotifierSock().close()
            out("demo: %s" % ("exchange complete" if ok else "timed out"))
            return 0 if ok else 1
        if args.command == "serve":
            server = _Node("server")
            host, port = server.listen(args.host, args.port)
            _run_server(server, directory, out)
            out("server: listening on %s:%d" % (host, port))
            server.start()
            try:
                while server._thread is not None and server._thread.is_alive():
                    server._thread.join(_POLL_INTERVAL)
            except KeyboardInterrupt:
                pass
            finally:
                server.stop()
            return 0
        if args.command == "client":
            drone = _Node("client")
            drone.start()
            try:
                done = _run_client(drone, args.host, args.port, directory, out)
                ok = done.wait(_DEMO_TIMEOUT)
            finally:
                drone.stop()
            return 0 if ok else 1
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(_main())
