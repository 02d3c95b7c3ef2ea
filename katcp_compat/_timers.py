"""Timer sources for sampling strategies (re-exported by :mod:`katcp_compat.sampling`).

A timer source is anything with ``time()`` and ``call_at(when, callback,
*args)`` returning a handle with ``cancel()``: a
:class:`~protocompat.netutil.SelectorLoop` (a device server passes its own I/O
loop), a server's or client's ``ioloop``, :data:`SHARED_TIMERS` (for strategies
given none), or katcp 0.5's :class:`SampleReactor`. None of them is a thread of
its own: they are loop timers.
"""

import logging
import threading
import time
from typing import Any, Callable, Optional, Set

from protocompat.netutil import SelectorLoop, TimerHandle, call_later_shared

__all__ = ["SHARED_TIMERS", "SampleReactor"]

log = logging.getLogger("katcp_compat.sampling")


class _SharedTimers:
    """The foundation's shared timer thread as a timer source.

    Its thread exists only while a timer is pending (see
    :func:`protocompat.netutil.call_later_shared`).
    """

    __slots__ = ()

    @staticmethod
    def time() -> float:
        """The clock of :meth:`call_at`: :func:`time.monotonic`."""
        return time.monotonic()

    @staticmethod
    def call_at(when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the shared timer thread at ``when``."""
        return call_later_shared(when - time.monotonic(), callback, *args)

    @staticmethod
    def call_later(delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the shared timer thread after ``delay`` seconds."""
        return call_later_shared(delay, callback, *args)


#: The timer source of strategies created without one.
SHARED_TIMERS = _SharedTimers()


class SampleReactor(SelectorLoop):
    """katcp 0.5's sampling thread: a loop that runs the timers of the strategies added to it.

    A :class:`~katcp_compat.server.DeviceServer` does not use one: its
    strategies run on the server's I/O loop. This class is for code written for
    katcp 0.5 that drives strategies itself::

        reactor = SampleReactor()
        reactor.start()
        reactor.add_strategy(strategy)      # sends the first reading
        ...
        reactor.remove_strategy(strategy)
        reactor.stop(timeout=1)

    Any :class:`~protocompat.netutil.SelectorLoop` can serve as a strategy's
    ``reactor``; this one adds the katcp 0.5 names.

    Parameters
    ----------
    logger : logging.Logger, optional
        Kept for the katcp 0.5 signature; exceptions raised by timed calls are
        logged by the loop.
    excepthook : callable, optional
        Receives unhandled exceptions of the thread (as ``ExcepthookThread``).
    """

    def __init__(self, logger: logging.Logger = log,
                 excepthook: Optional[Callable[..., Any]] = None) -> None:
        super().__init__(name="SampleReactor", excepthook=excepthook, daemon=True)
        self._logger = logger
        self._strategies: Set[Any] = set()
        self._strategies_lock = threading.Lock()

    @property
    def daemon(self) -> bool:
        """Whether the thread is a daemon thread (set before :meth:`start`; True by default)."""
        return self._daemon

    @daemon.setter
    def daemon(self, daemonic: bool) -> None:
        self._daemon = bool(daemonic)

    def setDaemon(self, daemonic: bool) -> None:
        """Choose whether the thread is a daemon thread (the katcp 0.5 spelling).

        Parameters
        ----------
        daemonic : bool
        """
        self.daemon = daemonic

    def is_alive(self) -> bool:
        """Whether the thread is running.

        Returns
        -------
        alive : bool
        """
        return self.is_running()

    isAlive = is_alive

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait up to ``timeout`` seconds for the thread to end.

        Parameters
        ----------
        timeout : float, optional
        """
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def add_strategy(self, strategy: Any) -> None:
        """Run a strategy's timers here and start it (it sends its first reading).

        Parameters
        ----------
        strategy : SampleStrategy
        """
        strategy.reactor = self
        with self._strategies_lock:
            self._strategies.add(strategy)
        strategy.start()

    def remove_strategy(self, strategy: Any) -> None:
        """Cancel a strategy added with :meth:`add_strategy`.

        Parameters
        ----------
        strategy : SampleStrategy
        """
        with self._strategies_lock:
            self._strategies.discard(strategy)
        strategy.cancel()
