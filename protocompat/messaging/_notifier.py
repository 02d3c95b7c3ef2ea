"""Waking the application's selector loop from other threads: :class:`NotifierSock`."""

import logging
import selectors
import socket
import threading
from typing import Any, Dict, Optional, Tuple

from ..netutil import WakeupSocket

logger = logging.getLogger(__name__)


class _SingletonMeta(type):
    """Metaclass giving each class one shared instance."""

    _instances: Dict[type, Any] = {}
    _lock = threading.RLock()  # re-entrant: an __init__ may create another singleton

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = _SingletonMeta._instances.get(cls)
        if instance is None:
            with _SingletonMeta._lock:
                instance = _SingletonMeta._instances.get(cls)
                if instance is None:
                    instance = super().__call__(*args, **kwargs)
                    _SingletonMeta._instances[cls] = instance
        return instance


class Singleton(metaclass=_SingletonMeta):
    """Singleton base class: every call of a subclass returns its one instance."""


class NotifierSock(Singleton):
    """Wakes the application's selector loop when another thread queues data.

    ``init(selector)`` registers the read end of a loopback socket pair with
    ``data`` = this object; the loop calls :meth:`process_events` for it.
    The pair is connected over 127.0.0.1 on a port the OS chooses, and
    nothing listens once it is set up. Several selectors (several loops in
    one process) may each be initialised; a connection wakes only the loop
    of its own selector.
    """

    def __init__(self) -> None:
        """Create the (single) notifier; call :meth:`init` to use it."""
        self._lock = threading.Lock()
        self._wakers: Dict[int, Tuple[Any, Any]] = {}  # id(selector) -> (selector, WakeupSocket)
        self._last: Any = None
        self._by_thread: Dict[int, Any] = {}  # thread ident -> the WakeupSocket it registered

    def init(self, selector: Any, port: int = 26000) -> None:
        """Register a wake-up socket with ``selector`` (again for the same selector: no-op).

        Parameters
        ----------
        selector : selectors.BaseSelector
            The loop's selector.
        port : int, optional
            Accepted for compatibility and ignored: the port is chosen by the OS.
        """
        with self._lock:
            if id(selector) in self._wakers:
                return
            waker = WakeupSocket()
            try:
                selector.register(waker.recv_socket, selectors.EVENT_READ, data=self)
            except BaseException:
                waker.close()
                raise
            self._wakers[id(selector)] = (selector, waker)
            self._last = waker
            self._by_thread[threading.get_ident()] = waker
        logger.info("Notify socket: selector registered")

    def get_sock(self) -> Optional[socket.socket]:
        """Return the receiving socket of the calling thread's :meth:`init` (else the last one).

        A loop that called ``init`` finds its own socket among its selector's
        keys, also when other loops of the process were initialised later.
        None before :meth:`init`.
        """
        waker = self._by_thread.get(threading.get_ident(), self._last)
        return None if waker is None else waker.recv_socket

    def notify(self) -> None:
        """Wake every initialised loop; safe from any thread."""
        with self._lock:
            wakers = [waker for _, waker in self._wakers.values()]
        for waker in wakers:
            waker.wake()

    def notify_selector(self, selector: Any) -> None:
        """Wake the loop of ``selector`` only (if it was initialised); safe from any thread.

        Parameters
        ----------
        selector : selectors.BaseSelector
            A selector given to :meth:`init`.
        """
        entry = self._wakers.get(id(selector))
        if entry is not None and entry[0] is selector:
            entry[1].wake()

    def process_events(self, mask: int) -> None:
        """Drain the wake-up bytes (loop thread).

        Parameters
        ----------
        mask : int
            The selector events of the notifier's key.
        """
        if not mask & selectors.EVENT_READ:
            return
        with self._lock:
            wakers = [waker for _, waker in self._wakers.values()]
        for waker in wakers:
            waker.drain()

    def forget(self, selector: Any) -> None:
        """Unregister and close the wake-up socket of one selector (before closing it).

        Parameters
        ----------
        selector : selectors.BaseSelector
            A selector given to :meth:`init`; others are ignored.
        """
        with self._lock:
            entry = self._wakers.pop(id(selector), None)
            if entry is not None and self._last is entry[1]:
                self._last = None
            if entry is not None:
                self._by_thread = {k: w for k, w in self._by_thread.items() if w is not entry[1]}
        if entry is not None:
            _unregister_quietly(entry[0], entry[1].recv_socket)
            entry[1].close()

    def close(self) -> None:
        """Unregister and close every wake-up socket."""
        with self._lock:
            entries = list(self._wakers.values())
            self._wakers.clear()
            self._last = None
            self._by_thread.clear()
        for selector, waker in entries:
            _unregister_quietly(selector, waker.recv_socket)
            waker.close()


def _unregister_quietly(selector: Any, fileobj: Any) -> None:
    try:
        selector.unregister(fileobj)
    except (KeyError, ValueError, OSError, RuntimeError):
        pass
