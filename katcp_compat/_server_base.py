"""DeviceServerBase: the listening socket, the threads and the life cycle.

Threads: one selector loop (``katcp-server-io``) owns the listening socket and
every client socket; it reads and parses lines. Messages, connects and
disconnects go in order to one handler thread (``katcp-server-handler``), so a
request handler may block without stalling I/O for other clients. Replies and
informs are written from whichever thread produces them.
"""

import logging
import queue
import socket
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

from protocompat.netutil import ExcepthookThread, SelectorLoop, set_keepalive

from ._connection import ClientConnection
from ._server_messages import ServerMessagesMixin
from ._codec import MAX_MSG_SIZE
from ._stream import MAX_WRITE_BUFFER_SIZE, IOLoopStub, LineStream
from .core import DeviceServerMetaclass, Message, MessageParser, ProtocolFlags

log = logging.getLogger("katcp_compat.server")

#: Reason given to clients when the server stops.
SHUTDOWN_REASON = "Device server shutting down."
_STOP = object()  # handler queue sentinel
_SELECT_READ = 1  # selectors.EVENT_READ


class DeviceServerBase(ServerMessagesMixin, metaclass=DeviceServerMetaclass):
    """Base class for device servers.

    Subclasses add ``request_<name>(self, req, msg)`` methods (each with a
    docstring) that return a reply :class:`Message` (usually
    ``req.make_reply(...)``), call ``req.reply(...)`` and raise
    :class:`AsyncReply`, or raise :class:`FailReply`. Any other exception
    gives a ``fail`` reply with the traceback (at most ``tb_limit`` frames).
    ``inform_<name>`` and ``reply_<name>`` methods handle informs and
    replies from clients.

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
    #: Output backlog above which a client is disconnected as too slow.
    MAX_WRITE_BUFFER_SIZE = MAX_WRITE_BUFFER_SIZE
    #: Listen backlog of the server socket.
    BACKLOG = 128
    #: Messages of one client waiting for the handler thread before the server
    #: stops reading from that client (it resumes at half this number).
    MAX_QUEUED_PER_CLIENT = 1000
    #: TCP keep-alive of client sockets: (idle seconds, probe interval, probes).
    KEEPALIVE = (60, 10, 3)

    def __init__(self, host: str, port: int, tb_limit: int = 20,
                 logger: logging.Logger = log) -> None:
        self._bindaddr = (host, port)
        self._tb_limit = tb_limit
        self._logger = logger
        self._parser = MessageParser()
        self._daemon = True
        self._loop: Optional[SelectorLoop] = None
        self._listener: Optional[socket.socket] = None
        self._handler_thread: Optional[ExcepthookThread] = None
        self._handler_queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._connections: Dict[LineStream, ClientConnection] = {}
        self._conn_lock = threading.Lock()
        self._running = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._stop_lock = threading.Lock()
        self._ioloop_stub: Optional[IOLoopStub] = None
        self._inline_handlers: Dict[str, Callable[..., Any]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def bind_address(self) -> tuple:
        """The ``(host, port)`` the server listens on; the real port once started."""
        return self._bindaddr

    @property
    def _sock(self) -> Optional[socket.socket]:
        """The listening socket while running, else None (katcp 0.5's attribute).

        Legacy: 0.5 had no :attr:`bind_address`; its users found an
        ephemeral port with ``server._sock.getsockname()``.
        """
        return self._listener

    @property
    def bind_address_string(self) -> str:
        """:attr:`bind_address` as ``host:port``."""
        return "%s:%s" % self._bindaddr[:2]

    @property
    def ioloop(self) -> Optional[IOLoopStub]:
        """An object with ``add_callback(fn, *args)`` that runs on the I/O thread."""
        return self._ioloop_stub

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
        """Wait until the I/O and handler threads have processed earlier work.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.
        """
        if not self._running.is_set():
            return
        done = threading.Event()
        self._handler_queue.put((done.set, ()))
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
        listener = self._bind_socket(self._bindaddr)
        self._listener = listener
        self._bindaddr = listener.getsockname()[:2]
        self._stopped.clear()
        self._handler_queue = queue.SimpleQueue()
        self._inline_handlers = self._find_inline_handlers()
        loop = SelectorLoop(name="katcp-server-io", excepthook=excepthook, daemon=self._daemon)
        self._loop = loop
        self._ioloop_stub = IOLoopStub(loop)
        loop.register(listener, _SELECT_READ, self._on_accept)
        self._handler_thread = ExcepthookThread(excepthook, target=self._handler_main,
                                                name="katcp-server-handler", daemon=self._daemon)
        self._handler_thread.start()
        loop.start()
        loop.call_soon(self._running.set)
        if timeout:
            return self._running.wait(timeout)
        return None

    #: Requests whose standard handlers never block; while a client has nothing
    #: queued on the handler thread they are answered on the I/O thread.
    _NON_BLOCKING_HANDLERS: Dict[str, Callable[..., Any]] = {}

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

    def _bind_socket(self, bindaddr: tuple) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(bindaddr)
            sock.listen(self.BACKLOG)
            sock.setblocking(False)
        except Exception:
            sock.close()
            self._logger.exception("Unable to bind to %s", bindaddr)
            raise
        return sock

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
            loop, handler = self._loop, self._handler_thread
            if loop is None:
                return True
            was_running = self._running.is_set()
            self._running.clear()
        if was_running:
            on_handler = threading.current_thread() is handler
            if on_handler:
                self._disconnect_all_for_stop()
            else:
                self._handler_queue.put(_STOP)
                if handler is not None:
                    handler.join(self._remaining(deadline, 0.5))
                if handler is not None and handler.is_alive():
                    # A handler is busy: say goodbye without the device hooks.
                    self._disconnect_all_for_stop(hooks=False)
            loop.call_soon(self._close_all_streams)
        loop.stop(self._remaining(deadline))  # from the loop thread: ends after this callback
        self._handler_queue.put(_STOP)
        if handler is not None and threading.current_thread() is not handler:
            handler.join(self._remaining(deadline))
        done = not loop.is_running() and (handler is None or not handler.is_alive())
        if threading.current_thread() in (handler, loop.thread):
            done = True  # the calling thread ends as soon as it returns
        if done:
            self._stopped.set()
        return done

    @staticmethod
    def _remaining(deadline: Optional[float], fraction: float = 1.0) -> Optional[float]:
        if deadline is None:
            return None
        return max(0.0, (deadline - time.monotonic()) * fraction)

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the server threads to end.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        loop, handler = self._loop, self._handler_thread
        for thread in (loop.thread if loop else None, handler):
            if thread is not None and thread is not threading.current_thread():
                thread.join(self._remaining(deadline))

    # ------------------------------------------------------------------ I/O thread
    def _on_accept(self, listener: socket.socket, mask: int) -> None:
        for _ in range(self.BACKLOG):
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._logger.warning("accept failed: %s", exc)
                return
            if not self._running.is_set():
                sock.close()
                continue
            self._add_client(sock)

    def _add_client(self, sock: socket.socket) -> None:
        try:  # notice peers that vanish without closing (power loss, cable)
            set_keepalive(sock, *self.KEEPALIVE)
        except (OSError, NotImplementedError):
            pass
        conn_box: List[ClientConnection] = []
        parse = self._parser.parse
        handler_put = self._handler_queue.put
        dispatch = self._dispatch_message
        inline = self._inline_handlers
        handle_request = self.handle_request
        request_type = Message.REQUEST
        max_queued = self.MAX_QUEUED_PER_CLIENT

        def on_line(line: bytes) -> None:
            if not line:
                return
            conn = conn_box[0]
            try:
                msg = parse(line)
            except Exception:
                reason = "\n".join(traceback.format_exception(*sys.exc_info(), limit=self._tb_limit))
                self._logger.error("BAD COMMAND: %s in line %r", reason, line[:200])
                conn.inform(self.create_log_inform("error", reason, "root"))
                return
            if (inline and msg.mtype == request_type and msg.name in inline
                    and conn._enqueued == conn._done):
                # A built-in, non-blocking request with nothing of this client
                # ahead of it: answer on the I/O thread, saving a thread hop.
                handle_request(conn, msg)
                return
            conn._enqueued += 1
            if conn._enqueued - conn._done >= max_queued:
                # Back-pressure: read no more from this client until the
                # handler thread catches up (paused before queueing, so the
                # handler sees the pause when it takes this message).
                conn._stream.pause_reading()
            handler_put((dispatch, (conn, msg)))

        def on_close(reason: str) -> None:
            self._client_closed(conn_box[0], reason)

        stream = LineStream(self._loop, sock, on_line, on_close,
                            max_line=self.MAX_MSG_SIZE, max_write=self.MAX_WRITE_BUFFER_SIZE)
        conn = self.client_connection_factory(self, stream)
        conn_box.append(conn)
        with self._conn_lock:
            self._connections[stream] = conn
        stream.register()
        conn._enqueued += 1
        if getattr(type(self).on_client_connect, "_non_blocking", False):
            self._connected(conn)  # a hook known not to block: no thread hop
        else:
            handler_put((self._connected, (conn,)))

    client_connection_factory = ClientConnection

    def _client_closed(self, conn: ClientConnection, reason: str) -> None:
        with self._conn_lock:
            self._connections.pop(conn._stream, None)
        if self._running.is_set():
            self._handler_queue.put((self._lost_client, (conn, reason)))

    def _close_all_streams(self) -> None:
        if self._listener is not None:
            if self._loop is not None:
                self._loop.unregister(self._listener)
            self._listener.close()
            self._listener = None
        with self._conn_lock:
            streams = list(self._connections)
            self._connections.clear()
        for stream in streams:
            stream.flush_now()
            stream.close(SHUTDOWN_REASON)

    # ------------------------------------------------------------------ handler thread
    def _handler_main(self) -> None:
        get = self._handler_queue.get
        while True:
            item = get()
            if item is _STOP:
                if self._loop is not None and not self._running.is_set():
                    self._disconnect_all_for_stop()
                    if not self._loop.is_running():
                        self._stopped.set()  # stop() gave up waiting for a busy handler
                    return
                continue
            fn, args = item
            try:
                fn(*args)
            except Exception:
                self._logger.exception("Error in server handler thread")

    def _connected(self, conn: ClientConnection) -> None:
        try:
            if not conn._stream.closed:
                self._call_connect_hook(conn)
        finally:
            conn._done += 1

    def _call_connect_hook(self, conn: ClientConnection) -> None:
        try:
            self.on_client_connect(conn)
        except Exception:
            reason = "\n".join(traceback.format_exception(*sys.exc_info(), limit=self._tb_limit))
            self._logger.error("Device error initialising connection %s", reason)
            conn.inform(Message.inform("log", "Device error initialising connection " + reason))
            conn._stream.close_after_flush("on_client_connect failed")

    def _dispatch_message(self, conn: ClientConnection, msg: Message) -> None:
        try:
            if not conn._stream.closed:
                self.on_message(conn, msg)
        except Exception:
            self._logger.exception("Error handling message %s", msg)
        finally:
            conn._done += 1
            if (conn._stream.paused and not conn._resume_scheduled
                    and conn._enqueued - conn._done <= self.MAX_QUEUED_PER_CLIENT // 2):
                conn._resume_scheduled = True
                self._loop.call_soon(self._resume_client, conn)

    def _resume_client(self, conn: ClientConnection) -> None:
        conn._resume_scheduled = False
        conn._stream.resume_reading()

    def _lost_client(self, conn: ClientConnection, reason: str) -> None:
        self._call_disconnect_hook(conn, reason, False)

    def _call_disconnect_hook(self, conn: ClientConnection, reason: str, valid: bool) -> None:
        if conn.client_disconnect_called:
            return
        conn.on_client_disconnect_was_called()
        try:
            self.on_client_disconnect(conn, reason, valid)
        except Exception:
            self._logger.exception("on_client_disconnect failed for %s", conn.address)

    def _disconnect_client(self, conn: ClientConnection, reason: str) -> None:
        def disconnect() -> None:
            self._call_disconnect_hook(conn, reason, not conn._stream.closed)
            conn._stream.close_after_flush(reason)
        if threading.current_thread() is self._handler_thread:
            disconnect()
        else:
            self._handler_queue.put((disconnect, ()))

    def _disconnect_all_for_stop(self, hooks: bool = True) -> None:
        with self._conn_lock:
            conns = list(self._connections.values())
        for conn in conns:
            if hooks:
                self._call_disconnect_hook(conn, SHUTDOWN_REASON, not conn._stream.closed)
            elif not conn.client_disconnect_called:
                conn.inform(Message.inform("disconnect", SHUTDOWN_REASON))
