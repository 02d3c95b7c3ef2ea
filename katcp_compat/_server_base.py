"""DeviceServerBase: the life cycle of a device server and the dispatch of client messages.

Threads: one selector loop (``katcp-server-io``, a
:class:`~katcp_compat._server_io.ServerIO`) owns the listening socket and every
client socket and decodes lines into messages. Messages, connects and
disconnects go in order to one handler thread (``katcp-server-handler``), so a
request handler may block without stalling I/O for other clients; a few
built-in requests that never block are answered on the loop thread when
nothing of that client is queued. Replies and informs are written from
whichever thread produces them. Sampling strategies and timeouts run on the
loop's timers: a server runs these two threads and no other.
"""

import concurrent.futures
import logging
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._codec import MAX_MSG_SIZE, MAX_WRITE_BUFFER_SIZE
from ._connection import ClientConnection, ClientRequestConnection
from ._handler_thread import HandlerThread
from ._ioloop import IOLoopStub
from ._line_decoder import BadLine
from ._server_io import ServedClient, ServerIO, close_reason
from ._text import format_traceback
from .core import (SEC_TS_KATCP_MAJOR, AsyncReply, DeviceServerMetaclass, FailReply, Message,
                   ProtocolFlags)

__all__ = ["DeviceServerBase", "SHUTDOWN_REASON"]

log = logging.getLogger("katcp_compat.server")

#: Reason given to clients when the server stops.
SHUTDOWN_REASON = "Device server shutting down."
#: Share of ``stop``'s timeout given to the handler thread to say goodbye itself.
_GOODBYE_SHARE = 0.5


class DeviceServerBase(metaclass=DeviceServerMetaclass):
    """Base class for device servers.

    Subclasses add ``request_<name>(self, req, msg)`` methods (each with a
    docstring) that return a reply :class:`Message` (usually
    ``req.make_reply(...)``), call ``req.reply(...)`` and raise
    :class:`AsyncReply`, or raise :class:`FailReply`. Any other exception
    gives a ``fail`` reply with the traceback (at most ``tb_limit`` frames).
    ``inform_<name>`` and ``reply_<name>`` methods handle informs and
    replies from clients. A subclass may also override the hooks
    :meth:`on_client_connect` and :meth:`on_client_disconnect`, and
    :meth:`on_message` or the ``handle_*`` methods.

    Parameters
    ----------
    host : str
        Interface to listen on ("" for all).
    port : int
        Port to listen on; 0 picks a free one (see :attr:`bind_address`).
    tb_limit : int
        Frames of traceback sent to the client for unexpected errors.
    logger : logging.Logger
        Where server events are logged.
    """

    PROTOCOL_INFO = ProtocolFlags(5, 0, [ProtocolFlags.MULTI_CLIENT, ProtocolFlags.MESSAGE_IDS])
    #: Longest line accepted from a client; longer lines close the connection.
    MAX_MSG_SIZE = MAX_MSG_SIZE
    #: Unsent output above which a client is disconnected as too slow.
    MAX_WRITE_BUFFER_SIZE = MAX_WRITE_BUFFER_SIZE
    #: Listen backlog of the server socket (katcp's is 5; the system's largest
    #: lets many clients connect at once without a SYN retry).
    BACKLOG = socket.SOMAXCONN
    #: Messages of one client waiting for the handler thread before the server
    #: stops reading from that client (it resumes at half this number).
    MAX_QUEUED_PER_CLIENT = 1000
    #: TCP keep-alive of client sockets: (idle seconds, probe interval, probes).
    KEEPALIVE = (60, 10, 3)
    #: Builds the connection of each client (see :class:`ClientConnection`).
    client_connection_factory = ClientConnection
    #: Requests whose standard handlers never block; while a client has nothing
    #: queued on the handler thread they are answered on the I/O thread.
    _NON_BLOCKING_HANDLERS: Dict[str, Callable[..., Any]] = {}

    def __init__(self, host: str, port: int, tb_limit: int = 20,
                 logger: logging.Logger = log) -> None:
        self._bindaddr = (host, port)
        self._tb_limit = tb_limit
        self._logger = logger
        self._daemon = True
        self._io: Optional[ServerIO] = None
        self._handler: Optional[HandlerThread] = None
        self._running = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._stop_lock = threading.Lock()
        self._ioloop_stub: Optional[IOLoopStub] = None
        self._inline_handlers: Dict[str, Callable[..., Any]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def bind_address(self) -> Tuple[str, int]:
        """The ``(host, port)`` the server listens on; the real port once started."""
        return self._bindaddr

    @property
    def _sock(self) -> Optional[socket.socket]:
        """The listening socket while running, else None (katcp 0.5's attribute).

        Legacy: 0.5 had no :attr:`bind_address`; its users found an
        ephemeral port with ``server._sock.getsockname()``.
        """
        io = self._io
        return io.listening_socket if io is not None else None

    @property
    def bind_address_string(self) -> str:
        """:attr:`bind_address` as ``host:port``."""
        return "%s:%s" % self._bindaddr[:2]

    @property
    def ioloop(self) -> Optional[IOLoopStub]:
        """The I/O loop as katcp 0.9's users see it (``add_callback``, ``call_later``, ...)."""
        return self._ioloop_stub

    def _timers(self) -> Any:
        """The timer source of sampling strategies: the I/O loop (None before start)."""
        io = self._io
        return io.loop if io is not None else None

    # ------------------------------------------------------------------ 0.9 no-ops
    def setDaemon(self, daemonic: bool) -> None:
        """Choose whether the server threads are daemon threads (before start).

        Parameters
        ----------
        daemonic : bool
            True (the default) for daemon threads.
        """
        self._daemon = bool(daemonic)

    def set_ioloop(self, ioloop: Any = None) -> None:
        """Accepted for katcp 0.9 compatibility; the server runs its own loop.

        Parameters
        ----------
        ioloop : object, optional
            Ignored.
        """

    def set_concurrency_options(self, thread_safe: bool = True, handler_thread: bool = True) -> None:
        """Accepted for katcp 0.9 compatibility; the server is always thread-safe
        and runs handlers on its handler thread.

        Parameters
        ----------
        thread_safe, handler_thread : bool
            Ignored.
        """

    def sync_with_ioloop(self, timeout: Optional[float] = None) -> None:
        """Wait until the handler thread has processed earlier work.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.
        """
        handler = self._handler
        if not self._running.is_set() or handler is None:
            return
        done = threading.Event()
        handler.call(done.set)
        done.wait(timeout)

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: Optional[float] = None, daemon: Optional[bool] = None,
              excepthook: Optional[Callable[..., Any]] = None) -> Optional[bool]:
        """Start the server in new threads.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait until the server is running.
        daemon : bool, optional
            Whether the threads are daemon threads (default: see
            :meth:`setDaemon`).
        excepthook : callable, optional
            Receives unhandled exceptions of the server threads.

        Returns
        -------
        running : bool or None
            With a timeout, whether the server is running.

        Raises
        ------
        RuntimeError
            If the server is already running.
        OSError
            If the address cannot be bound.
        """
        if self._running.is_set() or not self._stopped.is_set():
            raise RuntimeError("Server already started")
        if daemon is not None:
            self._daemon = bool(daemon)
        io = ServerIO(self._make_connection, self._client_connected, self._client_message,
                      self._client_closed,
                      self.MAX_MSG_SIZE, self.MAX_WRITE_BUFFER_SIZE, self.KEEPALIVE, self._logger)
        io.bind(self._bindaddr[0], self._bindaddr[1], self.BACKLOG, excepthook, self._daemon)
        self._io = io
        self._bindaddr = io.address
        self._ioloop_stub = IOLoopStub(io.loop)  # type: ignore[arg-type]
        self._stopped.clear()
        self._inline_handlers = self._find_inline_handlers()
        # Made once: every client's connection shares them.
        self._connection_callables = (self._disconnect_client, self.mass_inform)
        self._handler = HandlerThread(self._handler_stop, self._logger, excepthook, self._daemon)
        self._handler.start()
        io.start()
        io.loop.call_soon(self._running.set)  # type: ignore[union-attr]
        if timeout:
            return self._running.wait(timeout)
        return None

    def _find_inline_handlers(self) -> Dict[str, Callable[..., Any]]:
        cls = type(self)
        for name in ("on_message", "handle_message", "handle_request"):
            if getattr(cls, name) is not getattr(DeviceServerBase, name):
                return {}
        return {name: fn for name, fn in self._NON_BLOCKING_HANDLERS.items()
                if self._request_handlers.get(name) is fn}

    def run(self) -> None:
        """Serve clients in the calling thread until :meth:`stop` (katcp 0.5 form)."""
        self.start()
        self._stopped.wait()

    def running(self) -> bool:
        """Whether the server is running.

        Returns
        -------
        running : bool
        """
        return self._running.is_set()

    def wait_running(self, timeout: Optional[float] = None) -> bool:
        """Wait until the server is running.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        running : bool
        """
        return self._running.wait(timeout)

    def stop(self, timeout: Optional[float] = 1.0) -> bool:
        """Stop the server: every client gets ``#disconnect`` and is closed.

        Safe from any thread, including a request handler.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the threads to end (None: no limit).

        Returns
        -------
        stopped : bool
            True if every server thread has ended (or the call came from a
            server thread, which ends right after).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._stop_lock:
            io, handler = self._io, self._handler
            if io is None or handler is None:
                return True
            was_running = self._running.is_set()
            self._running.clear()
        loop = io.loop
        if was_running:
            if handler.is_current():
                self._disconnect_all_for_stop()
            else:
                handler.request_stop()
                if not handler.join(_remaining(deadline, _GOODBYE_SHARE)):
                    # A handler is busy: say goodbye without the device hooks.
                    self._disconnect_all_for_stop(hooks=False)
            loop.call_soon(io.close_all)  # type: ignore[union-attr]
        io.stop(_remaining(deadline))  # from the loop thread: ends after this callback
        handler.request_stop()
        handler.join(_remaining(deadline))
        done = not loop.is_running() and not handler.thread.is_alive()  # type: ignore[union-attr]
        if handler.is_current() or loop.in_loop_thread():  # type: ignore[union-attr]
            done = True  # the calling thread ends as soon as it returns
        if done:
            self._stopped.set()
        return done

    def _handler_stop(self) -> bool:
        """A stop request reached the handler thread: say goodbye unless still running."""
        io = self._io
        if io is None or self._running.is_set():
            return False  # stale: the server was started again
        self._disconnect_all_for_stop()
        if not io.loop.is_running():  # type: ignore[union-attr]
            self._stopped.set()  # stop() gave up waiting for a busy handler
        return True

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the server threads to end.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        io, handler = self._io, self._handler
        loop_thread = io.loop.thread if io is not None and io.loop is not None else None
        if loop_thread is not None and loop_thread is not threading.current_thread():
            loop_thread.join(_remaining(deadline))
        if handler is not None:
            handler.join(_remaining(deadline))

    # ------------------------------------------------------------------ I/O thread
    def _make_connection(self, client: ServedClient, sock: socket.socket,
                         address: str) -> ClientConnection:
        disconnect, mass_inform = self._connection_callables
        return self.client_connection_factory(client.stream.write, address, disconnect,
                                              mass_inform, sock)

    def _client_connected(self, client: ServedClient) -> None:
        client.queued += 1
        if getattr(type(self).on_client_connect, "_non_blocking", False):
            self._connected(client)  # a hook known not to block: no thread hop
        else:
            self._handler.call(self._connected, client)  # type: ignore[union-attr]

    def _client_message(self, client: ServedClient, msg: Any) -> None:
        conn = client.connection
        if msg.__class__ is BadLine:
            reason = format_traceback((type(msg.error), msg.error, msg.error.__traceback__),
                                      self._tb_limit)
            self._logger.error("BAD COMMAND: %s in line %r", reason, msg.line[:200])
            conn.inform(self.create_log_inform("error", reason, "root"))
            return
        if (msg.mtype == Message.REQUEST and client.queued == client.handled
                and msg.name in self._inline_handlers):
            # A built-in, non-blocking request with nothing of this client
            # ahead of it: answer on the I/O thread, saving a thread hop.
            self.handle_request(conn, msg)
            return
        client.queued += 1
        if client.queued - client.handled >= self.MAX_QUEUED_PER_CLIENT:
            # Back-pressure: read no more from this client until the handler
            # thread catches up (paused before queueing, so the handler sees
            # the pause when it takes this message).
            client.stream.pause_reading()
        self._handler.put((self._dispatch_message, (client, msg)))  # type: ignore[union-attr]

    def _client_closed(self, client: ServedClient, error: Optional[BaseException]) -> None:
        if self._running.is_set():
            self._handler.call(self._lost_client, client, close_reason(error))  # type: ignore

    # ------------------------------------------------------------------ handler thread
    def _connected(self, client: ServedClient) -> None:
        try:
            if not client.stream.closed:
                self._call_connect_hook(client)
        finally:
            client.handled += 1

    def _call_connect_hook(self, client: ServedClient) -> None:
        conn = client.connection
        try:
            self.on_client_connect(conn)
        except Exception:
            reason = format_traceback(sys.exc_info(), self._tb_limit)
            self._logger.error("Device error initialising connection %s", reason)
            conn.inform(Message.inform("log", "Device error initialising connection " + reason))
            client.stream.close_after_flush()

    def _dispatch_message(self, client: ServedClient, msg: Message) -> None:
        stream = client.stream
        try:
            if not stream.closed:
                self.on_message(client.connection, msg)
        except Exception:
            self._logger.exception("Error handling message %s", msg)
        finally:
            client.handled += 1
            if (stream.paused and not client.resume_pending
                    and client.queued - client.handled <= self.MAX_QUEUED_PER_CLIENT // 2):
                client.resume_pending = True
                self._io.loop.call_soon(self._resume_client, client)  # type: ignore[union-attr]

    @staticmethod
    def _resume_client(client: ServedClient) -> None:
        client.resume_pending = False
        client.stream.resume_reading()

    def _lost_client(self, client: ServedClient, reason: str) -> None:
        self._call_disconnect_hook(client.connection, reason, False)

    def _call_disconnect_hook(self, conn: ClientConnection, reason: str, valid: bool) -> None:
        if conn.client_disconnect_called:
            return
        conn.on_client_disconnect_was_called()
        try:
            self.on_client_disconnect(conn, reason, valid)
        except Exception:
            self._logger.exception("on_client_disconnect failed for %s", conn.address)

    def _disconnect_client(self, conn: ClientConnection, reason: str) -> None:
        """Close one client's connection after its disconnect hook; any thread."""
        io = self._io
        client = next((c for c in io.clients() if c.connection is conn), None) if io else None

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
        io = self._io
        for client in io.clients() if io is not None else []:
            conn = client.connection
            if hooks:
                self._call_disconnect_hook(conn, SHUTDOWN_REASON, not client.stream.closed)
            elif not conn.client_disconnect_called:
                conn.inform(Message.inform("disconnect", SHUTDOWN_REASON))

    # ------------------------------------------------------------------ dispatch
    def on_message(self, client_conn: ClientConnection, msg: Message) -> None:
        """Called on the handler thread for every message from a client.

        Parameters
        ----------
        client_conn : ClientConnection
            The sender.
        msg : Message
            The message.
        """
        self.handle_message(client_conn, msg)

    def handle_message(self, client_conn: ClientConnection, msg: Message) -> None:
        """Handle messages of all types from clients.

        Parameters
        ----------
        client_conn : ClientConnection
            The sender.
        msg : Message
            The message.
        """
        if msg.mtype == Message.REQUEST:
            self.handle_request(client_conn, msg)
        elif msg.mtype == Message.INFORM:
            self.handle_inform(client_conn, msg)
        elif msg.mtype == Message.REPLY:
            self.handle_reply(client_conn, msg)
        else:
            reason = "Unexpected message type received by server ['%s']." % (msg,)
            client_conn.inform(self.create_log_inform("error", reason, "root"))

    def handle_request(self, connection: ClientConnection, msg: Message) -> None:
        """Dispatch a request to its ``request_*`` method and send the reply.

        Parameters
        ----------
        connection : ClientConnection
            The sender.
        msg : Message
            The request.
        """
        handler = self._request_handlers.get(msg.name)
        if handler is None:
            self._logger.error("%s INVALID: Unknown request.", msg.name)
            connection.reply(Message.reply(msg.name, "invalid", "Unknown request."), msg)
            return
        req = ClientRequestConnection(connection, msg)
        try:
            reply = handler(self, req, msg)
        except AsyncReply:
            return
        except FailReply as exc:
            reason = str(exc)
            self._logger.error("Request %s FAIL: %s", msg.name, reason)
            reply = Message.reply(msg.name, "fail", reason)
        except Exception:
            reply = self.create_exception_reply_and_log(msg, sys.exc_info())
        if isinstance(reply, concurrent.futures.Future):
            reply.add_done_callback(lambda fut: self._reply_from_future(connection, msg, fut))
            return
        if reply is None:
            if not req.replied:
                self._logger.warning("Request %s handler returned no reply", msg.name)
            return
        connection.reply(reply, msg)

    def _reply_from_future(self, connection: ClientConnection, msg: Message,
                           fut: "concurrent.futures.Future[Any]") -> None:
        try:
            reply = fut.result()
        except AsyncReply:
            return
        except FailReply as exc:
            reply = Message.reply(msg.name, "fail", str(exc))
        except Exception:
            reply = self.create_exception_reply_and_log(msg, sys.exc_info())
        if reply is not None:
            connection.reply(reply, msg)

    def create_exception_reply_and_log(self, req_msg: Message, exc_info: tuple) -> Message:
        """Build a ``fail`` reply carrying the traceback of ``exc_info``.

        Parameters
        ----------
        req_msg : Message
            The failed request.
        exc_info : tuple
            ``sys.exc_info()`` of the error.

        Returns
        -------
        reply : Message
        """
        reason = format_traceback(exc_info, self._tb_limit)
        self._logger.error("Request %s FAIL: %s", req_msg.name, reason)
        return Message.reply(req_msg.name, "fail", reason)

    def _handle_other(self, handlers: Dict[str, Any], kind: str, connection: ClientConnection,
                      msg: Message) -> None:
        handler = handlers.get(msg.name)
        if handler is None:
            self._logger.warning("%s INVALID: Unknown %s.", msg.name, kind)
            return
        try:
            handler(self, connection, msg)
        except Exception:
            reason = format_traceback(sys.exc_info(), self._tb_limit)
            self._logger.error("%s %s FAIL: %s", kind.capitalize(), msg.name, reason)

    def handle_inform(self, connection: ClientConnection, msg: Message) -> None:
        """Dispatch an inform from a client to its ``inform_*`` method.

        Parameters
        ----------
        connection : ClientConnection
            The sender.
        msg : Message
            The inform.
        """
        self._handle_other(self._inform_handlers, "inform", connection, msg)

    def handle_reply(self, connection: ClientConnection, msg: Message) -> None:
        """Dispatch a reply from a client to its ``reply_*`` method.

        Parameters
        ----------
        connection : ClientConnection
            The sender.
        msg : Message
            The reply.
        """
        self._handle_other(self._reply_handlers, "reply", connection, msg)

    # ------------------------------------------------------------------ sending
    @staticmethod
    def _plain(connection: Any) -> ClientConnection:
        if isinstance(connection, ClientRequestConnection):
            return connection.client_connection
        return connection

    def inform(self, connection: ClientConnection, msg: Message) -> None:
        """Send an asynchronous inform to one client.

        Parameters
        ----------
        connection : ClientConnection
            The receiver.
        msg : Message
            An inform.
        """
        self._plain(connection).inform(msg)

    def reply(self, connection: ClientConnection, reply: Message, orig_req: Message) -> None:
        """Send a reply to an earlier request (e.g. after :class:`AsyncReply`).

        Parameters
        ----------
        connection : ClientConnection
            The receiver.
        reply : Message
            The reply; it gets the id of ``orig_req``.
        orig_req : Message
            The request.
        """
        self._plain(connection).reply(reply, orig_req)

    def reply_inform(self, connection: ClientConnection, inform: Message, orig_req: Message) -> None:
        """Send an inform belonging to an earlier request.

        Parameters
        ----------
        connection : ClientConnection
            The receiver.
        inform : Message
            The inform; it gets the id of ``orig_req``.
        orig_req : Message
            The request.
        """
        self._plain(connection).reply_inform(inform, orig_req)

    def mass_inform(self, msg: Message) -> None:
        """Send an inform to every connected client.

        Parameters
        ----------
        msg : Message
            An inform.
        """
        assert msg.mtype == Message.INFORM
        io = self._io
        if io is not None:
            io.write_all(bytes(msg) + b"\n")

    def create_log_inform(self, level_name: str, msg: str, name: str,
                          timestamp: Optional[float] = None) -> Message:
        """Build a ``#log`` inform.

        Parameters
        ----------
        level_name : str
            ``error``, ``warn``, ...
        msg : str
            The text.
        name : str
            The logger name.
        timestamp : float, optional
            Seconds since the epoch (default: now).

        Returns
        -------
        inform : Message
        """
        if timestamp is None:
            timestamp = time.time()
        if self.PROTOCOL_INFO.major >= SEC_TS_KATCP_MAJOR:
            ts = "%.6f" % timestamp
        else:
            ts = str(int(timestamp * 1000))
        return Message.inform("log", level_name, ts, name, msg)

    # ------------------------------------------------------------------ hooks
    def on_client_connect(self, conn: ClientConnection) -> None:
        """Called on the handler thread when a client connects.

        Parameters
        ----------
        conn : ClientConnection
            The new client.
        """

    def on_client_disconnect(self, conn: ClientConnection, msg: str, connection_valid: bool) -> None:
        """Called on the handler thread before a client connection is closed.

        Parameters
        ----------
        conn : ClientConnection
            The client.
        msg : str
            Why it is disconnected.
        connection_valid : bool
            Whether messages can still be sent to it.
        """

    # ------------------------------------------------------------------ katcp 0.5 socket API
    def get_sockets(self) -> List[socket.socket]:
        """The sockets of all connected clients.

        Returns
        -------
        sockets : list of socket.socket
        """
        io = self._io
        return [client.stream.sock for client in io.clients()] if io is not None else []

    def _conn_for_sock(self, sock: Any) -> Optional[ClientConnection]:
        if isinstance(sock, ClientConnection):
            return sock
        io = self._io
        for client in io.clients() if io is not None else []:
            if client.stream.sock is sock:
                return client.connection
        return None

    def _send_message(self, sock: Any, msg: Message) -> None:
        """Send any message to the client on ``sock`` (katcp 0.5's private method).

        Legacy: kept because 0.5 code calls it. A closed or unknown client is
        skipped, as 0.5 dropped failed sends.

        Parameters
        ----------
        sock : socket.socket or ClientConnection
            One of :meth:`get_sockets`, or a connection.
        msg : Message
            The message, sent as it is.
        """
        conn = self._conn_for_sock(sock)
        if conn is not None:
            conn._send(msg)

    def tcp_inform(self, sock: socket.socket, msg: Message) -> None:
        """Send an inform to the client on ``sock`` (katcp 0.5).

        Parameters
        ----------
        sock : socket.socket
            One of :meth:`get_sockets`.
        msg : Message
            An inform.
        """
        conn = self._conn_for_sock(sock)
        if conn is not None:
            conn.inform(msg)

    def tcp_reply(self, sock: socket.socket, reply: Message, orig_req: Message) -> None:
        """Send a reply to the client on ``sock`` (katcp 0.5).

        Parameters
        ----------
        sock : socket.socket
            One of :meth:`get_sockets`.
        reply : Message
            The reply.
        orig_req : Message
            The request.
        """
        conn = self._conn_for_sock(sock)
        if conn is not None:
            conn.reply(reply, orig_req)

    def tcp_reply_inform(self, sock: socket.socket, inform: Message, orig_req: Message) -> None:
        """Send a request's inform to the client on ``sock`` (katcp 0.5).

        Parameters
        ----------
        sock : socket.socket
            One of :meth:`get_sockets`.
        inform : Message
            The inform.
        orig_req : Message
            The request.
        """
        conn = self._conn_for_sock(sock)
        if conn is not None:
            conn.reply_inform(inform, orig_req)


def _remaining(deadline: Optional[float], share: float = 1.0) -> Optional[float]:
    """``share`` of the seconds left until ``deadline`` (None: no limit)."""
    if deadline is None:
        return None
    return max(0.0, (deadline - time.monotonic()) * share)
