"""The two threads of a device server and what passes between them.

:class:`ServerThreads` runs a :class:`~katcp_compat._server_io.ServerIO` (the I/O
thread) and a :class:`~katcp_compat._handler_thread.HandlerThread`, and moves each
client's connect, messages and disconnect from the first to the second, in order.
It calls the device (a :class:`~katcp_compat.server.DeviceServerBase`) through its
public hooks only: ``on_client_connect``, ``on_message``, ``handle_request`` (for
the built-in requests answered on the I/O thread), ``on_client_disconnect``,
``create_log_inform`` and ``mass_inform``.
"""

import logging
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._connection import ClientConnection
from ._handler_thread import HandlerThread
from ._line_decoder import BadLine
from ._server_io import ServedClient, ServerIO, close_reason
from ._text import format_traceback
from .core import Message

__all__ = ["ServerThreads", "SHUTDOWN_REASON"]

#: Reason given to clients when the server stops.
SHUTDOWN_REASON = "Device server shutting down."
#: Share of ``stop``'s timeout given to the handler thread to say goodbye itself.
_GOODBYE_SHARE = 0.5


class ServerThreads:
    """The I/O thread and the handler thread of one run of a device server.

    What the device uses: :meth:`bind`, :meth:`start`, :meth:`stop`, :meth:`join`,
    :meth:`clients`, :meth:`call_on_handler`, :attr:`io`, and the events
    :attr:`running` and :attr:`stopped`.

    Parameters
    ----------
    device : DeviceServerBase
        Whose hooks run; its ``client_connection_factory`` builds each
        client's connection, and its ``MAX_MSG_SIZE``,
        ``MAX_WRITE_BUFFER_SIZE``, ``KEEPALIVE`` and ``MAX_QUEUED_PER_CLIENT``
        are the limits.
    inline_handlers : dict
        Request name -> handler of the requests answered on the I/O thread
        when nothing of that client is queued.
    running, stopped : threading.Event
        The device's events, set and cleared here.
    logger : logging.Logger
    tb_limit : int
        Frames of traceback in errors sent to clients.
    excepthook : callable or None
        Receives unhandled exceptions of both threads.
    daemon : bool
        Whether both threads are daemon threads.
    """

    def __init__(self, device: Any, inline_handlers: Dict[str, Callable[..., Any]],
                 running: threading.Event, stopped: threading.Event,
                 logger: logging.Logger, tb_limit: int, excepthook: Any, daemon: bool) -> None:
        self._device = device
        self._inline = inline_handlers
        self._max_queued = device.MAX_QUEUED_PER_CLIENT
        self._quick_connect = getattr(type(device).on_client_connect, "_non_blocking", False)
        self._quick_disconnect = getattr(type(device).on_client_disconnect, "_non_blocking",
                                         False)
        # Makes "call on_client_disconnect once per client" hold across threads.
        self._disconnect_lock = threading.Lock()
        self.running = running
        self.stopped = stopped
        self._logger = logger
        self._tb_limit = tb_limit
        self._excepthook = excepthook
        self._daemon = daemon
        self._stop_lock = threading.Lock()
        # Made once: every client's connection shares them.
        self._connection_callables = (self.disconnect_client, device.mass_inform)
        self.io = ServerIO(self._make_connection, self._client_connected, self._client_message,
                           self._client_closed, device.MAX_MSG_SIZE,
                           device.MAX_WRITE_BUFFER_SIZE, device.KEEPALIVE, logger)
        self._handler: Optional[HandlerThread] = None

    # -- life cycle (any thread) ------------------------------------------------
    def bind(self, host: str, port: int, backlog: int) -> Tuple[str, int]:
        """Listen on ``(host, port)``; return the address listened on.

        Raises
        ------
        OSError
            If the address cannot be bound.
        """
        self.io.bind(host, port, backlog, self._excepthook, self._daemon)
        return self.io.address

    def start(self) -> None:
        """Start both threads: clients are accepted from now on."""
        self.stopped.clear()
        self._handler = HandlerThread(self._handler_stop, self._logger, self._excepthook,
                                      self._daemon)
        self._handler.start()
        self.io.start()
        self.io.loop.call_soon(self.running.set)  # type: ignore[union-attr]

    def stop(self, timeout: Optional[float]) -> bool:
        """Say goodbye to every client, close them and end both threads (see
        ``DeviceServerBase.stop``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._stop_lock:
            handler, loop = self._handler, self.io.loop
            if handler is None or loop is None:
                return True
            was_running = self.running.is_set()
            self.running.clear()
        if was_running:
            if handler.is_current():
                self._disconnect_all_for_stop()
            else:
                handler.request_stop()
                if not handler.join(_remaining(deadline, _GOODBYE_SHARE)):
                    # A handler is busy: say goodbye without the device hooks.
                    self._disconnect_all_for_stop(hooks=False)
            loop.call_soon(self.io.close_all)
        self.io.stop(_remaining(deadline))  # from the loop thread: ends after this callback
        handler.request_stop()
        handler.join(_remaining(deadline))
        done = not loop.is_running() and not handler.thread.is_alive()
        if handler.is_current() or loop.in_loop_thread():
            done = True  # the calling thread ends as soon as it returns
        if done:
            self.stopped.set()
        return done

    def _handler_stop(self) -> bool:
        """A stop request reached the handler thread: say goodbye unless still running."""
        if self.running.is_set():
            return False  # stale
        self._disconnect_all_for_stop()
        if not self.io.loop.is_running():  # type: ignore[union-attr]
            self.stopped.set()  # stop() gave up waiting for a busy handler
        return True

    def join(self, timeout: Optional[float]) -> None:
        """Wait up to ``timeout`` seconds for both threads to end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        loop = self.io.loop
        loop_thread = loop.thread if loop is not None else None
        if loop_thread is not None and loop_thread is not threading.current_thread():
            loop_thread.join(_remaining(deadline))
        if self._handler is not None:
            self._handler.join(_remaining(deadline))

    def call_on_handler(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the handler thread after what is queued; any thread."""
        if self._handler is not None:
            self._handler.call(fn, *args)

    def clients(self) -> List[ServedClient]:
        """The clients connected now; any thread."""
        return self.io.clients()

    # -- the I/O thread ---------------------------------------------------------
    def _make_connection(self, client: ServedClient, sock: socket.socket,
                         address: str) -> ClientConnection:
        disconnect, mass_inform = self._connection_callables
        return self._device.client_connection_factory(client.stream.write, address, disconnect,
                                                      mass_inform, sock)

    def _client_connected(self, client: ServedClient) -> None:
        client.queued += 1
        if self._quick_connect:
            self._connected(client)  # a hook known not to block: no thread hop
        else:
            self._handler.call(self._connected, client)  # type: ignore[union-attr]

    def _client_message(self, client: ServedClient, msg: Any) -> None:
        if msg.__class__ is BadLine:
            error = msg.error
            reason = format_traceback((type(error), error, error.__traceback__), self._tb_limit)
            self._logger.error("BAD COMMAND: %s in line %r", reason, msg.line[:200])
            client.connection.inform(self._device.create_log_inform("error", reason, "root"))
            return
        if (msg.mtype == Message.REQUEST and client.queued == client.handled
                and msg.name in self._inline):
            # A built-in, non-blocking request with nothing of this client
            # ahead of it: answer on the I/O thread, saving a thread hop.
            self._device.handle_request(client.connection, msg)
            return
        client.queued += 1
        if client.queued - client.handled >= self._max_queued:
            # Back-pressure: read no more from this client until the handler
            # thread catches up (paused before queueing, so the handler sees
            # the pause when it takes this message).
            client.stream.pause_reading()
        self._handler.put((self._dispatch_message, (client, msg)))  # type: ignore[union-attr]

    def _client_closed(self, client: ServedClient, error: Optional[BaseException]) -> None:
        if not self.running.is_set():
            return
        if self._quick_disconnect and client.queued == client.handled:
            # A hook known not to block, nothing of this client queued: no thread hop.
            self._lost_client(client, close_reason(error))
        else:
            self._handler.call(self._lost_client, client, close_reason(error))  # type: ignore

    # -- the handler thread -----------------------------------------------------
    def _connected(self, client: ServedClient) -> None:
        try:
            if not client.stream.closed:
                self._call_connect_hook(client)
        finally:
            client.handled += 1

    def _call_connect_hook(self, client: ServedClient) -> None:
        conn = client.connection
        try:
            self._device.on_client_connect(conn)
        except Exception:
            reason = format_traceback(sys.exc_info(), self._tb_limit)
            self._logger.error("Device error initialising connection %s", reason)
            conn.inform(Message.inform("log", "Device error initialising connection " + reason))
            client.stream.close_after_flush()

    def _dispatch_message(self, client: ServedClient, msg: Message) -> None:
        stream = client.stream
        try:
            if not stream.closed:
                self._device.on_message(client.connection, msg)
        except Exception:
            self._logger.exception("Error handling message %s", msg)
        finally:
            client.handled += 1
            if (stream.paused and not client.resume_pending
                    and client.queued - client.handled <= self._max_queued // 2):
                client.resume_pending = True
                self.io.loop.call_soon(_resume, client)  # type: ignore[union-attr]

    def _lost_client(self, client: ServedClient, reason: str) -> None:
        self._call_disconnect_hook(client.connection, reason, False)

    def _call_disconnect_hook(self, conn: ClientConnection, reason: str, valid: bool) -> None:
        with self._disconnect_lock:
            if conn.client_disconnect_called:
                return
            conn.on_client_disconnect_was_called()
        try:
            self._device.on_client_disconnect(conn, reason, valid)
        except Exception:
            self._logger.exception("on_client_disconnect failed for %s", conn.address)

    def disconnect_client(self, conn: ClientConnection, reason: str) -> None:
        """Close one client's connection after its disconnect hook; any thread."""
        client = next((c for c in self.io.clients() if c.connection is conn), None)

        def disconnect() -> None:
            self._call_disconnect_hook(conn, reason, client is not None
                                       and not client.stream.closed)
            if client is not None:
                client.stream.close_after_flush()
        handler = self._handler
        if handler is None or handler.is_current():
            disconnect()
        else:
            handler.call(disconnect)

    def _disconnect_all_for_stop(self, hooks: bool = True) -> None:
        for client in self.io.clients():
            conn = client.connection
            if hooks:
                self._call_disconnect_hook(conn, SHUTDOWN_REASON, not client.stream.closed)
            elif not conn.client_disconnect_called:
                conn.inform(Message.inform("disconnect", SHUTDOWN_REASON))


def _resume(client: ServedClient) -> None:
    client.resume_pending = False
    client.stream.resume_reading()


def _remaining(deadline: Optional[float], share: float = 1.0) -> Optional[float]:
    """``share`` of the seconds left until ``deadline`` (None: no limit)."""
    if deadline is None:
        return None
    return max(0.0, (deadline - time.monotonic()) * share)
