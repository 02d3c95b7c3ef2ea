"""The selector loop and its timers: the one timer heap of the project."""

import heapq
import itertools
import logging
import select
import selectors
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._threads import Excepthook, ExcepthookThread, WakeupSocket

__all__ = ["EVENT_READ", "EVENT_WRITE", "EVENT_READ_WRITE", "TimerHandle", "SelectorLoop",
           "call_later_shared"]

log = logging.getLogger("protocompat.netutil")

#: Selector event masks.
EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE
EVENT_READ_WRITE = selectors.EVENT_READ | selectors.EVENT_WRITE

Callback = Callable[..., Any]

_timer_seq = itertools.count()
_EPOLLIN = getattr(select, "EPOLLIN", 1)
_NOT_EPOLLIN = ~_EPOLLIN
_NOT_EPOLLOUT = ~getattr(select, "EPOLLOUT", 4)


class TimerHandle:
    """A call scheduled with :meth:`SelectorLoop.call_later` or :meth:`SelectorLoop.call_at`.

    Attributes
    ----------
    when : float
        When the call is due, on the :func:`time.monotonic` clock.
    cancelled : bool
        True once :meth:`cancel` has been called.
    """

    __slots__ = ("when", "_seq", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callback, args: Tuple[Any, ...]) -> None:
        self.when = when
        self._seq = next(_timer_seq)
        self.callback: Optional[Callback] = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Stop the call from running, if it has not run yet; safe from any thread."""
        self.cancelled = True
        self.callback = None  # release what the callback holds
        self.args = ()

    def __lt__(self, other: "TimerHandle") -> bool:
        # Equal deadlines run in the order they were scheduled.
        return (self.when, self._seq) < (other.when, other._seq)


class SelectorLoop:
    """One thread that owns a selector, the sockets registered with it and a timer heap.

    What callers use:

    * :meth:`call_soon`, :meth:`call_later`, :meth:`call_at`: run a callable on
      the loop; safe from any thread. After the loop has ended,
      :meth:`call_soon` runs the callable at once in the calling thread (so a
      close requested late still happens) and timers are ignored.
    * :meth:`wait_for`: block until a condition holds, running the loop in the
      calling thread meanwhile, so that what the condition waits for is
      handled without a hop to another thread.
    * :meth:`register`, :meth:`modify`, :meth:`unregister`: watch a socket;
      call them from a loop callback (or before :meth:`start`).
    * :meth:`start`, :meth:`stop`, :meth:`run`, :meth:`in_loop_thread`.

    Callbacks registered for a socket are called as ``callback(fileobj, mask)``.
    Callbacks, timers and ``call_soon`` calls run one at a time, never
    concurrently: on the loop thread, or on a thread blocked in
    :meth:`wait_for` while it runs the loop. An exception from any callback is
    logged and the loop goes on.

    Parameters
    ----------
    name : str
        Name of the loop thread.
    excepthook : callable, optional
        Passed to the :class:`~protocompat.netutil.ExcepthookThread` that runs the loop.
    daemon : bool
        Whether the loop thread is a daemon thread.
    exit_when_idle : bool
        End the loop as soon as it has no timer, no pending callback and no
        socket registered. Such a loop cannot be started again; see
        :func:`call_later_shared`.
    """

    #: Seconds the loop thread leaves the loop to callers of :meth:`wait_for` after the last
    #: one returns, so that back-to-back waits need not wake it each time.
    WAIT_FOR_LINGER = 0.001
    #: Longest the loop thread sleeps between looks at whether callers of :meth:`wait_for`
    #: still run the loop; it looks after WAIT_FOR_LINGER, then twice as long each time, up
    #: to this, so a long wait costs it few wake-ups.
    WAIT_FOR_POLL_MAX = 0.004

    def __init__(self, name: str = "SelectorLoop", excepthook: Optional[Excepthook] = None,
                 daemon: bool = True, exit_when_idle: bool = False) -> None:
        self.name = name
        self.selector = selectors.DefaultSelector()
        # With epoll, turns poll the selector's epoll object and look keys up in its own
        # fd map, without the list of (key, events) that select() builds.
        self._epoll: Any = None
        self._keys: Dict[int, selectors.SelectorKey] = {}
        if isinstance(self.selector, getattr(selectors, "EpollSelector", ())):
            epoll = getattr(self.selector, "_selector", None)
            keys = getattr(self.selector, "_fd_to_key", None)
            if epoll is not None and isinstance(keys, dict):
                self._epoll, self._keys = epoll, keys
        self._waker = WakeupSocket()
        self.selector.register(self._waker.recv_socket, EVENT_READ, None)
        self._ready: List[Tuple[Callback, Tuple[Any, ...]]] = []
        self._timers: List[TimerHandle] = []
        self._lock = threading.Lock()
        # Turns: at most one thread (the runner) selects and runs callbacks at a time.
        self._turns = threading.Condition(self._lock)
        self._runner: Optional[threading.Thread] = None
        self._main: Optional[threading.Thread] = None  # the thread in run()
        self._drivers = 0  # threads inside wait_for
        self._turn_waiters = 0  # of those, the ones waiting for a turn
        self._last_driver = 0.0  # when the last wait_for returned
        self._main_waiting = False  # run() waits for callers to leave the loop
        self._stopping = False  # stop() was called
        self._finished = False  # the loop has run its last callbacks (under _lock)
        self._closed = False
        self._excepthook = excepthook
        self._daemon = daemon
        self._exit_when_idle = exit_when_idle
        self._thread: Optional[ExcepthookThread] = None

    # -- thread control --------------------------------------------------
    def start(self) -> None:
        """Run the loop in a new thread.

        Raises
        ------
        RuntimeError
            If the loop was started before.
        """
        if self._thread is not None:
            raise RuntimeError("loop %r already started" % self.name)
        self._thread = ExcepthookThread(self._excepthook, target=self.run, name=self.name,
                                        daemon=self._daemon)
        self._thread.start()

    @property
    def thread(self) -> Optional[threading.Thread]:
        """The loop thread (None before :meth:`start`)."""
        return self._thread

    def in_loop_thread(self) -> bool:
        """True when called by the thread running the loop now (from a loop callback)."""
        return threading.current_thread() is self._runner

    def is_running(self) -> bool:
        """True while the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """True once the loop has ended (it never starts again)."""
        return self._finished

    @staticmethod
    def time() -> float:
        """The loop's clock: :func:`time.monotonic`."""
        return time.monotonic()

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Stop the loop, wait up to ``timeout`` for its thread, close the selector.

        Callbacks queued before ``stop`` still run. Sockets still registered are
        unregistered but not closed: their owners close them (for instance from
        a :meth:`call_soon` made before ``stop``). Called from a loop callback,
        it does not wait: the loop ends when the callback returns.

        Returns
        -------
        stopped : bool
            True if the loop thread has ended (or will, when called from a callback).
        """
        self._stopping = True
        with self._lock:
            self._turns.notify_all()
        self._waker.wake()
        me = threading.current_thread()
        if me is self._runner:
            return True
        thread = self._thread
        if thread is not None and me is not thread:
            thread.join(timeout)
            if thread.is_alive():
                return False
        if thread is None or not thread.is_alive():
            self._finish()
        return True

    def _finish(self) -> None:
        """Run the last callbacks, then close the selector; once."""
        me = threading.current_thread()
        with self._lock:
            self._turn_waiters += 1
            while self._runner is not None and self._runner is not me:
                self._turns.wait()  # a caller of wait_for ends its turn first
            self._turn_waiters -= 1
            self._runner = me
        try:
            while True:
                with self._lock:
                    ready, self._ready = self._ready, []
                    if not ready:
                        self._finished = True  # from now on call_soon runs inline
                        self._timers = []
                        if self._closed:
                            return
                        self._closed = True
                        break
                for callback, args in ready:
                    self._call(callback, args)
            try:
                self.selector.close()
            finally:
                self._waker.close()
        finally:
            with self._lock:
                self._runner = None
                self._turns.notify_all()

    # -- work from any thread -------------------------------------------
    def call_soon(self, callback: Callback, *args: Any) -> None:
        """Run ``callback(*args)`` on the loop; safe from any thread."""
        with self._lock:
            if not self._finished:
                self._ready.append((callback, args))
                if threading.current_thread() is self._runner:
                    return
                if self._main_waiting:
                    self._turns.notify_all()
                wake = True
            else:
                wake = False
        if wake:
            self._waker.wake()
        else:
            self._call(callback, args)

    def call_later(self, delay: float, callback: Callback, *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the loop after ``delay`` seconds."""
        return self.call_at(time.monotonic() + max(0.0, delay), callback, *args)

    def call_at(self, when: float, callback: Callback, *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` at ``when`` on the :func:`time.monotonic` clock.

        Returns
        -------
        handle : TimerHandle
            Cancel it to stop the call. After the loop has ended the handle
            is returned already cancelled.
        """
        handle = TimerHandle(when, callback, args)
        with self._lock:
            if self._finished:
                handle.cancel()
                return handle
            heapq.heappush(self._timers, handle)
            first = self._timers[0] is handle
            if first and self._main_waiting:
                self._turns.notify_all()
        if first and not self.in_loop_thread():
            self._waker.wake()
        return handle

    def wait_for(self, predicate: Callable[[], Any], timeout: Optional[float] = None) -> bool:
        """Wait until ``predicate()`` is true, running the loop in this thread meanwhile.

        While a thread waits here it takes turns running the loop (selecting and
        running callbacks), so what it waits for is handled on its own thread
        and it wakes without a hop from the loop thread. Callbacks still run one
        at a time. ``predicate`` is called on this thread and must be quick.

        Parameters
        ----------
        predicate : callable
            ``predicate() -> bool``.
        timeout : float, optional
            Seconds to wait at most; None waits as long as the loop runs.

        Returns
        -------
        satisfied : bool
            The last value of ``predicate()``: False on timeout, or when the
            loop has ended or is stopping.

        Raises
        ------
        RuntimeError
            When called from a loop callback (the loop would wait for itself).
        """
        if predicate():
            return True
        me = threading.current_thread()
        if me is self._runner:
            raise RuntimeError("wait_for() called from a callback of loop %r, which it would block"
                               % self.name)
        deadline = None if timeout is None else time.monotonic() + timeout
        remaining = timeout
        lock = self._lock
        with lock:
            if self._finished or self._stopping:
                return bool(predicate())
            self._drivers += 1
            wake = self._runner is not None and self._runner is self._main
        if wake:
            self._waker.wake()  # the loop thread may be waiting in select
        lock.acquire()
        try:
            while True:
                # Under the lock: look at the predicate, then take a turn or wait for one.
                if predicate():
                    return True
                if self._finished or self._stopping:
                    return False
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                if self._runner is not None:
                    self._turn_waiters += 1
                    try:
                        self._turns.wait(remaining)
                    finally:
                        self._turn_waiters -= 1
                    continue
                self._runner = me
                lock.release()
                try:
                    self._iterate(remaining)
                finally:
                    lock.acquire()
                    self._runner = None
                    if self._turn_waiters:
                        self._turns.notify_all()
        finally:
            self._drivers -= 1
            self._last_driver = time.monotonic()
            lock.release()

    # -- sockets (from loop callbacks, or before start) -------------------
    def register(self, fileobj: Any, events: int, callback: Callable[[Any, int], Any]) -> None:
        """Watch ``fileobj`` for ``events``; call ``callback(fileobj, mask)``."""
        self.selector.register(fileobj, events, callback)

    def modify(self, fileobj: Any, events: int, callback: Callable[[Any, int], Any]) -> None:
        """Change the events or callback of a registered ``fileobj``."""
        self.selector.modify(fileobj, events, callback)

    def unregister(self, fileobj: Any) -> None:
        """Stop watching ``fileobj``; unknown or closed objects are ignored."""
        try:
            self.selector.unregister(fileobj)
        except (KeyError, ValueError, OSError, RuntimeError):
            pass

    # -- the loop --------------------------------------------------------
    def _next_timeout(self) -> Optional[float]:
        """Seconds the selector may wait, or None for no limit (idle exit: -1)."""
        if not self._ready and not self._timers and not self._exit_when_idle:
            return None  # a call_soon racing with this read wakes the selector
        with self._lock:
            if self._ready:
                return 0.0
            timers = self._timers
            while timers and timers[0].cancelled:
                heapq.heappop(timers)
            if timers:
                return max(0.0, timers[0].when - time.monotonic())
            if (self._exit_when_idle and self._runner is self._main
                    and len(self.selector.get_map()) <= 1):
                self._stopping = True
                self._finished = True  # decided under the lock: no call is lost
                return -1.0
            return None

    def _iterate(self, limit: Optional[float] = None) -> bool:
        """One turn: select (at most ``limit`` seconds), run callbacks; False on idle exit."""
        if self._ready or self._timers or self._exit_when_idle:
            timeout = self._next_timeout()
            if timeout is not None and timeout < 0:
                return False
            if limit is not None and (timeout is None or limit < timeout):
                timeout = limit
        else:
            timeout = limit
        epoll = self._epoll
        if epoll is None:
            self._dispatch_selected(timeout)
        else:
            keys = self._keys
            for fd, flags in epoll.poll(-1 if timeout is None else timeout, len(keys)):
                key = keys.get(fd)
                if key is None:  # unregistered by an earlier callback of this turn
                    continue
                callback = key.data
                if callback is None:
                    self._waker.drain()
                    continue
                # As selectors reads epoll's flags: errors and hang-ups wake both sides.
                if flags == _EPOLLIN:
                    mask = EVENT_READ
                else:
                    mask = (EVENT_WRITE if flags & _NOT_EPOLLIN else 0) | \
                        (EVENT_READ if flags & _NOT_EPOLLOUT else 0)
                mask &= key.events
                try:
                    callback(key.fileobj, mask)
                except Exception:
                    log.exception("%s: callback %r raised", self.name, callback)
        if self._ready or self._timers:
            self._run_ready()
        return True

    def _dispatch_selected(self, timeout: Optional[float]) -> None:
        """Select and run the ready sockets' callbacks (selectors other than epoll)."""
        waker = self._waker
        for key, mask in self.selector.select(timeout):
            callback = key.data
            if callback is None:
                waker.drain()
                continue
            try:
                callback(key.fileobj, mask)
            except Exception:
                log.exception("%s: callback %r raised", self.name, callback)

    def _end_turn(self) -> None:
        with self._lock:
            self._runner = None
            if self._turn_waiters or (self._main_waiting and not self._drivers):
                self._turns.notify_all()

    def _take_main_turn(self, me: threading.Thread) -> bool:
        """Wait until run() may take a turn; False when the loop is to stop."""
        linger = self.WAIT_FOR_LINGER
        poll = linger
        with self._lock:
            while True:
                if self._stopping:
                    return False
                wait: Optional[float]
                if self._drivers:
                    wait = poll  # callers of wait_for run the loop; look again later
                    poll = min(poll * 2, self.WAIT_FOR_POLL_MAX)
                elif self._runner is None:
                    now = time.monotonic()
                    wait = linger - (now - self._last_driver)
                    timers = self._timers
                    if timers:
                        wait = min(wait, timers[0].when - now)
                    if wait <= 0 or self._ready:
                        break
                else:
                    wait = None  # a turn outside wait_for: its end notifies
                self._main_waiting = True
                self._turns.wait(wait)
                self._main_waiting = False
            self._runner = me
            return True

    def _run_ready(self) -> None:
        if not self._ready and not self._timers:
            return
        now = time.monotonic()
        with self._lock:
            ready, self._ready = self._ready, []
            timers = self._timers
            while timers and timers[0].when <= now:
                handle = heapq.heappop(timers)
                callback = handle.callback
                if callback is not None:
                    ready.append((callback, handle.args))
                    handle.callback = None
        for callback, args in ready:
            self._call(callback, args)

    def _call(self, callback: Callback, args: Tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("%s: callback %r raised", self.name, callback)

    def run(self) -> None:
        """Run the loop in the calling thread until :meth:`stop` (or idle, see ``exit_when_idle``)."""
        me = threading.current_thread()
        self._main = me
        try:
            idle_exit = False
            while not idle_exit and self._take_main_turn(me):
                try:
                    # Keep the turn while no other thread wants one: callers of wait_for
                    # and stop() wake the selector after saying so.
                    while not (self._drivers or self._turn_waiters or self._stopping):
                        if not self._iterate():
                            idle_exit = True
                            break
                finally:
                    self._end_turn()
        finally:
            if self._thread is None or me is self._thread:
                self._finish()


class _SharedTimers:
    """A loop started on demand for timers alone; its thread ends when no timer is left."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: Optional[SelectorLoop] = None

    def call_at(self, when: float, callback: Callback, *args: Any) -> TimerHandle:
        with self._lock:
            loop = self._loop
            if loop is not None:
                handle = loop.call_at(when, callback, *args)
                if not handle.cancelled:
                    return handle
            loop = self._loop = SelectorLoop(name="protocompat-timers", exit_when_idle=True)
            handle = loop.call_at(when, callback, *args)
            loop.start()
            return handle


_shared_timers = _SharedTimers()


def call_later_shared(delay: float, callback: Callback, *args: Any) -> TimerHandle:
    """Run ``callback(*args)`` after ``delay`` seconds on a shared timer thread.

    For code whose sockets run on a loop it does not own (the application's
    selector). The thread exists only while a timer is pending; callbacks
    must be quick and thread-safe.

    Returns
    -------
    handle : TimerHandle
        Cancel it to stop the call.
    """
    return _shared_timers.call_at(time.monotonic() + max(0.0, delay), callback, *args)
