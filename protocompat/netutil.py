"""Threads and sockets shared by the protocompat packages.

Nothing here knows about a protocol; the module imports only the standard
library.

Contents
--------
ExcepthookThread
    A thread whose unhandled exceptions go to ``excepthook(etype, value, tb)``
    (inherited from the creating thread), with ``stop(timeout)``.
WakeupSocket
    A connected pair of loopback TCP sockets; ``wake()`` from any thread makes
    a ``select`` on ``fileno()`` return.
SelectorLoop
    One thread that owns a ``selectors`` selector, with thread-safe
    ``call_soon`` and timed ``call_later``.
get_ip_address, set_keepalive
    As in clever-show's ``lib.messaging``, without the network look-up.
loopback_listener
    A listening TCP socket on 127.0.0.1 with an OS-chosen port.
"""

import heapq
import itertools
import logging
import platform
import selectors
import socket
import sys
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

__all__ = [
    "ExcepthookThread",
    "WakeupSocket",
    "SelectorLoop",
    "TimerHandle",
    "get_ip_address",
    "set_keepalive",
    "loopback_listener",
    "LOOPBACK",
]

log = logging.getLogger("protocompat.netutil")

LOOPBACK = "127.0.0.1"
# An address from TEST-NET-1 (RFC 5737): connecting a UDP socket to it only
# asks the kernel for a route; no packet is sent.
_ROUTE_PROBE_ADDR = ("192.0.2.1", 9)

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


class TimerHandle:
    """A call scheduled with :meth:`SelectorLoop.call_later`."""

    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Stop the call from running, if it has not run yet."""
        self.cancelled = True


class SelectorLoop:
    """One thread that owns a selector and the sockets registered with it.

    Callbacks registered with :meth:`register` are called as
    ``callback(fileobj, mask)`` on the loop thread. Other threads hand work to
    the loop with :meth:`call_soon` / :meth:`call_later`, which wake it. An
    exception from a callback is logged and the loop goes on.

    Parameters
    ----------
    name : str
        Name of the loop thread.
    excepthook : callable, optional
        Passed to the :class:`ExcepthookThread` that runs the loop.
    daemon : bool
        Whether the loop thread is a daemon thread.
    """

    def __init__(self, name: str = "SelectorLoop", excepthook: Optional[Excepthook] = None,
                 daemon: bool = True) -> None:
        self.name = name
        self.selector = selectors.DefaultSelector()
        self._waker = WakeupSocket()
        self.selector.register(self._waker.recv_socket, selectors.EVENT_READ, None)
        self._ready: List[Tuple[Callable[..., Any], Tuple[Any, ...]]] = []
        self._timers: List[Tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._excepthook = excepthook
        self._daemon = daemon
        self._thread: Optional[ExcepthookThread] = None

    # -- thread control --------------------------------------------------
    def start(self) -> None:
        """Run the loop in a new thread."""
        if self._thread is not None:
            raise RuntimeError("loop already started")
        self._thread = ExcepthookThread(self._excepthook, target=self.run, name=self.name,
                                        daemon=self._daemon)
        self._thread.start()

    @property
    def thread(self) -> Optional[threading.Thread]:
        return self._thread

    def in_loop_thread(self) -> bool:
        """True when called from the loop thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Stop the loop, wait up to ``timeout`` for its thread, close the selector.

        Sockets still registered are unregistered but not closed: their owners
        close them (for instance from a ``call_soon`` made before ``stop``,
        which still runs).

        Returns
        -------
        stopped : bool
            True if the loop thread has ended.
        """
        self._stop.set()
        self._waker.wake()
        thread = self._thread
        if thread is not None and threading.current_thread() is not thread:
            thread.join(timeout)
            if thread.is_alive():
                return False
        if thread is None or not thread.is_alive():
            self._close()
        return True

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.selector.close()
        finally:
            self._waker.close()

    # -- work from other threads ----------------------------------------
    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread; safe from any thread."""
        with self._lock:
            self._ready.append((callback, args))
        if not self.in_loop_thread():
            self._waker.wake()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the loop thread after ``delay`` seconds."""
        return self.call_at(time.monotonic() + max(0.0, delay), callback, *args)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` at ``when`` on the :func:`time.monotonic` clock."""
        handle = TimerHandle(when, callback, args)
        with self._lock:
            heapq.heappush(self._timers, (when, next(self._seq), handle))
        if not self.in_loop_thread():
            self._waker.wake()
        return handle

    # -- sockets (call these on the loop thread, or before start) --------
    def register(self, fileobj: Any, events: int, callback: Callable[[Any, int], Any]) -> None:
        """Watch ``fileobj`` for ``events``; call ``callback(fileobj, mask)``."""
        self.selector.register(fileobj, events, callback)

    def modify(self, fileobj: Any, events: int, callback: Callable[[Any, int], Any]) -> None:
        """Change the events or callback of a registered ``fileobj``."""
        self.selector.modify(fileobj, events, callback)

    def unregister(self, fileobj: Any) -> None:
        """Stop watching ``fileobj``; unknown objects are ignored."""
        try:
            self.selector.unregister(fileobj)
        except (KeyError, ValueError):
            pass

    # -- the loop --------------------------------------------------------
    def _next_timeout(self) -> Optional[float]:
        if not self._ready and not self._timers:
            return None  # a call_soon racing with this read wakes the selector
        with self._lock:
            if self._ready:
                return 0.0
            while self._timers and self._timers[0][2].cancelled:
                heapq.heappop(self._timers)
            if not self._timers:
                return None
            return max(0.0, self._timers[0][0] - time.monotonic())

    def _run_ready(self) -> None:
        if not self._ready and not self._timers:
            return
        now = time.monotonic()
        with self._lock:
            ready, self._ready = self._ready, []
            while self._timers and self._timers[0][0] <= now:
                handle = heapq.heappop(self._timers)[2]
                if not handle.cancelled:
                    ready.append((handle.callback, handle.args))
        for callback, args in ready:
            self._call(callback, args)

    def _call(self, callback: Callable[..., Any], args: Tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("%s: callback %r raised", self.name, callback)

    def run(self) -> None:
        """Run the loop in the calling thread until :meth:`stop`."""
        try:
            while not self._stop.is_set():
                for key, mask in self.selector.select(self._next_timeout()):
                    callback = key.data
                    if callback is None:
                        self._waker.drain()
                        continue
                    try:
                        callback(key.fileobj, mask)
                    except Exception:
                        log.exception("%s: callback %r raised", self.name, callback)
                self._run_ready()
            self._run_ready()  # work queued before stop() still runs
        finally:
            if self._thread is None or threading.current_thread() is self._thread:
                self._close()


def get_ip_address() -> str:
    """Return the IP address of this computer, or "localhost" without a network.

    The address is that of the interface of the default route, found by
    connecting a UDP socket (which sends nothing and never blocks). No DNS
    look-up is made.

    Returns
    -------
    address : str
        A dotted IPv4 address, or ``"localhost"``.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_ROUTE_PROBE_ADDR)
            address = probe.getsockname()[0]
    except OSError:
        return "localhost"
    if not address or address == "0.0.0.0":
        return "localhost"
    return address


# TCP_KEEPALIVE on macOS (the idle time before the first probe).
_MACOS_TCP_KEEPALIVE = 0x10


def set_keepalive(sock: socket.socket, after_idle_sec: int = 1, interval_sec: int = 3,
                  max_fails: int = 5) -> None:
    """Set the TCP keep-alive parameters of a socket.

    Parameters
    ----------
    sock : socket.socket
        Socket whose options are changed.
    after_idle_sec : int, optional
        Start sending keep-alive packets after this many idle seconds.
    interval_sec : int, optional
        Interval between keep-alive packets, in seconds.
    max_fails : int, optional
        Unanswered packets before the connection is dropped (Linux only).

    Raises
    ------
    NotImplementedError
        On a platform other than Linux, macOS (Darwin) and Windows.
    """
    system = platform.system()
    if system == "Linux":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, after_idle_sec)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval_sec)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, max_fails)
    elif system == "Darwin":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, _MACOS_TCP_KEEPALIVE, interval_sec)
    elif system == "Windows":
        sock.ioctl(socket.SIO_KEEPALIVE_VALS,  # type: ignore[attr-defined]
                   (1, after_idle_sec * 1000, interval_sec * 1000))
    else:
        raise NotImplementedError("set_keepalive is not implemented for platform %r" % system)


def loopback_listener(backlog: int = 128) -> socket.socket:
    """Return a TCP socket listening on 127.0.0.1 with an OS-chosen port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, 0))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock
