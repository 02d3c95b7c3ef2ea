"""DeviceServerBase: a device server's life cycle and the dispatch of client messages.

Threads (see :class:`~katcp_compat._server_threads.ServerThreads`): one selector
loop (``katcp-server-io``) owns the listening socket and every client socket and
decodes lines into messages. Messages, connects and disconnects go in order to
one handler thread (``katcp-server-handler``), so a request handler may block
without stalling I/O for other clients; a few built-in requests that never
block are answered on the loop thread when nothing of that client is queued.
Replies and informs are written from whichever thread produces them. Sampling
strategies and timeouts run on the loop's timers: a server runs these two
threads and no other.
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
from ._ioloop import IOLoopStub
from ._server_threads import SHUTDOWN_REASON, ServerThreads
from ._text import format_traceback
from .core import (SEC_TS_KATCP_MAJOR, AsyncReply, DeviceServerMetaclass, FailReply, Message,
                   ProtocolFlags)

__all__ = ["DeviceServerBase", "SHUTDOWN_REASON"]

log = logging.getLogger("katcp_compat.server")


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

    # The handler tables, made for each class by its metaclass.
    _request_handlers: Dict[str, Callable[..., Any]]
    _inform_handlers: Dict[str, Callable[..., Any]]
    _reply_handlers: Dict[str, Callable[..., Any]]

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
        self._threads: Optional[ServerThreads] = None
        self._running = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._ioloop_stub: Optional[IOLoopStub] = None

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
        threads = self._threads
        return threads.io.listening_socket if threads is not None else None

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
        threads = self._threads
        return threads.io.loop if threads is not None else None

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
        threads = self._threads
        if not self._running.is_set() or threads is None:
            return
        done = threading.Event()
        threads.call_on_handler(done.set)
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
        threads = ServerThreads(self, self._find_inline_handlers(), self._running, self._stopped,
                                self._logger, self._tb_limit, excepthook, self._daemon)
        self._bindaddr = threads.bind(self._bindaddr[0], self._bindaddr[1], self.BACKLOG)
        # In place before any client is accepted: hooks and handlers use them.
        self._threads = threads
        self._ioloop_stub = IOLoopStub(threads.io.loop)  # type: ignore[arg-type]
        threads.start()
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
        threads = self._threads
        return threads is None or threads.stop(timeout)

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the server threads to end.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.
        """
        threads = self._threads
        if threads is not None:
            threads.join(timeout)

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
        threads = self._threads
        if threads is not None:
            threads.io.write_all(bytes(msg) + b"\n")

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
        threads = self._threads
        return [client.stream.sock for client in threads.clients()] if threads is not None else []

    def _conn_for_sock(self, sock: Any) -> Optional[ClientConnection]:
        if isinstance(sock, ClientConnection):
            return sock
        threads = self._threads
        for client in threads.clients() if threads is not None else []:
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
