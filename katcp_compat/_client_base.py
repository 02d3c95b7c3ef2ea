"""DeviceClient: one connection to a device, its I/O thread and protocol detection."""

import concurrent.futures
import itertools
import logging
import socket
import sys
import time
from typing import Any, Callable, Dict, Optional, Tuple

from ._client_io import ClientIO
from ._codec import MAX_MSG_SIZE, MAX_WRITE_BUFFER_SIZE
from ._futures import AsyncEvent
from ._ioloop import IOLoopStub
from ._line_decoder import BadLine
from ._text import address_to_string, format_traceback
from ._client_protocol import CHANGED, KEEP, V4_FLAGS, ServerProtocol
from .core import (DeviceMetaclass, KatcpClientDisconnected, KatcpVersionError,
                   Message, ProtocolFlags)

log = logging.getLogger("katcp_compat.client")

#: katcp's default of ``auto_reconnect_delay``, in seconds.
_RECONNECT_DELAY = 0.5


class DeviceClient(metaclass=DeviceMetaclass):
    """A client connection to a KATCP device.

    Subclasses add ``inform_<name>(self, msg)`` and ``reply_<name>(self, msg)``
    methods (with docstrings); they run on the client's loop (its I/O thread,
    or a thread blocked in ``blocking_request``, which runs the loop while it
    waits), one at a time, and should not block. Messages without a handler go to
    :meth:`unhandled_inform` / :meth:`unhandled_reply` /
    :meth:`unhandled_request`.

    Parameters
    ----------
    host : str
        Device host ("" means 0.0.0.0).
    port : int
        Device port.
    tb_limit : int
        Traceback depth logged for errors in handlers.
    logger : logging.Logger
        Where client events are logged.
    auto_reconnect : bool
        Reconnect (every :attr:`auto_reconnect_delay` seconds, as katcp
        0.9.3: no backoff) when the connection fails or drops.
    """

    # The handler tables, made for each class by its metaclass.
    _request_handlers: Dict[str, Callable[..., Any]]
    _inform_handlers: Dict[str, Callable[..., Any]]
    _reply_handlers: Dict[str, Callable[..., Any]]

    MAX_MSG_SIZE = MAX_MSG_SIZE
    #: Unsent bytes above which the connection is closed (as katcp does).
    MAX_WRITE_BUFFER_SIZE = MAX_WRITE_BUFFER_SIZE
    MAX_LOOP_LATENCY = 0.03

    def __init__(self, host: str, port: int, tb_limit: int = 20, logger: logging.Logger = log,
                 auto_reconnect: bool = True) -> None:
        if not host:
            host = "0.0.0.0"
        self._bindaddr = (host, port)
        self._tb_limit = tb_limit
        self._logger = logger
        self._auto_reconnect = auto_reconnect
        self._auto_reconnect_delay = _RECONNECT_DELAY
        self._preset_flags: Optional[ProtocolFlags] = None
        self._mid_counter = itertools.count(1)
        self._daemon = True
        self._ioloop_stub: Optional[IOLoopStub] = None
        self.last_connect_time: Optional[float] = None
        self._init_state_per_run()

    def _init_state_per_run(self) -> None:
        self._io = ClientIO(self._bindaddr, self._on_message, self._on_connect,
                            self._on_stream_closed, self._on_stopping, self.MAX_MSG_SIZE,
                            self.MAX_WRITE_BUFFER_SIZE, self._auto_reconnect,
                            self._auto_reconnect_delay, self._logger)
        self._protocol = ServerProtocol(AsyncEvent(self._io), self._preset_flags, self._logger)
        #: Version information received from the server (role -> tuple of str).
        self.versions = self._protocol.versions
        # katcp 0.5 code reads these events with isSet() (legacy names).
        self._connected = self._io.connected
        self._received_protocol_info = self._protocol.known

    # ------------------------------------------------------------------ properties
    @property
    def protocol_flags(self) -> Optional[ProtocolFlags]:
        """The server's :class:`ProtocolFlags`, once known."""
        return self._protocol.flags

    @protocol_flags.setter
    def protocol_flags(self, val: ProtocolFlags) -> None:
        self._protocol.take(val)

    @property
    def bind_address(self) -> Tuple[str, int]:
        """``(host, port)`` of the device."""
        return self._bindaddr

    #: ``(host, port)`` of the device (the katcp 0.5 name of :attr:`bind_address`).
    bindaddr = bind_address

    @property
    def bind_address_string(self) -> str:
        """The device address as ``host:port``."""
        return address_to_string(self._bindaddr)

    @property
    def auto_reconnect_delay(self) -> float:
        """Seconds between connection attempts (0.5 by default); may change at any time."""
        return self._auto_reconnect_delay

    @auto_reconnect_delay.setter
    def auto_reconnect_delay(self, delay: float) -> None:
        self._auto_reconnect_delay = delay
        self._io.reconnect_delay = delay

    @property
    def _sock(self) -> Optional[socket.socket]:
        """The connected socket, or None (katcp 0.5's attribute; legacy)."""
        return self._io.sock

    @property
    def sockname(self) -> Tuple[str, int]:
        """The local ``(host, port)`` of the connection (port -1 if none)."""
        sock = self._io.sock
        if sock is not None:
            try:
                return sock.getsockname()[:2]
            except OSError:
                pass
        return (self._bindaddr[0], -1)

    @property
    def sockname_string(self) -> str:
        """:attr:`sockname` as ``host:port``."""
        return address_to_string(self.sockname)

    @property
    def threadsafe(self) -> bool:
        """Always True: every public method may be called from any thread."""
        return True

    def enable_thread_safety(self) -> None:
        """Accepted for katcp 0.9 compatibility; clients are always thread-safe."""

    @property
    def ioloop(self) -> Optional[IOLoopStub]:
        """An object with ``add_callback(fn, *args)`` running on the I/O thread."""
        return self._ioloop_stub

    @property
    def ioloop_thread_id(self) -> Optional[int]:
        """Identifier of the I/O thread (``threading.get_ident()`` on it), or None.

        Returns
        -------
        ident : int or None
            None before :meth:`start`.
        """
        loop = self._io.loop
        thread = loop.thread if loop is not None else None
        return thread.ident if thread is not None else None

    def set_ioloop(self, ioloop: Any = None) -> None:
        """Accepted for katcp 0.9 compatibility; the client runs its own loop.

        Parameters
        ----------
        ioloop : object, optional
            Ignored.
        """

    def setDaemon(self, daemonic: bool) -> None:
        """Choose whether the I/O thread is a daemon thread (before start).

        Parameters
        ----------
        daemonic : bool
        """
        self._daemon = bool(daemonic)

    def convert_seconds(self, time_seconds: float) -> float:
        """Convert seconds to the device's timestamp unit (ms before KATCP v5).

        Parameters
        ----------
        time_seconds : float
            A duration or time in seconds.

        Returns
        -------
        device_time : float or int
        """
        return self._protocol.convert_seconds(time_seconds)

    # ------------------------------------------------------------------ protocol
    def preset_protocol_flags(self, protocol_flags: ProtocolFlags) -> None:
        """Assume these server flags and skip detection from the version informs.

        Parameters
        ----------
        protocol_flags : ProtocolFlags
            The flags to assume.
        """
        self._preset_flags = protocol_flags
        self._protocol.preset(protocol_flags)

    def inform_version_connect(self, msg: Message) -> None:
        """Process a #version-connect message."""
        flags = self._protocol.read_version_connect(msg)
        if flags is not None:
            self._set_protocol_from_inform(flags, msg)

    def inform_version(self, msg: Message) -> None:
        """Handle katcp v4 and below version inform."""
        self._set_protocol_from_inform(V4_FLAGS, msg)

    def inform_build_state(self, msg: Message) -> None:
        """Handle katcp v4 and below build-state inform."""
        self._set_protocol_from_inform(V4_FLAGS, msg)

    def _set_protocol_from_inform(self, flags: ProtocolFlags, inform: Message) -> None:
        outcome = self._protocol.offer(flags, inform)
        if outcome == CHANGED:
            self._auto_reconnect = self._io.auto_reconnect = False
            self.disconnect()
        if outcome != KEEP:
            self._protocol.take(flags)

    def _get_mid_and_update_msg(self, msg: Message, use_mid: Optional[bool]) -> bytes:
        if use_mid is None:
            use_mid = self._protocol.message_ids
        if msg.mid is None:
            mid = b"%d" % next(self._mid_counter)
            if use_mid:
                msg.mid = mid
            return mid
        return msg.mid

    # ------------------------------------------------------------------ sending
    def request(self, msg: Message, use_mid: Optional[bool] = None,
                timeout: Optional[float] = None) -> bytes:
        """Send a request, giving it a message id when ids are in use.

        Parameters
        ----------
        msg : Message
            The request; its ``mid`` is set if ids are used and it has none.
        use_mid : bool, optional
            Force ids on or off (default: on if the server supports them).
        timeout : float, optional
            Accepted for katcp 0.5 compatibility.

        Returns
        -------
        mid : bytes
            The id used to track the request.

        Raises
        ------
        KatcpClientDisconnected
            If not connected.
        KatcpVersionError
            If the request has an id and the server does not support ids.
        """
        mid = self._get_mid_and_update_msg(msg, use_mid)
        self.send_request(msg)
        return mid

    def send_request(self, msg: Message, timeout: Optional[float] = None) -> None:
        """Send a request as it is.

        Parameters
        ----------
        msg : Message
            A request.
        timeout : float, optional
            Accepted for katcp 0.5 compatibility.

        Raises
        ------
        KatcpClientDisconnected
            If not connected.
        KatcpVersionError
            If the request has an id and the server does not support ids.
        """
        assert msg.mtype == Message.REQUEST
        if msg.mid and not self._protocol.message_ids:
            raise KatcpVersionError("Message IDs not supported by server")
        self.send_message(msg)

    def send_message(self, msg: Message, timeout: Optional[float] = None) -> None:
        """Send any message.

        Parameters
        ----------
        msg : Message
            The message.
        timeout : float, optional
            Accepted for katcp 0.5 compatibility.

        Raises
        ------
        KatcpClientDisconnected
            If not connected.
        """
        if not self._io.write(bytes(msg) + b"\n"):
            raise KatcpClientDisconnected("Not connected to device %s" % self.bind_address_string)

    # ------------------------------------------------------------------ receiving
    def _log_handler_error(self, kind: str, msg: Message) -> None:
        reason = format_traceback(sys.exc_info(), self._tb_limit)
        self._logger.error("%s %s FAIL: %s", kind, msg.name, reason)

    def handle_message(self, msg: Message) -> None:
        """Dispatch a message from the server by its type.

        Parameters
        ----------
        msg : Message
            The message.
        """
        if msg.mtype == Message.INFORM:
            self.handle_inform(msg)
        elif msg.mtype == Message.REPLY:
            self.handle_reply(msg)
        elif msg.mtype == Message.REQUEST:
            self.handle_request(msg)
        else:
            self._logger.error("Unexpected message type from server ['%s'].", msg)

    def handle_inform(self, msg: Message) -> None:
        """Dispatch an inform to its ``inform_*`` method or :meth:`unhandled_inform`.

        Parameters
        ----------
        msg : Message
            The inform.
        """
        self._call_handler(self._inform_handlers.get(msg.name, type(self).unhandled_inform),
                           "Inform", msg)

    def handle_reply(self, msg: Message) -> None:
        """Dispatch a reply to its ``reply_*`` method or :meth:`unhandled_reply`.

        Parameters
        ----------
        msg : Message
            The reply.
        """
        self._call_handler(self._reply_handlers.get(msg.name, type(self).unhandled_reply),
                           "Reply", msg)

    def _call_handler(self, method: Callable[..., Any], kind: str, msg: Message) -> None:
        try:
            method(self, msg)
        except Exception:
            self._log_handler_error(kind, msg)

    def handle_request(self, msg: Message) -> None:
        """Dispatch a request from the server to its ``request_*`` method.

        A handler returning a reply Message has it sent back.

        Parameters
        ----------
        msg : Message
            The request.
        """
        method = self._request_handlers.get(msg.name, type(self).unhandled_request)
        try:
            reply = method(self, msg)
            if isinstance(reply, Message):
                reply.mid = msg.mid
                self.send_message(reply)
        except Exception:
            self._log_handler_error("Request", msg)

    def unhandled_inform(self, msg: Message) -> None:
        """Fallback for informs without a handler (does nothing).

        Parameters
        ----------
        msg : Message
            The inform.
        """

    def unhandled_reply(self, msg: Message) -> None:
        """Fallback for replies without a handler (does nothing).

        Parameters
        ----------
        msg : Message
            The reply.
        """

    def unhandled_request(self, msg: Message) -> None:
        """Fallback for requests without a handler (does nothing).

        Parameters
        ----------
        msg : Message
            The request.
        """

    def notify_connected(self, connected: bool) -> None:
        """Called on the I/O thread whenever the connection state changes.

        Override it; it must not block.

        Parameters
        ----------
        connected : bool
            Whether the client is now connected.
        """

    # ------------------------------------------------------------------ state
    def running(self) -> bool:
        """Whether the client is running.

        Returns
        -------
        running : bool
        """
        return self._io.running.is_set()

    def is_connected(self) -> bool:
        """Whether the client is connected.

        Returns
        -------
        connected : bool
        """
        return self._io.usable()

    def wait_running(self, timeout: Optional[float] = None) -> bool:
        """Wait until the client is running.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        running : bool
        """
        return self._io.running.wait(timeout)

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """Wait until the client is connected.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        connected : bool
            False after ``timeout``, or at once if ``auto_reconnect`` is off
            and the connection attempt failed.
        """
        io = self._io
        if io.auto_reconnect:
            return io.connected.wait(timeout)
        io.attempt_settled.wait(timeout)
        return io.connected.is_set()

    def wait_disconnected(self, timeout: Optional[float] = None) -> bool:
        """Wait until the client is disconnected.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        disconnected : bool
        """
        return self._io.disconnected.wait(timeout)

    def wait_protocol(self, timeout: Optional[float] = None) -> bool:
        """Wait until the server's protocol flags are known.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        received : bool
            If True, :attr:`protocol_flags` holds the server's flags.
        """
        return self._received_protocol_info.wait(timeout)

    def until_running(self, timeout: Optional[float] = None) -> "concurrent.futures.Future[Any]":
        """A Future resolved with True when the client is running.

        Parameters
        ----------
        timeout : float, optional
            After this many seconds the Future fails with TimeoutError.

        Returns
        -------
        future : concurrent.futures.Future
        """
        return self._io.running.until_set(timeout)

    def until_connected(self, timeout: Optional[float] = None) -> "concurrent.futures.Future[Any]":
        """A Future resolved when the client is connected (see :meth:`until_running`)."""
        return self._io.connected.until_set(timeout)

    def until_protocol(self, timeout: Optional[float] = None) -> "concurrent.futures.Future[Any]":
        """A Future resolved when the protocol flags are known (see :meth:`until_running`)."""
        return self._received_protocol_info.until_set(timeout)

    def until_stopped(self, timeout: Optional[float] = None) -> "concurrent.futures.Future[Any]":
        """A Future resolved when the client has stopped (see :meth:`until_running`)."""
        return self._io.stopped.until_set(timeout)

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: Optional[float] = None, daemon: Optional[bool] = None,
              excepthook: Optional[Callable[..., Any]] = None) -> None:
        """Start the client's I/O thread, which connects to the device.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait until the client is running and connected (as
            katcp 0.5 did). Returns when the time is up even if no connection
            was made, without raising (as katcp 0.9.3 does); see
            :meth:`wait_connected`.
        daemon : bool, optional
            Whether the I/O thread is a daemon thread.
        excepthook : callable, optional
            Receives unhandled exceptions of the I/O thread.

        Raises
        ------
        RuntimeError
            If the client is already running.
        """
        loop = self._io.loop
        if self._io.running.is_set() or (loop is not None and loop.is_running()):
            raise RuntimeError("Device client already started.")
        if daemon is not None:
            self._daemon = bool(daemon)
        if loop is not None:
            self._init_state_per_run()
        self._io.start(excepthook, self._daemon)
        self._ioloop_stub = IOLoopStub(self._io.loop)  # type: ignore[arg-type]
        if timeout:
            deadline = time.monotonic() + timeout
            if self.wait_running(timeout):
                self.wait_connected(max(0.0, deadline - time.monotonic()))

    def run(self) -> None:
        """Run the client in the calling thread until :meth:`stop` (katcp 0.5 form)."""
        self.start()
        self._io.stopped.wait()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Disconnect and stop the I/O thread; safe from any thread.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the I/O thread to end.

        Raises
        ------
        RuntimeError
            If the client was never started.
        """
        self._io.stop(timeout)

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the I/O thread to end.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.
        """
        self._io.join(timeout)

    def disconnect(self) -> None:
        """Close the current connection (it is re-made if auto_reconnect is on)."""
        self._io.disconnect()

    # ------------------------------------------------------------------ I/O thread
    def _on_message(self, msg: Any) -> None:
        if msg.__class__ is BadLine:
            error = msg.error
            self._logger.error("Bad message from %s: %r", self.bind_address_string,
                               msg.line[:200], exc_info=(type(error), error, error.__traceback__))
            return
        self.handle_message(msg)

    def _on_connect(self) -> None:
        self.last_connect_time = time.time()
        self._notify(True)

    def _on_stream_closed(self, reason: str) -> None:
        self._protocol.forget()
        self._on_disconnected(reason)
        self._notify(False)

    def _notify(self, connected: bool) -> None:
        try:
            self.notify_connected(connected)
        except Exception:
            self._logger.exception("notify_connected(%s) failed", connected)

    def _on_disconnected(self, reason: str) -> None:
        """Hook for subclasses: the connection closed (I/O thread)."""

    def _on_stopping(self) -> None:
        """Hook for subclasses: the client is stopping (I/O thread)."""
