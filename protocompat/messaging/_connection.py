"""One messaging connection: dispatch of actions, requests and responses; the sending API.

:class:`ConnectionManager` is clever-show's class. The bytes move through its
:class:`~._transport.Transport` (a :class:`~protocompat.netutil.Stream` per
socket); this module decides what a message means.
"""

import collections
import logging
import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..netutil import EVENT_READ, EVENT_WRITE
from ._codec import (FrameError, MAX_CONTENT_LENGTH, MAX_JSON_CONTENT_LENGTH, MessageManager,
                     encode_header)
from ._files import READ, WRITE, DiscardSink, FileAccess, FileSink, Progress, check_path, file_frame
from ._json import MAX_JSON_DEPTH
from ._requests import PendingRequest, PendingRequests
from ._transport import MAX_QUEUED_OUTPUT, Transport

try:
    import pwd
except ImportError:  # not on Windows
    pwd = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

#: File pulls of the peer that may wait in a connection's send queue; more are refused.
MAX_QUEUED_FILES = 64
# The action and request name used for file transfers.
FILETRANSFER = "filetransfer"
# Bytes of binary content shown in debug logs.
_LOG_CONTENT_BYTES = 256


class ConnectionManager:
    """One TCP connection speaking the messaging protocol.

    The connection does not own a loop: the application registers the socket
    with its selector (``data`` = this object), calls :meth:`connect`, and for
    every ready key calls :meth:`process_events`. If that raises, the
    connection has already been closed (the exception says why). Sending
    (:meth:`send_message`, :meth:`get_response`, :meth:`send_file`,
    :meth:`get_file`, :meth:`close`) is safe from any thread; callbacks run
    on the loop thread.

    The socket's I/O runs on a :class:`~protocompat.netutil.Stream` whose
    loop is the application's selector: a frame is sent straight from the
    sending thread when nothing waits before it; what waits (a burst from
    other threads, frames the socket did not take) is sent by
    ``process_events``. The legacy attributes ``selector``, ``socket``,
    ``addr``, ``buffer_size`` and ``resume_queue`` are properties (below). A subclass may override
    :meth:`process_received` (every message),
    :meth:`connect`, :meth:`close` and ``_send(data)`` (every frame sent,
    bytes or a file frame that indexes like bytes).

    Parameters
    ----------
    whoami : str, optional
        ``"computer"`` or ``"pi"``; on ``"pi"`` received files are given to
        the user ``pi``.

    Attributes
    ----------
    resend_requests : bool
        On :meth:`connect`, send unanswered requests again, once, with their
        original arguments.
    request_timeout : float or None
        Default timeout of :meth:`get_response`, in seconds (None: wait
        forever).
    max_content_length : int or None
        Largest content a received frame may announce (files included); a
        larger one closes the connection. Read by :meth:`connect`, as are
        the three limits below.
    max_json_content_length : int or None
        Largest JSON content a received frame may announce.
    max_json_depth : int or None
        Deepest nesting of arrays and objects in a received header or JSON
        content.
    max_queued_output : int or None
        Bytes that may wait to be sent; when a frame finds more queued, it is
        dropped and the connection is closed with a logged reason. Queued
        files count nothing (their number is bounded by
        ``max_queued_files``). While not connected, frames held for the next
        connection are bounded by it too.
    max_queued_files : int or None
        Files that may wait to be sent (or be sent) on the connection; a
        further pull of the peer is refused (logged, no response).
    file_access : FileAccess
        Which paths the peer may read and write; ``FileAccess()`` (the
        default) confines nothing.
    """

    messages_callbacks: Dict[str, Callable[..., Any]] = {}
    requests_callbacks: Dict[str, Callable[..., Any]] = {}
    max_content_length: Optional[int] = MAX_CONTENT_LENGTH
    max_json_content_length: Optional[int] = MAX_JSON_CONTENT_LENGTH
    max_json_depth: Optional[int] = MAX_JSON_DEPTH
    max_queued_output: Optional[int] = MAX_QUEUED_OUTPUT
    max_queued_files: Optional[int] = MAX_QUEUED_FILES
    file_access: FileAccess = FileAccess()

    def __init__(self, whoami: str = "computer") -> None:
        """Create an unconnected connection: ``ConnectionManager(whoami)``."""
        self._transport = Transport(self._dispatch, self._output_overflow)
        self.whoami = whoami
        self.resend_requests = True
        self.request_timeout: Optional[float] = None
        self._requests = PendingRequests(self._log_expired)

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self.addr)

    # -- state kept by the transport -----------------------------------------
    @property
    def selector(self) -> Any:
        """The selector the socket is registered with (None when closed)."""
        return self._transport.selector

    @property
    def socket(self) -> Any:
        """The connection's socket (None when closed)."""
        return self._transport.socket

    @property
    def addr(self) -> Any:
        """Address of the peer."""
        return self._transport.addr

    @property
    def buffer_size(self) -> int:
        """Bytes asked of each ``recv``, read by :meth:`connect` (at least 64 KiB; the wire is the same)."""
        return self._transport.buffer_size

    @buffer_size.setter
    def buffer_size(self, value: int) -> None:
        self._transport.buffer_size = value

    @property
    def resume_queue(self) -> bool:
        """Keep unsent frames across a reconnection (a frame cut by it is sent again whole)."""
        return self._transport.resume_queue

    @resume_queue.setter
    def resume_queue(self, value: bool) -> None:
        self._transport.resume_queue = value

    @property
    def _request_queue(self) -> "collections.OrderedDict[Any, PendingRequest]":
        """The unanswered requests by id, oldest first."""
        return self._requests.queue

    @property
    def _send_queue(self) -> "collections.deque[Any]":
        """The frames waiting for a connection (legacy code replaces it with an empty deque).

        While connected, frames go to the socket's stream at once and this is empty.
        """
        return self._transport.held

    @_send_queue.setter
    def _send_queue(self, queue: "collections.deque[Any]") -> None:
        self._transport.replace_held(queue)

    # -- lifecycle -------------------------------------------------------------
    def connect(self, client_selector: Any, client_socket: Any, client_addr: Any) -> None:
        """Attach the connection to a socket registered with ``client_selector``.

        Parameters
        ----------
        client_selector : selectors.BaseSelector
            The application's selector.
        client_socket : socket.socket
            A connected socket, made non-blocking here (registered with
            ``data`` = this object; it is registered here if it is not yet). A
            TCP socket gets ``TCP_NODELAY``, so a frame leaves without waiting
            for an ACK. A socket still attached is closed first.
        client_addr : object
            Address of the peer.
        """
        decoder = MessageManager()
        decoder.max_content_length = self.max_content_length
        decoder.max_json_content_length = self.max_json_content_length
        decoder.max_json_depth = self.max_json_depth
        decoder.content_sink = self._content_sink
        resumed = self._transport.connect(client_selector, client_socket, client_addr, decoder, self,
                                          self.max_queued_output)
        if self.resend_requests:
            for frame in self._requests.frames_to_resend(resumed):
                self._send(frame)

    def close(self) -> None:
        """Close the connection; safe from any thread.

        On the loop thread it closes at once; from another thread the loop
        closes it on its next turn (the socket's receiving side is shut down
        at once, so that the loop's ``select()`` returns it even when the peer
        neither sends nor reads).
        """
        self._transport.close()

    def _close(self) -> None:
        """Unregister and close the socket now (the calling thread acts as the loop thread); idempotent."""
        self._transport.close_now()

    def process_events(self, mask: int) -> None:
        """Handle the selector events ``mask`` of this connection (loop thread).

        When it raises, the connection has been closed before the exception leaves.

        Parameters
        ----------
        mask : int
            ``selectors.EVENT_READ`` and/or ``selectors.EVENT_WRITE``.

        Raises
        ------
        RuntimeError
            ``"Peer closed."`` when the peer closed the connection.
        ValueError
            When the peer sent a malformed frame, or one over a limit.
        OSError
            When the socket failed.
        """
        self._transport.process_events(mask)

    def read(self) -> None:
        """Receive available bytes and handle every complete message (loop thread).

        Raises as :meth:`process_events`.
        """
        self._transport.process_events(EVENT_READ)

    def write(self) -> None:
        """Send what waits to be sent, as far as the socket takes it (loop thread).

        Raises as :meth:`process_events`.
        """
        self._transport.process_events(EVENT_WRITE)

    def _set_selector_events_mask(self, mode: str) -> Any:
        """Watch ``"r"``, ``"w"`` or ``"rw"`` events until the next event; return the selector key."""
        return self._transport.set_events(mode)

    def _send(self, data: Any) -> None:
        """Send one frame (bytes, or a file frame); safe from any thread."""
        self._transport.send(data, self.max_queued_output)

    def _output_overflow(self, queued: int) -> None:
        """The output queue is full: the peer does not keep up, so the connection is closed."""
        logger.error("Closing the connection to %s: %d bytes wait to be sent, more than "
                     "max_queued_output (%s); the peer does not read fast enough",
                     self.addr, queued, self.max_queued_output)
        self.close()

    # -- receiving ---------------------------------------------------------
    def _dispatch(self, message: MessageManager) -> None:
        self.process_received(message)

    def _content_sink(self, header: Any) -> Any:
        """Where the binary content of a frame goes: files to disk, anything else nowhere."""
        message_type = header["message-type"]
        if message_type == "message":
            action = header.get("action")
            if action != FILETRANSFER:
                raise FrameError("binary content for action %r (only files are binary)" % (action,))
            filepath = header.get("filepath")
            if not isinstance(filepath, str):
                raise FrameError("file transfer without a filepath: %r" % (filepath,))
            try:
                return FileSink(self.file_access.check(filepath, WRITE))
            except (TypeError, ValueError, OSError) as error:
                return DiscardSink(error)
        if message_type == "response":
            request_id = header.get("request_id")
            if isinstance(request_id, (list, dict)):
                raise FrameError("response request_id is not a string: %r" % (request_id,))
            requested_value = header.get("requested_value")
            if requested_value != FILETRANSFER:
                raise FrameError("binary response to request %r (only files are binary)"
                                 % (requested_value,))
            request = self._requests.get(request_id)
            if request is not None and request.requested_value == FILETRANSFER:
                return FileSink(os.fspath(request.callback_kwargs["filepath"]), header["content-length"],
                                getattr(request, "progress", None))
            return DiscardSink()  # unexpected: logged when the message is handled
        if message_type == "request":
            raise FrameError("binary request (requests are JSON)")
        return DiscardSink()  # an unknown message type, ignored

    def process_received(self, message: MessageManager) -> None:
        """Dispatch a complete message by its ``message-type`` (loop thread).

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
            message.discard()
            logger.warning("Unknown message-type %r from %s ignored", message_type, self.addr)

    def _process_message(self, message: MessageManager) -> None:
        action = message.jsonheader.get("action")
        if action is None:
            message.discard()
            raise FrameError("message without action")
        if not isinstance(action, str):
            message.discard()
            raise FrameError("action is not a string: %r" % (action,))
        if action == FILETRANSFER:
            self._process_filetransfer(message.content, message.jsonheader.get("filepath"))
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
            raise FrameError("request without requested_value or request_id: %r" % (content,))
        requested_value = content["requested_value"]
        request_id = content["request_id"]
        if not isinstance(requested_value, str):
            raise FrameError("requested_value is not a string: %r" % (requested_value,))
        args, kwargs = _call_arguments(content, "request", requested_value)
        if requested_value == FILETRANSFER:
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
        """Answer the peer's pull of ``filepath`` with a file frame (opened when it is sent)."""
        headers = {"requested_value": FILETRANSFER, "request_id": request_id}
        limit = self.max_queued_files
        if limit is not None and self._transport.queued_files >= limit:
            logger.error("Request {} of {!r} refused: {} files already wait to be sent to {}, "
                         "the maximum".format(FILETRANSFER, filepath, limit, self.addr))
            return
        try:
            path = self.file_access.check(filepath, READ)
            frame = file_frame(path, lambda size: encode_header(
                size, "binary", "response", additional_headers=headers))
        except (OSError, TypeError, ValueError) as error:
            logger.error("Error during request {} processing: {}".format(FILETRANSFER, error))
            return
        self._send(frame)

    def _process_response(self, message: MessageManager) -> None:
        header = message.jsonheader
        if "request_id" not in header or "requested_value" not in header:
            message.discard()
            raise FrameError("response without request_id or requested_value")
        request_id, requested_value = header["request_id"], header["requested_value"]
        if isinstance(request_id, (list, dict)):
            message.discard()
            raise FrameError("response request_id is not a string: %r" % (request_id,))
        request = self._requests.pop(request_id, requested_value)
        if request is None:
            message.discard()
            logger.warning("Unexpected response! (%s %s from %s)", requested_value, request_id, self.addr)
            return
        if request.expires_on is not None and request.expires_on <= time.monotonic():
            message.discard()
            self._log_expired(request_id, request)
            return
        if requested_value == FILETRANSFER:
            value = True
            if not self._process_filetransfer(message.content, request.callback_kwargs["filepath"]):
                return  # logged; the callback only hears of files that arrived
        else:
            if not isinstance(message.content, dict) or "value" not in message.content:
                raise FrameError("response without value: %r" % (message.content,))
            value = message.content["value"]
        if request.callback is None:
            logger.info("No callback were registered for response: %s", request)
            return
        try:
            request.callback(self, value, *request.callback_args, **request.callback_kwargs)
        except Exception as error:
            logger.error("Error during response {} processing: {}".format(request, error),
                         exc_info=True)

    def _process_filetransfer(self, content: Any, filepath: Any) -> bool:
        """Move a received file into place; log and return False if it cannot be."""
        try:
            if not isinstance(content, (FileSink, DiscardSink)):
                raise TypeError("file content is not binary")
            content.commit()
        except (OSError, TypeError, ValueError) as error:
            logger.error("File {} can not be written due error: {}".format(filepath, error))
            return False
        logger.info("File %s successfully received", filepath)
        if self.whoami == "pi" and isinstance(content, FileSink):
            _give_to_pi(content.path)
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
        request_id, frame = self._requests.add(requested_value, callback, request_args,
                                               request_kwargs, callback_args, callback_kwargs, timeout)
        self._send(frame)
        return request_id

    def _log_expired(self, request_id: str, request: PendingRequest) -> None:
        logger.warning("Request %s (%s) to %s expired without a response",
                       request.requested_value, request_id, self.addr)

    def get_file(self, client_filepath: str, filepath: Optional[str] = None,
                 callback: Optional[Callable[..., Any]] = None, callback_args: Iterable[Any] = (),
                 callback_kwargs: Optional[Dict[str, Any]] = None, *,
                 progress: Optional[Progress] = None) -> str:
        """Ask the peer for the file at ``client_filepath`` and write it to ``filepath``.

        The callback is called as ``callback(connection, True, *callback_args,
        filepath=filepath, **callback_kwargs)`` once the file is written.
        ``progress`` is an addition to clever-show's signature.

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
        progress : callable, optional
            ``progress(received, total)`` on the loop thread each time file
            content arrives: the bytes written so far and the file's size.
            It should return quickly; an exception it raises is logged.

        Returns
        -------
        str
            The request id.

        Raises
        ------
        TypeError, ValueError
            If a path is not a string (or path-like) or contains a NUL character.
        """
        client_filepath = check_path(os.fspath(client_filepath))
        if callback_kwargs is None:
            callback_kwargs = {}
        if filepath is None:
            filepath = os.path.split(client_filepath)[1]
        check_path(os.fspath(filepath))
        callback_kwargs.update({"filepath": filepath})
        if progress is None:
            return self.get_response(FILETRANSFER, callback, request_kwargs={"filepath": client_filepath},
                                     callback_args=callback_args, callback_kwargs=callback_kwargs)
        request_id, frame = self._requests.add(FILETRANSFER, callback, (), {"filepath": client_filepath},
                                               callback_args, callback_kwargs, self.request_timeout,
                                               progress)
        self._send(frame)
        return request_id

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

    def send_file(self, filepath: str, dest_filepath: str, *,
                  progress: Optional[Progress] = None) -> None:
        """Send the file ``filepath`` for the peer to write at ``dest_filepath``.

        The file is opened when its frame is about to be sent and read while
        it is sent, not loaded whole. A file that is missing (or not a
        regular file) is logged and nothing is sent. ``progress`` is an
        addition to clever-show's signature.

        Parameters
        ----------
        filepath : str
            Local file to send.
        dest_filepath : str
            Path the peer writes it to.
        progress : callable, optional
            ``progress(sent, total)`` each time a piece of the file is handed
            to the socket (on the thread that sends it, usually the loop
            thread): the bytes so far and the file's size; ``sent == total``
            once the whole file has been handed over. It should return
            quickly; an exception it raises is logged.

        Raises
        ------
        TypeError, ValueError
            If a path is not a string (or path-like) or contains a NUL character.
        """
        filepath = check_path(os.fspath(filepath))
        headers = {"action": FILETRANSFER, "filepath": check_path(os.fspath(dest_filepath))}
        try:
            frame = file_frame(filepath, lambda size: encode_header(
                size, "binary", "message", additional_headers=headers), progress)
        except OSError as error:
            logger.warning("File can not be opened due error: {}".format(error))
            return
        logger.info("Sending file %s to %s (as: %s)", filepath, self.addr, dest_filepath)
        self._send(frame)


def _call_arguments(content: Any, kind: str, name: Any) -> Tuple[List[Any], Dict[str, Any]]:
    """The ``args``/``kwargs`` of an action or request (``kind`` ``name``) content, checked."""
    if not isinstance(content, dict):
        raise FrameError("%s %r content is not an object: %r" % (kind, name, content))
    args = content.get("args", [])
    kwargs = content.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise FrameError("%s %r has invalid args/kwargs: %r" % (kind, name, content))
    return args, kwargs


def _give_to_pi(filepath: str) -> None:
    """Make the user ``pi`` own a received file (as clever-show drones expect)."""
    try:
        if pwd is None:
            raise OSError("no user database on this platform")
        entry = pwd.getpwnam("pi")
        os.chown(filepath, entry.pw_uid, entry.pw_gid)
    except (KeyError, OSError) as error:
        logger.warning("Cannot give %s to pi:pi: %s", filepath, error)
    else:
        logger.info("Return rights to pi:pi after file transfer")
