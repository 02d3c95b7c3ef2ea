"""Names of katcp 0.9.3's ``katcp.server`` beyond the device server classes.

katcp 0.9.3 split a device into a tornado I/O backend (``KATCPServer``) and
the device; its helpers for that split are given a threaded meaning here.
"""

import collections
import concurrent.futures
import logging
import threading
from functools import wraps
from typing import Any, Callable, Deque, Optional, Tuple

from protocompat import netutil

from ._codec import MAX_MSG_SIZE, MAX_WRITE_BUFFER_SIZE
from ._connection import ClientConnection
from ._futures import with_timeout

__all__ = ["KATCPServer", "MessageHandlerThread", "ThreadsafeClientConnection",
           "return_future", "with_relative_timeout"]

log = logging.getLogger("katcp_compat.server")


def return_future(fn: Callable[..., Any]) -> Callable[..., "concurrent.futures.Future[Any]"]:
    """Decorate a non-blocking function so that it returns a future.

    Parameters
    ----------
    fn : callable

    Returns
    -------
    decorated : callable
        Returns ``fn``'s result if that is a :class:`concurrent.futures.Future`,
        else a future resolved with the result, or failed with the exception
        ``fn`` raised.
    """
    @wraps(fn)
    def decorated(*args: Any, **kwargs: Any) -> "concurrent.futures.Future[Any]":
        fut: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            fut.set_exception(exc)
            return fut
        if isinstance(result, concurrent.futures.Future):
            return result
        fut.set_result(result)
        return fut

    return decorated


def with_relative_timeout(timeout: float, future: "concurrent.futures.Future[Any]",
                          io_loop: Any = None) -> "concurrent.futures.Future[Any]":
    """A future with the outcome of ``future``, failing after ``timeout`` seconds.

    Parameters
    ----------
    timeout : float
        Seconds.
    future : concurrent.futures.Future
    io_loop : object, optional
        Anything with ``call_later`` to run the timer on (a server's
        ``ioloop``); by default the shared timer thread.

    Returns
    -------
    future : concurrent.futures.Future
        Fails with :class:`concurrent.futures.TimeoutError` when time runs
        out first.
    """
    return with_timeout(timeout, future, io_loop)


class ThreadsafeClientConnection(ClientConnection):
    """katcp 0.9.3's connection for messages sent from other threads.

    Every :class:`ClientConnection` here is thread-safe, so this is the same
    class under the 0.9.3 name (for ``isinstance`` checks and for
    ``client_connection_factory``).
    """


class KATCPServer:
    """katcp 0.9.3's tornado I/O backend of a device, as class constants only.

    A :class:`~katcp_compat.server.DeviceServerBase` does its own I/O on one
    selector thread, so there is no separate backend object. This class keeps
    the constants downstream code reads (``KATCPServer.MAX_MSG_SIZE``, ...).

    Raises
    ------
    NotImplementedError
        On construction.
    """

    #: katcp 0.9.3's listen backlog; :class:`~katcp_compat.server.DeviceServerBase`
    #: listens with ``socket.SOMAXCONN`` instead.
    BACKLOG = 5
    MAX_MSG_SIZE = MAX_MSG_SIZE
    MAX_WRITE_BUFFER_SIZE = MAX_WRITE_BUFFER_SIZE
    DISCONNECT_TIMEOUT = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "KATCPServer is katcp 0.9.3's tornado backend; katcp_compat's DeviceServerBase "
            "does its own I/O (start it and use its bind_address)")


#: Messages a MessageHandlerThread holds before refusing more (katcp's limit).
MAX_HANDLER_QUEUE = 300
_STOP = object()


class MessageHandlerThread:
    """A thread that runs a message handler for each queued message.

    katcp 0.9.3 used it to give a device its own handler thread. Here a
    device server already has one; this class is for code that builds its
    own dispatch around it.

    Parameters
    ----------
    handler : callable
        ``handler(client_conn, msg)``, usually a server's ``handle_message``.
    log_inform_formatter : callable
        Kept for the 0.9.3 signature (it formatted error informs).
    logger : logging.Logger, optional
        Where errors of ``handler`` are logged.

    Attributes
    ----------
    name : str
        ``<owner>.message_handler``.
    """

    def __init__(self, handler: Callable[[Any, Any], Any], log_inform_formatter: Any,
                 logger: logging.Logger = log) -> None:
        self.handler = handler
        owner = getattr(handler, "__self__", None)
        owner_name = getattr(owner, "name", None) or type(owner).__name__
        self.name = "{}.message_handler".format(owner_name)
        self.log_inform_formatter = log_inform_formatter
        self._logger = logger
        self._queue: Deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._running = threading.Event()
        self._thread: Optional[netutil.ExcepthookThread] = None
        self.ioloop: Any = None

    def set_ioloop(self, ioloop: Any) -> None:
        """Remember an ioloop (kept for the 0.9.3 API; not used to run handlers).

        Parameters
        ----------
        ioloop : object
        """
        self.ioloop = ioloop

    def on_message(self, client_conn: Any, msg: Any) -> "concurrent.futures.Future[Any]":
        """Queue a message for the handler thread.

        Parameters
        ----------
        client_conn : ClientConnection
        msg : Message

        Returns
        -------
        done : concurrent.futures.Future
            Resolves with the handler's result (or its future's result) once
            the message has been handled; fails with the handler's error.

        Raises
        ------
        RuntimeError
            When ``MAX_HANDLER_QUEUE`` (300) messages are already waiting.
        """
        fut: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        with self._cond:
            if len(self._queue) >= MAX_HANDLER_QUEUE:
                raise RuntimeError("MessageHandlerThread queue full (%d messages); not handling %r"
                                   % (MAX_HANDLER_QUEUE, msg))
            self._queue.append((fut, client_conn, msg))
            self._cond.notify()
        return fut

    def start(self, timeout: Optional[float] = None) -> None:
        """Start the thread.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait until it runs.
        """
        self._thread = netutil.ExcepthookThread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        if timeout:
            self._running.wait(timeout)

    def run(self) -> None:
        """Handle queued messages until :meth:`stop` (the thread's body)."""
        self._running.set()
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                item = self._queue.popleft()
            if item is _STOP:
                self._running.clear()
                return
            self._handle(item)

    def _handle(self, item: Tuple[Any, Any, Any]) -> None:
        fut, client_conn, msg = item
        try:
            result = self.handler(client_conn, msg)
        except Exception as exc:
            self._logger.exception("Error calling message handler for %r", msg)
            fut.set_exception(exc)
            return
        if isinstance(result, concurrent.futures.Future):
            result.add_done_callback(lambda done: self._copy(done, fut))
        else:
            fut.set_result(result)

    @staticmethod
    def _copy(source: "concurrent.futures.Future[Any]",
              target: "concurrent.futures.Future[Any]") -> None:
        exc = source.exception()
        if exc is not None:
            target.set_exception(exc)
        else:
            target.set_result(source.result())

    def running(self) -> bool:
        """Whether the thread is handling messages.

        Returns
        -------
        running : bool
        """
        return self._running.is_set()

    def wait_running(self, timeout: Optional[float] = None) -> bool:
        """Wait until the thread runs.

        Parameters
        ----------
        timeout : float, optional

        Returns
        -------
        running : bool
        """
        return self._running.wait(timeout)

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop after the messages queued so far.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the thread to end.
        """
        with self._cond:
            self._queue.append(_STOP)
            self._cond.notify()
        self.join(timeout)

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the thread to end.

        Parameters
        ----------
        timeout : float, optional
        """
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def isAlive(self) -> bool:
        """Whether the thread is alive (0.9.3 spelling).

        Returns
        -------
        alive : bool
        """
        return self._thread is not None and self._thread.is_alive()

    is_alive = isAlive
