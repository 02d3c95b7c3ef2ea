"""DeviceClient: one connection to a device, its I/O thread and protocol detection."""

import concurrent.futures
import itertools
import logging
import socket
import sys
import threading
import traceback
from typing import Any, Optional, Tuple

from protocompat.netutil import SelectorLoop

from ._client_connection import ClientConnectionMixin, Flag
from ._codec import MAX_MSG_SIZE
from ._stream import MAX_WRITE_BUFFER_SIZE, IOLoopStub, LineStream
from .core import (FLOAT_TS_KATCP_MAJOR, SEC_TO_MS_FAC, SEC_TS_KATCP_MAJOR, AttrDict,
                   DeviceMetaclass, KatcpClientDisconnected, KatcpVersionError, Message,
                   MessageParser, ProtocolFlags)

log = logging.getLogger("katcp_compat.client")

def address_to_string(addr_tuple: Tuple[Any, ...]) -> str:
    """Return ``host:port`` for an address tuple.

    Parameters
    ----------
    addr_tuple : tuple
        ``(host, port)``.

    Returns
    -------
    address : str
    """
    return ":".join(str(part) for part in addr_tuple)


class DeviceClient(ClientConnectionMixin, metaclass=DeviceMetaclass):
    """A client connection to a KATCP device.

    Subclasses add ``inform_<name>(self, msg)`` and ``reply_<name>(self, msg)``
    methods (with docstrings); they run on the client's I/O thread and
    should not block. Messages without a handler go to
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
        Reconnect (every :attr:`auto_reconnect_delay` seconds) when the
        connection fails or drops.
    """

    MAX_MSG_SIZE = MAX_MSG_SIZE
    #: Unsent bytes above which the connection is closed (as katcp does).
    MAX_WRITE_BUFFER_SIZE = MAX_WRITE_BUFFER_SIZE
    MAX_LOOP_LATENCY = 0.03

    def __init__(self, host: str, port: int, tb_limit: int = 20, logger: logging.Logger = log,
                 auto_reconnect: bool = True) -> None:
        self._parser = MessageParser()
        if not host:
            host = "0.0.0.0"
        self._bindaddr = (host, port)
        self._tb_limit = tb_limit
        self._logger = logger
        self._auto_reconnect = auto_reconnect
        #: Seconds between connection attempts.
        self.auto_reconnect_delay = 0.5
        self._static_protocol_configuration = False
        self._static_protocol_flags: Optional[ProtocolFlags] = None
        self._mid_counter = itertools.count(1)
        self._daemon = True
        self._loop: Optional[SelectorLoop] = None
        self._ioloop_stub: Optional[IOLoopStub] = None
        self.last_connect_time: Optional[float] = None
        self._state_lock = threading.Lock()
        self._init_state_per_run()

    def _init_state_per_run(self) -> None:
        self._running = Flag()
        self._stopped = Flag(True)
        self._connected = Flag()
        self._disconnected = Flag(True)
        self._received_protocol_info = Flag()
        # Set once no (further) connection will be attempted: auto_reconnect
        # is off and the attempt succeeded or failed.
        self._attempt_settled = Flag()
        self._server_supports_ids = False
        self._protocol_flags: Optional[ProtocolFlags] = None
        if self._static_protocol_configuration:
            self.preset_protocol_flags(self._static_protocol_flags)
        self._stream: Optional[LineStream] = None
        self._connecting: Optional[socket.socket] = None
        self._connect_timer: Any = None
        self._retry_timer: Any = None
        #: Version information received from the server (role -> tuple).
        self.versions = AttrDict()

    # ------------------------------------------------------------------ properties
    @property
    def protocol_flags(self) -> Optional[ProtocolFlags]:
        """The server's :class:`ProtocolFlags`, once known."""
        return self._protocol_flags

    @protocol_flags.setter
    def protocol_flags(self, val: ProtocolFlags) -> None:
        self._protocol_flags = val
        self._server_supports_ids = val.supports(ProtocolFlags.MESSAGE_IDS)
        self._received_protocol_info.set()

    @property
    def bind_address(self) -> Tuple[str, int]:
        """``(host, port)`` of the device."""
        return self._bindaddr

    @property
    def bindaddr(self) -> Tuple[str, int]:
        """``(host, port)`` of the device (katcp 0.5 name)."""
        return self._bindaddr

    @property
    def bind_address_string(self) -> str:
        """The device address as ``host:port``."""
        return address_to_string(self._bindaddr)

    @property
    def _sock(self) -> Optional[socket.socket]:
        """The connected socket, or None (katcp 0.5's attribute; legacy)."""
        stream = self._stream
        return stream.sock if stream is not None else None

    @property
    def sockname(self) -> Tuple[str, int]:
        """The local ``(host, port)`` of the connection (port -1 if none)."""
        stream = self._stream
        if stream is not None:
            try:
                return stream.sock.getsockname()[:2]
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
        loop = self._loop
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
        if self.protocol_flags.major >= SEC_TS_KATCP_MAJOR:
            return time_seconds
        device_time = time_seconds * SEC_TO_MS_FAC
        if self.protocol_flags.major < FLOAT_TS_KATCP_MAJOR:
            device_time = int(device_time)
        return device_time

    # ------------------------------------------------------------------ protocol
    def _next_id(self) -> bytes:
        return b"%d" % next(self._mid_counter)

    def preset_protocol_flags(self, protocol_flags: ProtocolFlags) -> None:
        """Assume these server flags and skip detection from the version informs.

        Parameters
        ----------
        protocol_flags : ProtocolFlags
            The flags to assume.
        """
        self._static_protocol_configuration = True
        self._static_protocol_flags = protocol_flags
        self.protocol_flags = protocol_flags

    def inform_version_connect(self, msg: Message) -> None:
        """Process a #version-connect message."""
        if len(msg.arguments) < 2:
            return
        name = msg.arguments[0].decode("utf-8", "replace")
        self.versions[name] = tuple(arg.decode("utf-8", "replace") for arg in msg.arguments[1:])
        if msg.arguments[0] == b"katcp-protocol":
            try:
                flags = ProtocolFlags.parse_version(msg.arguments[1])
            except ValueError:
                self._logger.warning("Bad katcp-protocol version %r", msg.arguments[1])
                return
            self._set_protocol_from_inform(flags, msg)

    def inform_version(self, msg: Message) -> None:
        """Handle katcp v4 and below version inform."""
        self._set_protocol_from_inform(ProtocolFlags(4, 0, ""), msg)

    def inform_build_state(self, msg: Message) -> None:
        """Handle katcp v4 and below build-state inform."""
        self._set_protocol_from_inform(ProtocolFlags(4, 0, ""), msg)

    def _set_protocol_from_inform(self, flags: ProtocolFlags, inform: Message) -> None:
        if flags == self._protocol_flags:
            return
        if self._protocol_flags is not None:
            if self._static_protocol_configuration:
                self._logger.warning("Ignoring %r: inconsistent with the preset protocol %s",
                                     str(inform), self._protocol_flags)
                return
            self._logger.error("Protocol version changed (%s, then %r); disconnecting",
                               self._protocol_flags, str(inform))
            self._auto_reconnect = False
            self.disconnect()
        self.protocol_flags = flags

    def _get_mid_and_update_msg(self, msg: Message, use_mid: Optional[bool]) -> bytes:
        if use_mid is None:
            use_mid = self._server_supports_ids
        if msg.mid is None:
            mid = self._next_id()
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
        if msg.mid and not self._server_supports_ids:
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
        stream = self._stream
        if stream is None or not stream.write(bytes(msg) + b"\n"):
            raise KatcpClientDisconnected("Not connected to device %s" % self.bind_address_string)

    # ------------------------------------------------------------------ receiving
    def _log_handler_error(self, kind: str, msg: Message) -> None:
        reason = "\n".join(traceback.format_exception(*sys.exc_info(), limit=self._tb_limit))
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
        method = self._inform_handlers.get(msg.name, type(self).unhandled_inform)
        try:
            method(self, msg)
        except Exception:
            self._log_handler_error("Inform", msg)

    def handle_reply(self, msg: Message) -> None:
        """Dispatch a reply to its ``reply_*`` method or :meth:`unhandled_reply`.

        Parameters
        ----------
        msg : Message
            The reply.
        """
        method = self._reply_handlers.get(msg.name, type(self).unhandled_reply)
        try:
            method(self, msg)
        except Exception:
            self._log_handler_error("Reply", msg)

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
        return self._running.is_set()

    def is_connected(self) -> bool:
        """Whether the client is connected.

        Returns
        -------
        connected : bool
        """
        return self._connected.is_set()

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
        return self._running.wait(timeout)

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
        if self._auto_reconnect:
            return self._connected.wait(timeout)
        self._attempt_settled.wait(timeout)
        return self._connected.is_set()

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
        return self._disconnected.wait(timeout)

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
        """A Future resolved when the client is running.

        Parameters
        ----------
        timeout : float, optional
            After this many seconds the Future fails with TimeoutError.

        Returns
        -------
        future : concurrent.futures.Future
        """
        return self._running.until(timeout, self._loop)

    def until_connected(self, timeout: Optional[float] = None) -> "concurrent.futures.Future[Any]":
        """A Future resolved when the client is connected (see :meth:`until_running`)."""
        return self._connected.until(timeout, self._loop)

    def until_protocol(self, timeout: Optional[float] = None) -> "concurrent.futures.Future[Any]":
        """A Future resolved when the protocol flags are known (see :meth:`until_running`)."""
        return self._received_protocol_info.until(timeout, self._loop)

    def until_stopped(self, timeout: Optional[float] = None) -> "concurrent.futures.Future[Any]":
        """A Future resolved when the client has stopped (see :meth:`until_running`)."""
        return self._stopped.until(timeout, self._loop)
