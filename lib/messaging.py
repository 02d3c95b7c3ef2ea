"""clever-show's ``lib.messaging``: the same API and the same bytes on the wire.

Frames are ``protoheader | JSON header | content``: a 2-byte big-endian
length of the JSON header, the header itself (``json.dumps(...,
ensure_ascii=False)`` in UTF-8) and the content (JSON or raw bytes).

The module is organised in parts along the codec/loop/API layers; all but
the API live in private sibling modules whose names this one re-exports:

* ``_messaging_codec``: the codec (:class:`MessageManager`), which turns
  bytes into messages and back and does no I/O;
* ``_messaging_files``: file content streamed from and to disk;
* ``_messaging_notifier``: :class:`NotifierSock`, which wakes the
  application's selector loop when another thread queues data;
* ``_messaging_transport``: the base of :class:`ConnectionManager` that
  moves bytes (selector events, send queue, ``recv``/``send``);
* here: :class:`ConnectionManager` (dispatch of messages, requests and
  responses, callbacks, sending API), driven by a selector loop that the
  application owns (``cm.process_events(mask)`` for every ready key whose
  ``data`` is the connection), and the callback decorators;
* ``_messaging_example``: a small example (``python -m lib.messaging
  serve|client|demo``).

The modules work both as ``lib.messaging`` and, with ``lib/`` on
``sys.path``, as top-level ``messaging``.
"""

import collections
import heapq
import importlib
import itertools
import logging
import os
import socket
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple


# Siblings are imported the way this module was (``lib.X`` or, with lib/ on sys.path, ``X``);
# the codec module, which needs no sibling, holds the helper that does it.
_import_sibling = importlib.import_module(
    (__package__ + "." if __package__ else "") + "_messaging_codec")._import_sibling


from protocompat import netutil as _netutil
_codec = _import_sibling("_messaging_codec")
_files = _import_sibling("_messaging_files")
_notifier = _import_sibling("_messaging_notifier")
_transport = _import_sibling("_messaging_transport")

# The codec and the file helpers, reachable here as before.
MAX_CONTENT_LENGTH = _codec.MAX_CONTENT_LENGTH
MessageManager = _codec.MessageManager
_FrameError = _codec._FrameError
_PROTOHEADER_LENGTH = _codec._PROTOHEADER_LENGTH
_REQUIRED_HEADERS = _codec._REQUIRED_HEADERS
_FILETRANSFER = _codec._FILETRANSFER
_JSON_ENCODER = _codec._JSON_ENCODER
_JSON_DECODER = _codec._JSON_DECODER
_json_encode = _codec._json_encode
_json_decode = _codec._json_decode
_decode_header = _codec._decode_header
_decode_content = _codec._decode_content
_umask = _files._umask
_FileSink = _files._FileSink
_FileFrame = _files._FileFrame
_open_file_frame = _files._open_file_frame
Singleton = _notifier.Singleton
_SingletonMeta = _notifier._SingletonMeta
NotifierSock = _notifier.NotifierSock
_unregister_quietly = _notifier._unregister_quietly
_Transport = _transport._Transport
_EVENT_MASKS = _transport._EVENT_MASKS
_MIN_IO_SIZE = _transport._MIN_IO_SIZE
_COALESCE_LIMIT = _transport._COALESCE_LIMIT
_FILE_CHUNK = _transport._FILE_CHUNK
_WRITE_ROUNDS = _transport._WRITE_ROUNDS
_set_nodelay = _transport._set_nodelay
if __name__ != "__main__":
    # Documented (and pickled) under this module's name, as before the split.
    for _cls in (MessageManager, Singleton, NotifierSock):
        _cls.__module__ = __name__
    del _cls

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

#: Bytes of binary content shown in debug logs.
_LOG_CONTENT_BYTES = 256


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
class ConnectionManager(_Transport):
    """One TCP connection speaking the messaging protocol.

    The connection does not own a loop: the application registers the socket
    with its selector (``data`` = this object), calls :meth:`connect`, and for
    every ready key calls :meth:`process_events`. If that raises, the
    connection has already been closed (the exception says why). Sending
    (:meth:`send_message`, :meth:`get_response`, :meth:`send_file`,
    :meth:`get_file`, :meth:`close`) is safe from any thread; callbacks run
    on the loop thread. (:meth:`connect`, :meth:`close`,
    :meth:`process_events`, :meth:`read` and :meth:`write` come from the
    private base class that moves the bytes.)

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
        args, kwargs = _call_arguments(message.content, "action", action)
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
        args, kwargs = _call_arguments(content, "request", requested_value)
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
        if request.expires_on is not None and request.expires_on <= time.monotonic():
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


def _call_arguments(content: Any, kind: str, name: Any) -> Tuple[List[Any], Dict[str, Any]]:
    """The ``args``/``kwargs`` of an action or request (``kind`` ``name``) content, checked."""
    if not isinstance(content, dict):
        raise _FrameError("%s %r content is not an object: %r" % (kind, name, content))
    args = content.get("args", [])
    kwargs = content.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise _FrameError("%s %r has invalid args/kwargs: %r" % (kind, name, content))
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
# The example lives in _messaging_example (python -m lib.messaging)
# ---------------------------------------------------------------------------
_EXAMPLE_NAMES = frozenset(("_Node", "_main", "_run_server", "_run_client", "_demo_file",
                            "_POLL_INTERVAL", "_CONNECT_TIMEOUT", "_DEMO_TIMEOUT",
                            "_DEFAULT_PORT"))


def __getattr__(name: str) -> Any:
    """Give the example's names (``messaging._Node``, ...) on first use."""
    if name in _EXAMPLE_NAMES:
        return getattr(_import_sibling("_messaging_example"), name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


if __name__ == "__main__":
    sys.exit(_import_sibling("_messaging_example")._main())
