"""The I/O side of a client: its loop, connecting (and reconnecting), its stream, its states.

One :class:`ClientIO` serves one run of a client (from ``start()`` to
``stop()``). Its loop thread (``katcp-client-io host:port``) connects with a
:class:`~protocompat.netutil.Connector`, reads through a
:class:`~protocompat.netutil.Stream` whose decoder is a
:class:`~katcp_compat.core.LineDecoder`, and runs the owner's callbacks.
"""

import logging
import socket
from typing import Any, Callable, Optional, Tuple

from protocompat.netutil import Connector, PeerClosed, SelectorLoop, Stream, call_later_shared

from ._codec import MessageParser
from ._futures import AsyncEvent
from ._line_decoder import LineDecoder

__all__ = ["ClientIO"]


class ClientIO:
    """The loop, connection and state events of one client run.

    Reconnecting follows katcp 0.9.3: after a failed attempt or a lost
    connection the next attempt comes ``reconnect_delay`` seconds later, with
    no backoff, for as long as the client runs. Each attempt may take
    :data:`~protocompat.netutil.DEFAULT_CONNECT_TIMEOUT` seconds.

    What the owner uses: :meth:`start`, :meth:`stop`, :meth:`join`,
    :meth:`write`, :meth:`disconnect`, :meth:`call_later`, the events
    :attr:`running`, :attr:`stopped`, :attr:`connected`,
    :attr:`disconnected` and :attr:`attempt_settled`, and :attr:`loop`,
    :attr:`sock`, :attr:`auto_reconnect`, :attr:`reconnect_delay`.

    Parameters
    ----------
    address : (str, int)
        The device.
    on_message : callable
        ``on_message(item)`` for each Message or BadLine; on the loop.
    on_connect : callable
        ``on_connect()`` once connected; on the loop.
    on_disconnect : callable
        ``on_disconnect(reason)`` when the connection closes; on the loop.
    on_stopping : callable
        ``on_stopping()`` when the run ends; on the loop.
    max_line, max_output : int
        Longest line accepted; most bytes of unsent output (past it the
        connection is closed with a logged warning).
    auto_reconnect : bool
        Connect again after a failed attempt or a lost connection.
    reconnect_delay : float
        Seconds between attempts.
    logger : logging.Logger
    """

    def __init__(self, address: Tuple[str, int], on_message: Callable[[Any], Any],
                 on_connect: Callable[[], Any], on_disconnect: Callable[[str], Any],
                 on_stopping: Callable[[], Any], max_line: int, max_output: int,
                 auto_reconnect: bool, reconnect_delay: float, logger: logging.Logger) -> None:
        self._address = address
        self._name = "%s:%s" % address
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._on_stopping = on_stopping
        self._max_line = max_line
        self._max_output = max_output
        self._auto_reconnect = auto_reconnect
        self._reconnect_delay = reconnect_delay
        self._logger = logger
        self.loop: Optional[SelectorLoop] = None
        self._connector: Optional[Connector] = None
        self._stream: Optional[Stream] = None
        self._stopping = False
        self.running = AsyncEvent(self)
        self.stopped = AsyncEvent(self)
        self.stopped.set()
        self.connected = AsyncEvent(self)
        self.disconnected = AsyncEvent(self)
        self.disconnected.set()
        #: Set once no (further) attempt will be made: auto_reconnect is off
        #: and the attempt succeeded or failed.
        self.attempt_settled = AsyncEvent(self)

    # -- settings ---------------------------------------------------------------
    @property
    def auto_reconnect(self) -> bool:
        """Whether to connect again after a failure; may change while running."""
        return self._auto_reconnect

    @auto_reconnect.setter
    def auto_reconnect(self, value: bool) -> None:
        self._auto_reconnect = bool(value)
        if self._connector is not None:
            self._connector.retry = self._auto_reconnect

    @property
    def reconnect_delay(self) -> float:
        """Seconds between connection attempts; may change while running."""
        return self._reconnect_delay

    @reconnect_delay.setter
    def reconnect_delay(self, value: float) -> None:
        self._reconnect_delay = value
        if self._connector is not None:
            self._connector.retry_delay = self._connector.max_retry_delay = value

    @property
    def sock(self) -> Optional[socket.socket]:
        """The connected socket, or None."""
        stream = self._stream
        return stream.sock if stream is not None else None

    # -- life cycle (any thread) ------------------------------------------------
    def start(self, excepthook: Any, daemon: bool) -> None:
        """Start the loop thread, which connects."""
        loop = SelectorLoop(name="katcp-client-io %s" % self._name, excepthook=excepthook,
                            daemon=daemon)
        delay = self._reconnect_delay
        self._connector = Connector(loop, self._address, self._connected, self._connect_failed,
                                    retry=self._auto_reconnect, retry_delay=delay,
                                    max_retry_delay=delay, backoff=1.0)
        self.loop = loop
        self.stopped.clear()
        loop.start()
        loop.call_soon(self._install)

    def _install(self) -> None:
        if not self._stopping:  # stop() may come before the loop has begun
            self.running.set()
            self._connector.start()  # type: ignore[union-attr]

    def stop(self, timeout: Optional[float]) -> None:
        """Close the connection and end the loop thread (see ``DeviceClient.stop``)."""
        loop = self.loop
        if loop is None:
            raise RuntimeError("Call start() before stop()")
        self._stopping = True
        self.running.clear()
        loop.call_soon(self._teardown)
        if not loop.in_loop_thread():
            loop.stop(timeout)
            if not loop.is_running():
                self.stopped.set()
        else:
            loop.call_soon(loop.stop, 0)
            self.stopped.set()

    def _teardown(self) -> None:
        self._connector.cancel()  # type: ignore[union-attr]
        stream = self._stream
        if stream is not None:
            stream.flush()
            stream.close()
        self._on_stopping()

    def join(self, timeout: Optional[float]) -> None:
        """Wait up to ``timeout`` seconds for the loop thread to end."""
        loop = self.loop
        if loop is not None and loop.thread is not None and not loop.in_loop_thread():
            loop.thread.join(timeout)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` after ``delay`` seconds on the loop (the shared
        timers before the loop starts); returns a cancellable handle."""
        loop = self.loop
        if loop is None:
            return call_later_shared(delay, callback, *args)
        return loop.call_later(delay, callback, *args)

    # -- the connection ---------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Send ``data``; False when not connected. Any thread."""
        stream = self._stream
        return stream is not None and stream.write(data)

    def usable(self) -> bool:
        """Connected, and the connection still takes writes (a failed send or a close
        requested from another thread is seen here before the loop has closed it)."""
        stream = self._stream
        return stream is not None and not stream.closing and self.connected.is_set()

    def disconnect(self) -> None:
        """Close the current connection (a new one follows if auto_reconnect is on)."""
        stream = self._stream
        if stream is not None:
            stream.close()

    def _connected(self, sock: socket.socket) -> None:
        if not self.running.is_set():
            sock.close()
            return
        self._stream = Stream(self.loop, sock, LineDecoder(self._max_line, MessageParser()),
                              self._on_message, self._closed, max_output=self._max_output,
                              name=self._name)
        self._stream.start()
        self.disconnected.clear()
        self.connected.set()
        self.attempt_settled.set()
        self._logger.debug("Connected to %s", self._name)
        self._on_connect()

    def _connect_failed(self, error: BaseException, retrying: bool) -> None:
        self._logger.debug("Failed to connect to %s: %s", self._name, error)
        if not retrying:
            self.attempt_settled.set()

    def _closed(self, error: Optional[BaseException]) -> None:
        self._stream = None
        self.connected.clear()
        self.disconnected.set()
        reason = "connection closed" if error is None or isinstance(error, PeerClosed) \
            else repr(error)
        self._logger.debug("Disconnected from %s: %s", self._name, reason)
        self._on_disconnect(reason)
        if self._auto_reconnect and self.running.is_set():
            self._connector.start(self._reconnect_delay)  # type: ignore[union-attr]
