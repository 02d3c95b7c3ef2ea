"""TCP comm instances with stp framing: a reconnecting client and a multi-client server.

Each instance runs one :class:`protocompat.netutil.SelectorLoop` thread that owns
its sockets; callbacks (data, connect, disconnect) run on that thread.
``send`` may be called from any thread.

Examples
--------
>>> server = tcp_server_stp("127.0.0.1", 0)          # doctest: +SKIP
>>> client = tcp_client_stp("127.0.0.1", server.port)  # doctest: +SKIP
>>> client.close(); server.close()                     # doctest: +SKIP
"""

import errno
import logging
import selectors
import socket
import threading
from typing import Any, Callable, List, Optional, Tuple

from protocompat.netutil import SelectorLoop

from ._commbase import _CommBase, DataCallback, EventCallback
from ._stream import _StpStream
from .codec import DEFAULT_MAX_FRAME_SIZE

__all__ = ["tcp_client_stp", "tcp_server_stp", "tcp_server_connection"]

log = logging.getLogger("sockproto.tcp")

#: First delay before the client tries to connect again, in seconds.
RECONNECT_DELAY_MIN = 0.1
#: Longest delay between the client's connection attempts, in seconds.
RECONNECT_DELAY_MAX = 2.0
# Default seconds close() waits for the loop thread.
_STOP_TIMEOUT = 5.0
_LISTEN_BACKLOG = 128
# Connections accepted per readiness event of the listening socket.
_ACCEPTS_PER_EVENT = 64
_CONNECT_IN_PROGRESS = (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)


def _family(host: str) -> int:
    """AF_INET6 for an IPv6 address literal, else AF_INET (names resolve to IPv4)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _LoopComm(_CommBase):
    """A comm instance whose dispatch thread is a SelectorLoop."""

    def __init__(self, loop: SelectorLoop) -> None:
        super().__init__()
        self._loop = loop

    def _schedule(self, function: Callable[..., Any], *args: Any) -> None:
        self._loop.call_soon(function, *args)

    def _in_dispatch_thread(self) -> bool:
        return self._loop.in_loop_thread()


class _LoopOwner(_LoopComm):
    """A comm instance that runs its own loop thread (a client or a server)."""

    def close(self, timeout: float = _STOP_TIMEOUT) -> bool:
        """Close every socket, stop reconnecting and end the loop thread.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the loop thread.

        Returns
        -------
        stopped : bool
            True if the loop thread has ended and the sockets are closed.
        """
        self._closed = True
        with self._cond:
            self._cond.notify_all()
        self._loop.call_soon(self._shutdown)
        return self._loop.stop(timeout)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> bool:
        """Same as :meth:`close`."""
        return self.close(timeout)

    def _shutdown(self) -> None:
        """Close the sockets (loop thread)."""
        raise NotImplementedError


class tcp_client_stp(_LoopOwner):
    """TCP client comm instance with stp framing that reconnects by itself.

    It connects in the background at once and again after every disconnect
    (first after :data:`RECONNECT_DELAY_MIN` seconds, doubling up to
    :data:`RECONNECT_DELAY_MAX`), until :meth:`close`.

    Parameters
    ----------
    host : str
        Server host name or address.
    port : int
        Server port.
    rx_log_lvl : int, optional
        Log level of the raw "RX" lines of received frames.
    max_frame_size : int, optional
        Largest frame accepted; longer frames are dropped and logged.
    """

    IS_CLIENT = True
    _LOGGER_BASE = "sockproto.tcp.client"

    def __init__(self, host: str, port: int, rx_log_lvl: int = logging.INFO,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        super().__init__(SelectorLoop(name="sockproto-client-%s:%s" % (host, port)))
        self.host = host
        self.port = port
        self._rx_log_lvl = rx_log_lvl
        self._max_frame_size = max_frame_size
        self._stream: Optional[_StpStream] = None
        self._connecting: Optional[socket.socket] = None
        self._retry = None
        self._delay = RECONNECT_DELAY_MIN
        self._closed = False
        self._loop.call_soon(self._connect)
        self._loop.start()

    def _closing(self) -> bool:
        return self._closed

    # -- connecting (loop thread) -------------------------------------------
    def _connect(self) -> None:
        self._retry = None
        if self._closed or self._stream is not None or self._connecting is not None:
            return
        sock = socket.socket(_family(self.host), socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            err = sock.connect_ex((self.host, self.port))
        except OSError as exc:  # e.g. the name does not resolve
            self.logger.info("connect to %s:%s failed: %s", self.host, self.port, exc)
            sock.close()
            self._schedule_retry()
            return
        if err not in _CONNECT_IN_PROGRESS:
            sock.close()
            self.logger.debug("connect to %s:%s failed: %s", self.host, self.port, errno.errorcode.get(err, err))
            self._schedule_retry()
            return
        self._connecting = sock
        self._loop.register(sock, selectors.EVENT_WRITE, self._on_connect_event)

    def _on_connect_event(self, sock: socket.socket, mask: int) -> None:
        self._loop.unregister(sock)
        self._connecting = None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err or self._closed:
            sock.close()
            if not self._closed:
                self.logger.debug("connect to %s:%s failed: %s", self.host, self.port,
                                  errno.errorcode.get(err, err))
                self._schedule_retry()
            return
        self._delay = RECONNECT_DELAY_MIN
        self._stream = _StpStream(self._loop, sock, self._deliver, self._on_stream_closed,
                                  self._max_frame_size, self.logger, self._rx_log_lvl)
        self._stream.start()
        self.logger.info("connected to %s:%s", self.host, self.port)
        self._set_connected()

    def _schedule_retry(self, delay: Optional[float] = None) -> None:
        if self._closed or self._retry is not None:
            return
        if delay is None:
            delay = self._delay
            self._delay = min(self._delay * 2, RECONNECT_DELAY_MAX)
        self._retry = self._loop.call_later(delay, self._connect)

    def _on_stream_closed(self) -> None:
        self._stream = None
        self.logger.info("disconnected from %s:%s", self.host, self.port)
        self._set_disconnected()
        self._schedule_retry()

    # -- the comm interface ----------------------------------------------------
    def send(self, data: bytes, timeout: float = 1) -> bool:
        """Send one frame.

        Parameters
        ----------
        data : bytes
            The frame (stp framing is added here).
        timeout : float, optional
            Seconds to wait for a connection if there is none.

        Returns
        -------
        sent : bool
            True if the frame was handed to the connection.
        """
        stream = self._stream
        if stream is None:
            if not self._wait_connected(timeout):
                return False
            stream = self._stream
            if stream is None:
                return False
        return stream.write(data)

    def reconnect(self) -> None:
        """Drop the connection (if any) and connect again at once."""
        self._loop.call_soon(self._reconnect_now)

    def _reconnect_now(self) -> None:
        if self._closed:
            return
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._stream is not None:
            self._stream.close()  # schedules a retry, replaced by connecting now
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._delay = RECONNECT_DELAY_MIN
        self._connect()

    def _shutdown(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._connecting is not None:
            self._loop.unregister(self._connecting)
            self._connecting.close()
            self._connecting = None
        if self._stream is not None:
            self._stream.close()


# The server connection whose server-level callback is running, per thread.
_current = threading.local()


class tcp_server_connection(_LoopComm):
    """One accepted connection of a :class:`tcp_server_stp`, with the comm interface.

    Made by the server; a protocol instance given the server gets one of
    these per client through ``register_connection_callback``.
    """

    IS_CLIENT = False
    _LOGGER_BASE = "sockproto.tcp.server"

    def __init__(self, server: "tcp_server_stp", sock: socket.socket,
                 address: Tuple[str, int]) -> None:
        super().__init__(server._loop)
        self.server = server
        self.address = address
        self._closed = False
        self._stream = _StpStream(server._loop, sock, self._deliver, self._on_stream_closed,
                                  server._max_frame_size, self.logger, server._rx_log_lvl)

    def init_channel_name(self, channel_name: Optional[str] = None) -> None:
        """Set the channel name used in this connection's log messages.

        Parameters
        ----------
        channel_name : str, optional
        """
        super().init_channel_name(channel_name)
        self._stream.logger = self.logger

    def _closing(self) -> bool:
        return self._closed

    def _start(self) -> None:
        self._stream.start()
        self._set_connected()

    def _fallback_data_callback(self) -> Optional[DataCallback]:
        callback = self.server._data_callback
        if callback is None:
            return self.server._deliver  # held by the server for its receive()
        return lambda frame: self.server._call_for(self, callback, frame)

    def _on_stream_closed(self) -> None:
        self._closed = True
        self.logger.info("connection from %s closed", self.address)
        self._set_disconnected()
        self.server._connection_closed(self)

    def send(self, data: bytes, timeout: float = 1) -> bool:
        """Send one frame to this client.

        Parameters
        ----------
        data : bytes
            The frame (stp framing is added here).
        timeout : float, optional
            Unused: a server connection does not wait for a reconnect.

        Returns
        -------
        sent : bool
            False if the connection is closed.
        """
        return self._stream.write(data)

    def reconnect(self) -> None:
        """Close this connection (the client is expected to reconnect)."""
        self._loop.call_soon(self._stream.close)

    def close(self) -> None:
        """Close this connection."""
        self.reconnect()


class tcp_server_stp(_LoopOwner):
    """TCP server comm instance with stp framing that serves many clients.

    The socket is bound and listening when the constructor returns
    (``port=0`` picks a free port, see :attr:`port`). Every accepted client
    is a :class:`tcp_server_connection`. A protocol instance given this
    server keeps one protocol state per connection (it uses
    :meth:`register_connection_callback`).

    Used directly as a comm instance, the server behaves like one link to
    "the" client: :meth:`register_callback` gets frames from every
    connection, and :meth:`send` answers the connection whose frame is being
    handled or, outside a callback, goes to every connected client.

    Parameters
    ----------
    host : str
        Address to listen on (e.g. ``"127.0.0.1"``, ``"0.0.0.0"``).
    port : int
        Port to listen on; 0 picks a free port.
    rx_log_lvl : int, optional
        Log level of the raw "RX" lines of received frames.
    max_frame_size : int, optional
        Largest frame accepted; longer frames are dropped and logged.

    Raises
    ------
    OSError
        The address cannot be bound.
    """

    IS_CLIENT = False
    _LOGGER_BASE = "sockproto.tcp.server"

    def __init__(self, host: str, port: int, rx_log_lvl: int = logging.INFO,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        super().__init__(SelectorLoop(name="sockproto-server-%s:%s" % (host, port)))
        self._rx_log_lvl = rx_log_lvl
        self._max_frame_size = max_frame_size
        self._connections: List[tcp_server_connection] = []
        self._connection_callbacks: List[Callable[[tcp_server_connection], Any]] = []
        self._closed = False
        listener = socket.socket(_family(host), socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(_LISTEN_BACKLOG)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            self._loop.stop(0)
            raise
        self._listener = listener
        self.server_address: Tuple[str, int] = listener.getsockname()[:2]
        self.host, self.port = self.server_address
        self._loop.register(listener, selectors.EVENT_READ, self._on_accept)
        self._loop.start()

    def _closing(self) -> bool:
        return self._closed

    # -- accepting (loop thread) ---------------------------------------------
    def _on_accept(self, listener: socket.socket, mask: int) -> None:
        for _ in range(_ACCEPTS_PER_EVENT):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.logger.warning("accept failed: %s", exc)
                return
            if self._closed:
                sock.close()
                return
            connection = tcp_server_connection(self, sock, address)
            self.logger.info("connection from %s", address)
            with self._cb_lock:
                self._connections.append(connection)
                callbacks = list(self._connection_callbacks)
            for callback in callbacks:
                self._call(callback, connection)
            connection._start()
            self._call_for(connection, self._set_connected_event)

    def _set_connected_event(self) -> None:
        with self._cond:
            self._connected = True
            callbacks = list(self._connect_callbacks)
            self._cond.notify_all()
        for callback in callbacks:
            self._call(callback)

    def _connection_closed(self, connection: tcp_server_connection) -> None:
        with self._cond:
            if connection in self._connections:
                self._connections.remove(connection)
            self._connected = bool(self._connections)
            callbacks = list(self._disconnect_callbacks)
        for callback in callbacks:
            self._call_for(connection, callback)

    def _call_for(self, connection: tcp_server_connection, callback: Callable[..., Any],
                  *args: Any) -> None:
        previous = getattr(_current, "connection", None)
        _current.connection = connection
        try:
            self._call(callback, *args)
        finally:
            _current.connection = previous

    # -- the comm interface ------------------------------------------------------
    def register_connection_callback(self, callback: Callable[[tcp_server_connection], Any]) -> None:
        """Register a callback for every new client connection.

        Parameters
        ----------
        callback : callable
            Called as ``callback(connection)`` with a
            :class:`tcp_server_connection`, on the loop thread before the
            connection's first frame is delivered. Connections open at
            registration are passed at once, in the calling thread.
        """
        with self._cb_lock:
            self._connection_callbacks.append(callback)
            existing = list(self._connections)
        for connection in existing:
            self._call(callback, connection)

    def register_callback(self, callback: Optional[DataCallback]) -> None:
        """Register the callback for frames from connections that have none.

        Parameters
        ----------
        callback : callable or None
            Called as ``callback(frame)`` on the loop thread; :meth:`send`
            called from it answers the connection the frame came from.
            Without a callback, such frames wait for :meth:`receive`.
        """
        with self._cb_lock:
            self._data_callback = callback
            connections = list(self._connections)
        if callback is not None:
            self._schedule(self._flush_pending)
            for connection in connections:
                self._schedule(connection._flush_pending)

    def register_connect_callback(self, callback: EventCallback) -> None:
        """Register a callback called (without arguments) for every new connection.

        Parameters
        ----------
        callback : callable
        """
        with self._cb_lock:
            self._connect_callbacks.append(callback)

    def connections(self) -> List[tcp_server_connection]:
        """Return the open client connections.

        Returns
        -------
        connections : list of tcp_server_connection
        """
        with self._cb_lock:
            return list(self._connections)

    def send(self, data: bytes, timeout: float = 1) -> bool:
        """Send one frame to the current client, or to every client.

        Parameters
        ----------
        data : bytes
            The frame (stp framing is added here).
        timeout : float, optional
            Seconds to wait for a first client if none is connected.

        Returns
        -------
        sent : bool
            True if at least one connection took the frame.
        """
        connection = getattr(_current, "connection", None)
        if connection is not None and connection.server is self:
            return connection.send(data)
        if not self._wait_connected(timeout):
            return False
        sent = False
        for connection in self.connections():
            sent = connection.send(data) or sent
        return sent

    def reconnect(self) -> None:
        """Close every client connection (the clients are expected to reconnect)."""
        for connection in self.connections():
            connection.reconnect()

    def _shutdown(self) -> None:
        if self._listener is not None:
            self._loop.unregister(self._listener)
            self._listener.close()
        for connection in self.connections():
            connection._stream.close()
