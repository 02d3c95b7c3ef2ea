"""Sockets: options in one place, a listener, a connector, addresses."""

import errno
import logging
import os
import platform
import socket
from typing import Any, Callable, List, Optional, Tuple

from ._loop import EVENT_READ, EVENT_WRITE, TimerHandle
from ._threads import LOOPBACK

__all__ = ["configure_socket", "set_keepalive", "get_ip_address", "loopback_listener",
           "Listener", "Connector", "DEFAULT_CONNECT_TIMEOUT"]

log = logging.getLogger("protocompat.netutil")

# An address from TEST-NET-1 (RFC 5737): connecting a UDP socket to it only
# asks the kernel for a route; no packet is sent.
_ROUTE_PROBE_ADDR = ("192.0.2.1", 9)
# TCP_KEEPALIVE on macOS (the idle time before the first probe).
_MACOS_TCP_KEEPALIVE = 0x10

#: Connections accepted per readiness event before other sockets get a turn.
ACCEPTS_PER_EVENT = 64
#: Seconds a listener waits before accepting again when descriptors run out.
ACCEPT_RETRY_DELAY = 0.1
#: Errors of ``accept`` that mean the process or system is out of descriptors or memory.
_SHORTAGE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
#: Default seconds one connection attempt may take.
DEFAULT_CONNECT_TIMEOUT = 5.0

Address = Tuple[str, int]


def configure_socket(sock: socket.socket) -> None:
    """Make a connected TCP socket non-blocking with Nagle's algorithm off.

    Other kinds of socket (Unix, a socket pair) are only made non-blocking.
    """
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            log.debug("TCP_NODELAY not set: %s", exc)


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


def loopback_listener(backlog: int = socket.SOMAXCONN) -> socket.socket:
    """Return a TCP socket listening on 127.0.0.1 with an OS-chosen port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, 0))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _listen_socket(host: str, port: int, backlog: int, reuse_address: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if reuse_address and hasattr(socket, "SO_REUSEADDR") and platform.system() != "Windows":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Listener:
    """A listening TCP socket on a loop that hands each new connection to ``on_accept``.

    The socket is bound and listening when the constructor returns (so a port
    in use raises :class:`OSError` there, and :attr:`address` is known);
    accepting begins with :meth:`start`. There is no cap on connections below
    the process's descriptor limit. When descriptors run out, ``accept`` is
    retried: first right after ``on_shortage`` if it freed any, else after
    ``ACCEPT_RETRY_DELAY`` (0.1 s); it is logged, never fatal.

    Parameters
    ----------
    loop : SelectorLoop
        The loop that watches the socket.
    host : str
        Address to bind ("" or "0.0.0.0" for every IPv4 interface; an
        address with ":" is IPv6).
    port : int
        Port to bind; 0 lets the system choose.
    on_accept : callable
        ``on_accept(sock, address)`` on the loop thread, with a connected
        socket made non-blocking with ``TCP_NODELAY``. If it raises, the
        socket is closed and the error logged.
    backlog : int
        Length of the kernel's queue of connections not yet accepted.
    reuse_address : bool
        Set ``SO_REUSEADDR`` (not on Windows, where it means something else).
    on_shortage : callable, optional
        ``on_shortage() -> int`` when descriptors run out: free some (close
        idle connections, say) and return how many.
    """

    def __init__(self, loop: Any, host: str, port: int,
                 on_accept: Callable[[socket.socket, Any], Any],
                 backlog: int = socket.SOMAXCONN, reuse_address: bool = True,
                 on_shortage: Optional[Callable[[], int]] = None) -> None:
        self._loop = loop
        self._on_accept = on_accept
        self._on_shortage = on_shortage
        self.sock = _listen_socket(host, port, backlog, reuse_address)
        self.address: Address = self.sock.getsockname()[:2]
        self._watching = False
        self._retry: Optional[TimerHandle] = None
        self.closed = False

    def start(self) -> None:
        """Start accepting; safe from any thread."""
        self._on_loop(self._watch)

    def _on_loop(self, fn: Callable[[], Any]) -> None:
        if self._loop.in_loop_thread():
            fn()
        else:
            self._loop.call_soon(fn)

    def _watch(self) -> None:
        self._retry = None
        if not self.closed and not self._watching:
            self._loop.register(self.sock, EVENT_READ, self._on_ready)
            self._watching = True

    def _on_ready(self, _sock: Any, _mask: int) -> None:
        freed_once = False
        for _ in range(ACCEPTS_PER_EVENT):
            try:
                conn, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _SHORTAGE_ERRNOS:
                    if not freed_once and self._on_shortage is not None and self._on_shortage():
                        freed_once = True
                        continue
                    self._pause(exc)
                    return
                log.debug("accept on %s:%s failed: %s", self.address[0], self.address[1], exc)
                continue  # ECONNABORTED and the like concern one connection only
            try:
                configure_socket(conn)
                self._on_accept(conn, address)
            except Exception:
                log.exception("accepting a connection from %s failed", address)
                conn.close()
            if self.closed:
                return

    def _pause(self, exc: OSError) -> None:
        log.warning("cannot accept on %s:%s (%s); retrying in %.1f s", self.address[0],
                    self.address[1], exc.strerror or exc, ACCEPT_RETRY_DELAY)
        self._loop.unregister(self.sock)
        self._watching = False
        self._retry = self._loop.call_later(ACCEPT_RETRY_DELAY, self._watch)

    def close(self) -> None:
        """Stop accepting and close the socket; safe from any thread."""
        self._on_loop(self._close)

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._retry is not None:
            self._retry.cancel()
        if self._watching:
            self._loop.unregister(self.sock)
            self._watching = False
        self.sock.close()


class Connector:
    """Connects a TCP socket on a loop, with a timeout per attempt and retries with backoff.

    Parameters
    ----------
    loop : SelectorLoop
        The loop on which connecting happens and callbacks run.
    address : tuple
        ``(host, port)``: where to connect. A host name is resolved on the loop thread at each
        attempt (a numeric address needs no look-up).
    on_connect : callable
        ``on_connect(sock)`` with the connected socket, non-blocking, with
        ``TCP_NODELAY``; the owner wraps it in a :class:`Stream`.
    on_failure : callable, optional
        ``on_failure(error, retrying)`` after each failed attempt.
    timeout : float or None
        Seconds one attempt may take; None for the system's own limit.
    retry : bool
        Try again after a failed attempt.
    retry_delay : float
        Seconds before the first retry; each further one waits ``backoff``
        times longer, up to ``max_retry_delay``.
    """

    def __init__(self, loop: Any, address: Address, on_connect: Callable[[socket.socket], Any],
                 on_failure: Optional[Callable[[BaseException, bool], Any]] = None,
                 timeout: Optional[float] = DEFAULT_CONNECT_TIMEOUT, retry: bool = False,
                 retry_delay: float = 0.5, max_retry_delay: float = 60.0,
                 backoff: float = 2.0) -> None:
        self._loop = loop
        self.address = address
        self._on_connect = on_connect
        self._on_failure = on_failure
        self.timeout = timeout
        self.retry = retry
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.backoff = backoff
        self.failures = 0
        self.last_error: Optional[BaseException] = None
        self._sock: Optional[socket.socket] = None
        self._candidates: List[Any] = []
        self._timer: Optional[TimerHandle] = None
        self._active = False

    @property
    def connecting(self) -> bool:
        """True from :meth:`start` until connected, given up or cancelled."""
        return self._active

    def start(self, delay: float = 0.0) -> None:
        """Begin connecting after ``delay`` seconds; safe from any thread.

        Does nothing while an attempt is already under way.
        """
        def begin() -> None:
            if self._active:
                return
            self._active = True
            if delay > 0:
                self._timer = self._loop.call_later(delay, self._attempt)
            else:
                self._attempt()
        if self._loop.in_loop_thread():
            begin()
        else:
            self._loop.call_soon(begin)

    def cancel(self) -> None:
        """Stop connecting and close a socket not yet handed over; safe from any thread."""
        if self._loop.in_loop_thread():
            self._cancel()
        else:
            self._loop.call_soon(self._cancel)

    def _cancel(self) -> None:
        self._active = False
        self._drop_attempt()

    def _drop_attempt(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.unregister(sock)
            sock.close()

    def _attempt(self) -> None:
        self._timer = None
        if not self._active:
            return
        host, port = self.address
        try:
            self._candidates = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError as exc:
            self._failed(exc)
            return
        self._next_candidate(None)

    def _next_candidate(self, error: Optional[BaseException]) -> None:
        self._drop_attempt()
        if not self._candidates:
            self._failed(error or OSError("no address for %s:%s" % self.address))
            return
        family, kind, proto, _name, sockaddr = self._candidates.pop(0)
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:  # out of descriptors, or the family is not supported
            self._next_candidate(exc)
            return
        sock.setblocking(False)
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            sock.close()
            self._next_candidate(OSError(code, "connect to %s:%s: %s"
                                         % (self.address[0], self.address[1], _strerror(code))))
            return
        self._sock = sock
        self._loop.register(sock, EVENT_WRITE, self._on_ready)
        if self.timeout is not None:
            self._timer = self._loop.call_later(self.timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        self._next_candidate(socket.timeout("connect to %s:%s timed out after %s s"
                                            % (self.address[0], self.address[1], self.timeout)))

    def _on_ready(self, sock: socket.socket, _mask: int) -> None:
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._next_candidate(OSError(code, "connect to %s:%s: %s"
                                         % (self.address[0], self.address[1], _strerror(code))))
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop.unregister(sock)
        self._sock = None
        self._active = False
        self._candidates = []
        self.failures = 0
        self.last_error = None
        try:
            configure_socket(sock)
            self._on_connect(sock)
        except Exception:
            log.exception("connection to %s:%s: on_connect failed", *self.address)
            sock.close()

    def next_delay(self) -> float:
        """Seconds the next retry waits, from the failures so far."""
        delay = self.retry_delay * self.backoff ** max(0, self.failures - 1)
        return min(delay, self.max_retry_delay)

    def _failed(self, error: BaseException) -> None:
        self._drop_attempt()
        self.failures += 1
        self.last_error = error
        retrying = self.retry and self._active
        if retrying:
            self._timer = self._loop.call_later(self.next_delay(), self._attempt)
        else:
            self._active = False
        if self._on_failure is not None:
            try:
                self._on_failure(error, retrying)
            except Exception:
                log.exception("connection to %s:%s: on_failure failed", *self.address)


def _strerror(code: int) -> str:
    return os.strerror(code)
