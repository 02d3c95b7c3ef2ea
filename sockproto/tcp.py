"""TCP comm instances with stp framing: a reconnecting client and a multi-client server.

Each instance runs one :class:`protocompat.netutil.SelectorLoop` that owns its
sockets; callbacks (data, connect, disconnect) run on its dispatch thread: the
loop's thread, or a thread that waits in ``receive``, ``wait_connected`` or
``wait_for`` and runs the loop meanwhile (one at a time). ``send`` may be
called from any thread: when nothing is queued for the connection it writes
to the socket at once, from the calling thread.

Built on the shared foundation: a :class:`~protocompat.netutil.Listener`
accepts, a :class:`~protocompat.netutil.Connector` connects and reconnects,
and each connection is one :class:`~protocompat.netutil.Stream` whose
decoder is :class:`sockproto.codec.StpDecoder`.

Examples
--------
>>> server = tcp_server_stp("127.0.0.1", 0)          # doctest: +SKIP
>>> client = tcp_client_stp("127.0.0.1", server.port)  # doctest: +SKIP
>>> client.close(); server.close()                     # doctest: +SKIP
"""

import functools
import logging
import socket
import threading
from typing import Any, Callable, List, Optional, Tuple, cast

from protocompat.netutil import (Connector, Listener, OutputOverflow, PeerClosed, SelectorLoop,
                                 Stream)

from ._commbase import _CommBase, DataCallback, EventCallback
from .codec import (DEFAULT_MAX_FRAME_SIZE, STP_END, STP_START, STP_SYNC, BadFrame, StpDecoder,
                    StpItem)

__all__ = ["tcp_client_stp", "tcp_server_stp", "tcp_server_connection",
           "RECONNECT_DELAY_MIN", "RECONNECT_DELAY_MAX", "CONNECT_TIMEOUT", "DEFAULT_MAX_OUTPUT"]

#: Delay before the client's first retry after a disconnect or a failed attempt, in seconds.
RECONNECT_DELAY_MIN = 0.1
#: Longest delay between the client's connection attempts, in seconds.
RECONNECT_DELAY_MAX = 2.0
#: Seconds one connection attempt of the client may take.
CONNECT_TIMEOUT = 5.0
#: Default bound of unsent data per connection, in bytes (stp framing included).
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024
# A ':' in a frame, as stp writes it.
_STP_ESCAPED_SYNC = STP_SYNC + STP_SYNC
# Each further failed attempt waits this many times longer.
_RECONNECT_BACKOFF = 2.0


class _StpConnection(_CommBase):
    """A comm instance carried by one :class:`~protocompat.netutil.Stream` at a time.

    Subclasses call :meth:`_open_stream` with a connected socket and
    implement :meth:`_on_stream_closed`.
    """

    def __init__(self, loop: SelectorLoop, rx_log_lvl: int, max_frame_size: int,
                 max_output: int) -> None:
        super().__init__(loop)
        self._rx_log_lvl = rx_log_lvl
        self._max_frame_size = max_frame_size
        self._max_output = max_output
        self._stream: Optional[Stream] = None

    def _open_stream(self, sock: socket.socket) -> Stream:
        """Wrap ``sock`` (loop thread); reading starts with the stream's ``start()``."""
        stream = Stream(self._loop, sock, StpDecoder(self._max_frame_size), self._on_item,
                        functools.partial(self._closed_stream, sock), max_output=self._max_output,
                        on_overflow=self._on_overflow)
        self._stream = stream
        return stream

    def _on_item(self, item: StpItem) -> None:
        """One frame (or dropped frame) from the stream (loop thread)."""
        logger = self.logger
        if type(item) is bytes:
            if logger.isEnabledFor(self._rx_log_lvl):
                logger.log(self._rx_log_lvl, "RX <- %s: %r", self._peer_text(), item)
            callback = self._data_callback
            if callback is not None and not self._pending:  # the common case, as in _deliver
                try:
                    callback(item)
                except Exception:
                    logger.exception("callback %r raised", callback)
            else:
                self._deliver(item)
        else:
            logger.warning("bad frame from %s dropped: %s", self._peer_text(), cast(BadFrame, item).reason)

    def _peer_text(self) -> str:
        stream = self._stream
        return stream.name if stream is not None else "<not connected>"

    def _on_overflow(self, stream: Stream) -> None:
        """Unsent data passed ``max_output``: the peer does not read; close (writer's thread)."""
        self.logger.warning("more than %d bytes unsent to %s: closing the connection (the peer "
                            "does not read)", self._max_output, stream.name)
        stream.close(OutputOverflow("output to %s over %d bytes" % (stream.name, self._max_output)))

    def _closed_stream(self, sock: socket.socket, error: Optional[BaseException]) -> None:
        stream = self._stream
        if stream is not None and stream.sock is sock:
            self._stream = None
        if error is None or isinstance(error, PeerClosed):
            self._on_stream_closed(None)
        else:
            self._on_stream_closed(error)

    def _on_stream_closed(self, error: Optional[BaseException]) -> None:
        """The connection is gone (loop thread); ``error`` is None for an orderly close."""
        raise NotImplementedError


class tcp_client_stp(_StpConnection):
    """TCP client comm instance with stp framing that reconnects by itself.

    It connects in the background at once and again after every disconnect
    (after :data:`RECONNECT_DELAY_MIN` seconds), until :meth:`close`. A failed
    attempt is retried after :data:`RECONNECT_DELAY_MIN` seconds, each
    further one waiting twice as long, up to :data:`RECONNECT_DELAY_MAX`; one
    attempt may take :data:`CONNECT_TIMEOUT` seconds.

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
    max_output : int, optional
        Most bytes of data not yet taken by the network; a frame beyond it
        is not sent and the connection is closed (and logged), since the
        server does not read. The client then reconnects.
    """

    IS_CLIENT = True
    _LOGGER_BASE = "sockproto.tcp.client"

    def __init__(self, host: str, port: int, rx_log_lvl: int = logging.INFO,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        super().__init__(SelectorLoop(name="sockproto-client-%s:%s" % (host, port)), rx_log_lvl,
                         max_frame_size, max_output)
        self.host = host
        self.port = port
        self._connector = Connector(self._loop, (host, port), self._on_connect, self._on_connect_failed,
                                    timeout=CONNECT_TIMEOUT, retry=True, retry_delay=RECONNECT_DELAY_MIN,
                                    max_retry_delay=RECONNECT_DELAY_MAX, backoff=_RECONNECT_BACKOFF)
        self._connector.start()
        self._loop.start()

    @property
    def connect_error(self) -> Optional[BaseException]:
        """The error of the last failed connection attempt; None once connected.

        For instance a :class:`ConnectionRefusedError`, or a
        :class:`socket.gaierror` for a host name that cannot be resolved. The
        instance goes on trying to connect meanwhile.
        """
        return self._connector.last_error

    # -- connecting (loop thread) -------------------------------------------
    def _on_connect(self, sock: socket.socket) -> None:
        if self._closed:
            sock.close()
            return
        self._open_stream(sock).start()
        self.logger.info("connected to %s:%s", self.host, self.port)
        self._set_connected()

    def _on_connect_failed(self, error: BaseException, retrying: bool) -> None:
        if retrying:
            self.logger.debug("connect to %s:%s failed (%s); retrying in %.1f s", self.host, self.port,
                              error, self._connector.next_delay())
        else:
            self.logger.debug("connect to %s:%s failed: %s", self.host, self.port, error)

    def _on_stream_closed(self, error: Optional[BaseException]) -> None:
        if error is None:
            self.logger.info("disconnected from %s:%s", self.host, self.port)
        else:
            self.logger.info("disconnected from %s:%s: %s", self.host, self.port, error)
        self._set_disconnected()
        if not self._closed:
            self._connector.start(RECONNECT_DELAY_MIN)

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
            if not self.wait_connected(timeout):
                return False
            stream = self._stream
            if stream is None:
                return False
        # stp_encode(data), written out (every frame passes here).
        return stream.write(STP_START + data.replace(STP_SYNC, _STP_ESCAPED_SYNC) + STP_END)

    def reconnect(self) -> None:
        """Drop the connection (if any) and connect again at once."""
        self._schedule(self._reconnect_now)

    def _reconnect_now(self) -> None:
        if self._closed:
            return
        if self._stream is not None:
            self._stream.close()  # starts a delayed attempt, replaced by one now
        self._connector.cancel()
        self._connector.start()

    def _shutdown(self) -> None:
        self._connector.cancel()
        if self._stream is not None:
            self._stream.close()


class tcp_server_connection(_StpConnection):
    """One accepted connection of a :class:`tcp_server_stp`, with the comm interface.

    Made by the server; a protocol instance given the server gets one of
    these per client through ``register_connection_callback``.

    Parameters
    ----------
    loop : SelectorLoop
        The server's loop.
    sock : socket.socket
        The accepted socket.
    address : tuple
        The client's address.
    rx_log_lvl, max_frame_size, max_output : int
        As given to the server.
    unclaimed : callable
        ``unclaimed(connection, frame)`` for a frame that no data callback
        of this connection takes.
    on_gone : callable
        ``on_gone(connection)`` once the connection has closed.

    Attributes
    ----------
    address : tuple
        The client's address.
    """

    IS_CLIENT = False
    _LOGGER_BASE = "sockproto.tcp.server"

    def __init__(self, loop: SelectorLoop, sock: socket.socket, address: Tuple[str, int],
                 rx_log_lvl: int, max_frame_size: int, max_output: int,
                 unclaimed: Callable[["tcp_server_connection", bytes], Any],
                 on_gone: Callable[["tcp_server_connection"], Any]) -> None:
        super().__init__(loop, rx_log_lvl, max_frame_size, max_output)
        self.address = address
        self._unclaimed = unclaimed
        self._on_gone = on_gone
        self._open_stream(sock)

    def _start(self) -> None:
        if self._stream is not None:
            self._stream.start()
            self._set_connected()

    def _fallback_data_callback(self) -> Optional[DataCallback]:
        return functools.partial(self._unclaimed, self)

    def _on_stream_closed(self, error: Optional[BaseException]) -> None:
        self._closed = True
        if error is None:
            self.logger.info("connection from %s closed", self.address)
        else:
            self.logger.info("connection from %s closed: %s", self.address, error)
        self._set_disconnected()
        self._on_gone(self)

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
        stream = self._stream
        # stp_encode(data), written out (every frame passes here).
        return stream is not None and stream.write(STP_START + data.replace(STP_SYNC, _STP_ESCAPED_SYNC)
                                                   + STP_END)

    def reconnect(self) -> None:
        """Close this connection (the client is expected to reconnect)."""
        stream = self._stream
        if stream is not None:
            self._schedule(stream.close)

    def close(self, timeout: float = 0.0) -> bool:
        """Close this connection, soon, on the server's loop thread.

        Parameters
        ----------
        timeout : float, optional
            Unused: the server's loop goes on.

        Returns
        -------
        closing : bool
            Always True.
        """
        self.reconnect()
        return True


class tcp_server_stp(_CommBase):
    """TCP server comm instance with stp framing that serves many clients.

    The socket is bound and listening when the constructor returns
    (``port=0`` picks a free port, see the ``port`` attribute), with a backlog of
    ``socket.SOMAXCONN`` and no cap on connections below the process's
    descriptor limit. Every accepted client is a
    :class:`tcp_server_connection`. A protocol instance given this server
    keeps one protocol state per connection (it uses
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
    max_output : int, optional
        Most bytes of data not yet taken by the network, per connection; a
        frame beyond it is not sent and that connection is closed (and
        logged), since its client does not read.

    Raises
    ------
    OSError
        The address cannot be bound.
    """

    IS_CLIENT = False
    _LOGGER_BASE = "sockproto.tcp.server"

    def __init__(self, host: str, port: int, rx_log_lvl: int = logging.INFO,
                 max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
                 max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        super().__init__(SelectorLoop(name="sockproto-server-%s:%s" % (host, port)))
        self._rx_log_lvl = rx_log_lvl
        self._max_frame_size = max_frame_size
        self._max_output = max_output
        self._connections: List[tcp_server_connection] = []
        self._connection_callbacks: List[Callable[[tcp_server_connection], Any]] = []
        # The connection whose frame a server-level callback is handling, per thread.
        self._serving = threading.local()
        try:
            self._listener = Listener(self._loop, host, port, self._on_accept, backlog=socket.SOMAXCONN)
        except BaseException:
            self._loop.stop(0)
            raise
        self.server_address: Tuple[str, int] = self._listener.address
        self.host, self.port = self.server_address
        self._listener.start()
        self._loop.start()

    # -- connections (loop thread) ---------------------------------------------
    def _on_accept(self, sock: socket.socket, address: Any) -> None:
        if self._closed:
            sock.close()
            return
        connection = tcp_server_connection(self._loop, sock, address, self._rx_log_lvl,
                                           self._max_frame_size, self._max_output,
                                           self._unclaimed_frame, self._connection_closed)
        self.logger.info("connection from %s", address)
        with self._cb_lock:
            self._connections.append(connection)
            callbacks = list(self._connection_callbacks)
        for callback in callbacks:
            self._call(callback, connection)
        connection._start()
        self._call_for(connection, self._set_connected_event)

    def _unclaimed_frame(self, connection: tcp_server_connection, frame: bytes) -> None:
        """A frame of a connection without a data callback: the server's callback or receive()."""
        callback = self._data_callback
        if callback is None:
            self._deliver(frame)
        else:
            self._call_for(connection, callback, frame)

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
        serving = self._serving
        previous = getattr(serving, "connection", None)
        serving.connection = connection
        try:
            self._call(callback, *args)
        finally:
            serving.connection = previous

    # -- the comm interface ------------------------------------------------------
    def register_connection_callback(self, callback: Callable[[tcp_server_connection], Any]) -> None:
        """Register a callback for every new client connection.

        Parameters
        ----------
        callback : callable
            Called as ``callback(connection)`` with a
            :class:`tcp_server_connection`, on the dispatch thread before the
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
            Called as ``callback(frame)`` on the dispatch thread; :meth:`send`
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
        connection = getattr(self._serving, "connection", None)
        if connection is not None:
            return connection.send(data)
        if not self.wait_connected(timeout):
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
        self._listener.close()
        for connection in self.connections():
            connection.close()  # on the loop, before it ends
