"""Threads: :class:`ExcepthookThread` and the loop's :class:`WakeupSocket`."""

import logging
import socket
import sys
import threading
from typing import Any, Callable, Optional, Tuple

__all__ = ["ExcepthookThread", "WakeupSocket", "Excepthook", "LOOPBACK"]

log = logging.getLogger("protocompat.netutil")

#: The IPv4 loopback address.
LOOPBACK = "127.0.0.1"

Excepthook = Callable[[type, BaseException, Any], Any]


class ExcepthookThread(threading.Thread):
    """A thread that passes unhandled exceptions to a hook.

    Parameters
    ----------
    excepthook : callable, optional
        Called as ``excepthook(etype, value, traceback)`` when ``run()``
        raises. If not given, the hook of the creating thread is used when
        that thread is an :class:`ExcepthookThread` with a hook; otherwise
        the exception goes to :func:`threading.excepthook` as usual.
    *args, **kwargs
        Passed on to :class:`threading.Thread`.

    Notes
    -----
    The hook also applies to subclasses that override ``run()``.
    ``stop(timeout)`` sets :attr:`stop_event`, calls :meth:`_wake` (a
    subclass blocked in I/O overrides it to interrupt itself) and joins.
    """

    def __init__(self, excepthook: Optional[Excepthook] = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if excepthook is None:
            parent = threading.current_thread()
            excepthook = getattr(parent, "excepthook", None)
        self.excepthook: Optional[Excepthook] = excepthook
        self.stop_event = threading.Event()
        subclass_run = self.run

        def run_with_hook() -> None:
            try:
                subclass_run()
            except BaseException:
                hook = self.excepthook
                if hook is None:
                    raise
                hook(*sys.exc_info())

        # An instance attribute shadows run() of any subclass.
        self.run = run_with_hook  # type: ignore[method-assign]

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` has been called."""
        return self.stop_event.is_set()

    def _wake(self) -> None:
        """Interrupt a blocking wait of the thread; overridden by subclasses."""

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Ask the thread to stop and wait for it.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the thread to end; None waits forever.

        Returns
        -------
        stopped : bool
            True if the thread has ended (or was never started).
        """
        self.stop_event.set()
        self._wake()
        if self.ident is None or threading.current_thread() is self:
            return not self.is_alive()
        self.join(timeout)
        return not self.is_alive()


def _loopback_pair() -> Tuple[socket.socket, socket.socket]:
    """Two connected TCP sockets on 127.0.0.1; the listener is closed at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(1)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            client.connect(listener.getsockname())
            while True:
                server, peer = listener.accept()
                if peer == client.getsockname():
                    break
                server.close()  # a stranger raced us to the port
        except BaseException:
            client.close()
            raise
    return server, client


class WakeupSocket:
    """Lets any thread interrupt a ``select`` waiting on :meth:`fileno`.

    A pair of TCP sockets connected over 127.0.0.1 (the listener used to
    connect them is bound to loopback only and closed at once). ``wake()``
    writes one byte without blocking; the loop calls ``drain()`` when the
    read end is ready.
    """

    def __init__(self) -> None:
        self._recv, self._send = _loopback_pair()
        self._recv.setblocking(False)
        self._send.setblocking(False)
        self._send.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._lock = threading.Lock()
        self._closed = False

    def fileno(self) -> int:
        """The file descriptor to register for reading."""
        return self._recv.fileno()

    @property
    def recv_socket(self) -> socket.socket:
        """The socket that becomes readable on :meth:`wake`."""
        return self._recv

    @property
    def closed(self) -> bool:
        return self._closed

    def wake(self) -> None:
        """Make the read end readable; safe from any thread, never blocks."""
        with self._lock:
            if self._closed:
                return
            try:
                self._send.send(b"\0")
            except (BlockingIOError, InterruptedError):
                pass  # the pipe is full: the reader is going to wake anyway
            except OSError as exc:
                log.debug("wake-up socket send failed: %s", exc)

    def drain(self) -> None:
        """Read and discard every pending wake-up byte."""
        try:
            while self._recv.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            log.debug("wake-up socket drain failed: %s", exc)

    def close(self) -> None:
        """Close both sockets; further ``wake()`` calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._send.close()
            self._recv.close()

    def __enter__(self) -> "WakeupSocket":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
