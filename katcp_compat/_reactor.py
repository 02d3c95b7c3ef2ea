"""The timer thread shared by all sampling strategies (re-exported by :mod:`katcp_compat.sampling`).

One :class:`SampleReactor` thread keeps a heap of deadlines and runs each
due call in turn; a :class:`threading.Condition` wakes it when an earlier
deadline arrives or when it is stopped.
"""

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from protocompat import netutil

if TYPE_CHECKING:  # pragma: no cover
    from .sampling import SampleStrategy

__all__ = ["TimerHandle", "SampleReactor", "default_reactor"]

log = logging.getLogger("katcp_compat.sampling")

_COMPACT_MIN = 64  # cancelled timers tolerated in the heap before compaction
_DEFAULT_IDLE_EXIT = 1.0  # seconds the shared default reactor idles before its thread ends


class TimerHandle:
    """A scheduled call on a :class:`SampleReactor`; :meth:`cancel` stops it."""

    __slots__ = ("when", "seq", "callback", "args", "cancelled", "_reactor")

    def __init__(self, when: float, seq: int, callback: Callable[..., Any],
                 args: Tuple[Any, ...], reactor: "SampleReactor") -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False
        self._reactor = reactor

    def __lt__(self, other: "TimerHandle") -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        """Cancel the call (no effect once it has run)."""
        if not self.cancelled:
            self.cancelled = True
            self._reactor._note_cancelled()


class SampleReactor(netutil.ExcepthookThread):
    """The one timer thread that runs the timed work of all strategies.

    Parameters
    ----------
    logger : logging.Logger, optional
        Where exceptions in timed callbacks are logged.

    Notes
    -----
    ``call_at``/``call_later`` may be called from any thread, before or after
    ``start()``. ``stop(timeout)`` returns True once the thread has ended;
    pending calls are dropped.
    """

    def __init__(self, logger: logging.Logger = log) -> None:
        super().__init__(name="SampleReactor", daemon=True)
        self._logger = logger
        self._cond = threading.Condition(threading.Lock())
        self._heap: List[TimerHandle] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self._strategies: set = set()
        self._idle_exit: Optional[float] = None  # set on the shared default reactor only
        self._closed = False

    def time(self) -> float:
        """Return the reactor clock (:func:`time.monotonic`)."""
        return time.monotonic()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the reactor thread at a monotonic time.

        Parameters
        ----------
        when : float
            :func:`time.monotonic` deadline.
        callback : callable
        *args
            Passed to the callback.

        Returns
        -------
        handle : TimerHandle

        Raises
        ------
        RuntimeError
            If this is an idle-ended default reactor (see
            :func:`default_reactor`).
        """
        handle = TimerHandle(when, next(self._seq), callback, args, self)
        with self._cond:
            if self._closed:
                raise RuntimeError("SampleReactor thread has ended after idling")
            heapq.heappush(self._heap, handle)
            if self._heap[0] is handle:
                self._cond.notify()
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the reactor thread after ``delay`` seconds.

        Parameters
        ----------
        delay : float
        callback : callable
        *args

        Returns
        -------
        handle : TimerHandle
        """
        return self.call_at(self.time() + delay, callback, *args)

    def _note_cancelled(self) -> None:
        with self._cond:
            self._cancelled += 1
            if self._cancelled > _COMPACT_MIN and self._cancelled * 2 > len(self._heap):
                self._heap = [h for h in self._heap if not h.cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _next_due(self) -> Optional[TimerHandle]:
        """Wait for the next due call; None when stopping."""
        with self._cond:
            while not self.stop_event.is_set():
                if not self._heap:
                    if self._idle_exit is None:
                        self._cond.wait()
                    elif not self._cond.wait(self._idle_exit) and not self._heap:
                        self._closed = True
                        return None
                    continue
                head = self._heap[0]
                if head.cancelled:
                    heapq.heappop(self._heap)
                    self._cancelled = max(0, self._cancelled - 1)
                    continue
                delay = head.when - self.time()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                head.cancelled = True  # ran: a later cancel() is a no-op
                return head
        return None

    def run(self) -> None:
        """Run due calls until :meth:`stop`."""
        while True:
            handle = self._next_due()
            if handle is None:
                return
            try:
                handle.callback(*handle.args)
            except Exception:
                self._logger.exception("Unhandled exception in sampling timer %r",
                                       handle.callback)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Stop the thread and wait for it.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait (None waits for ever).

        Returns
        -------
        stopped : bool
            True if the thread has ended (or was never started).
        """
        if not self.is_alive() and self.ident is None:
            self.stop_event.set()
            return True
        return super().stop(timeout)

    # katcp 0.5 interface ---------------------------------------------------

    def add_strategy(self, strategy: "SampleStrategy") -> None:
        """Start a strategy on this reactor (sends its first inform).

        Parameters
        ----------
        strategy : SampleStrategy
        """
        strategy._reactor = self
        with self._cond:
            self._strategies.add(strategy)
        strategy.start()

    def remove_strategy(self, strategy: "SampleStrategy") -> None:
        """Cancel a strategy added with :meth:`add_strategy`.

        Parameters
        ----------
        strategy : SampleStrategy
        """
        with self._cond:
            self._strategies.discard(strategy)
        strategy.cancel()


_default_lock = threading.Lock()
_default: Optional[SampleReactor] = None


def default_reactor() -> SampleReactor:
    """Return the shared reactor used when a strategy is given none.

    It is a daemon thread, started on first use; its thread ends after idling
    for a second with nothing scheduled, and the next call here starts a new
    one. Strategies created without ``reactor=`` call this each time they
    schedule, so they never hold an ended reactor.

    Returns
    -------
    reactor : SampleReactor
    """
    global _default
    with _default_lock:
        current = _default
        if current is None or current._closed or current.stopping or not current.is_alive():
            current = SampleReactor()
            current._idle_exit = _DEFAULT_IDLE_EXIT
            current.start()
            _default = current
        return current


TimerHandle.__module__ = SampleReactor.__module__ = "katcp_compat.sampling"
