"""Events, states and future helpers of ``katcp.core``, for threads.

katcp 0.9.3 built these on tornado futures and one ioloop. Here they are
thread-safe and their futures are :class:`concurrent.futures.Future`: wait on
one with ``future.result(timeout)`` or chain with ``add_done_callback``.
Timeouts fail a future with :class:`concurrent.futures.TimeoutError`.

Timed work (timeouts, :func:`until_later`) runs on the timers of the
``ioloop`` given, which is anything with ``call_later(delay, callback)`` (a
server's or client's ``ioloop``, a :class:`~protocompat.netutil.SelectorLoop`);
without one, or once that loop has ended, on the foundation's shared timer
thread (:func:`protocompat.netutil.call_later_shared`), which exists only while
a timer is pending. Done-callbacks run in the thread that resolves the future.
"""

import concurrent.futures
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from protocompat.netutil import call_later_shared

__all__ = [
    "AsyncEvent", "AsyncState", "LatencyTimer", "until_any", "until_some", "until_later",
    "future_timeout_manager", "with_timeout", "hashable_identity",
]

Future = concurrent.futures.Future


def _call_later(delay: float, callback: Callable[[], Any], ioloop: Any = None) -> Any:
    """Run ``callback`` after ``delay`` seconds on ``ioloop``'s timers, else the shared ones.

    A :class:`~protocompat.netutil.SelectorLoop` that has ended returns its
    handle already cancelled; the shared timers take the call then.
    """
    delay = max(0.0, delay)
    if ioloop is not None:
        handle = ioloop.call_later(delay, callback)
        if not getattr(handle, "cancelled", False):
            return handle
    return call_later_shared(delay, callback)


def _resolved(value: Any = True) -> "Future[Any]":
    fut: "Future[Any]" = Future()
    fut.set_result(value)
    return fut


def _copy_outcome(source: "Future[Any]", target: "Future[Any]") -> None:
    """Give ``target`` the result or exception of the finished ``source``."""
    if target.done():
        return
    try:
        if source.cancelled():
            target.cancel()
            return
        exc = source.exception()
        if exc is not None:
            target.set_exception(exc)
        else:
            target.set_result(source.result())
    except concurrent.futures.InvalidStateError:
        pass  # resolved by another thread in between


def with_timeout(timeout: Optional[float], future: "Future[Any]",
                 ioloop: Any = None) -> "Future[Any]":
    """A future with the outcome of ``future``, or a timeout error after ``timeout`` seconds.

    Parameters
    ----------
    timeout : float or None
        Seconds; None or 0 returns ``future`` itself.
    future : concurrent.futures.Future
    ioloop : object, optional
        Runs the timer (see the module notes).

    Returns
    -------
    future : concurrent.futures.Future
    """
    if not timeout or future.done():
        return future
    result: "Future[Any]" = Future()

    def expire() -> None:
        if not result.done():
            try:
                result.set_exception(concurrent.futures.TimeoutError(
                    "Timed out after %s seconds" % (timeout,)))
            except concurrent.futures.InvalidStateError:
                pass

    timer = _call_later(timeout, expire, ioloop)

    def done(source: "Future[Any]") -> None:
        timer.cancel()
        _copy_outcome(source, result)

    future.add_done_callback(done)
    return result


class AsyncEvent:
    """An event whose waiters may block or get a future (katcp's ``AsyncEvent``).

    Has the :class:`threading.Event` API (``set``, ``clear``, ``is_set`` and
    its old name ``isSet``, ``wait``) plus :meth:`until_set`. Thread-safe,
    unlike katcp's, which had to be used from its ioloop.

    Parameters
    ----------
    ioloop : object, optional
        Runs the timers of :meth:`until_set` (see the module notes).
    """

    def __init__(self, ioloop: Any = None) -> None:
        self._ioloop = ioloop
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._waiting: List["Future[Any]"] = []

    def is_set(self) -> bool:
        """Whether the event is set.

        Returns
        -------
        flag : bool
        """
        return self._event.is_set()

    isSet = is_set

    def set(self) -> None:
        """Set the event; blocked waiters wake and futures resolve with True."""
        with self._lock:
            self._event.set()
            waiting, self._waiting = self._waiting, []
        for fut in waiting:
            if not fut.done():
                try:
                    fut.set_result(True)
                except concurrent.futures.InvalidStateError:
                    pass

    def clear(self) -> None:
        """Clear the event."""
        self._event.clear()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the event is set.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        flag : bool
            Whether the event is set.
        """
        return self._event.wait(timeout)

    def until_set(self, timeout: Optional[float] = None) -> "Future[Any]":
        """A future resolved with True once the event is set.

        Parameters
        ----------
        timeout : float, optional
            Seconds after which the future fails with a timeout error.

        Returns
        -------
        future : concurrent.futures.Future
        """
        with self._lock:
            if self._event.is_set():
                return _resolved(True)
            fut: "Future[Any]" = Future()
            self._waiting.append(fut)
        return with_timeout(timeout, fut, self._ioloop)

    def wait_with_ioloop(self, ioloop: Any, timeout: Optional[float] = None) -> bool:
        """Block until the event is set (katcp's spelling of :meth:`wait`).

        Parameters
        ----------
        ioloop : object
            Ignored: no loop is needed to wait.
        timeout : float, optional
            Seconds to wait.

        Returns
        -------
        flag : bool
        """
        return self._event.wait(timeout)


class AsyncState:
    """A value from a fixed set whose changes can be awaited (katcp's ``AsyncState``).

    Thread-safe.

    Parameters
    ----------
    valid_states : sequence of hashable
        The possible states, in order.
    initial_state : object, optional
        The first state (default: the first of ``valid_states``).
    ioloop : object, optional
        Runs the timers of :meth:`until_state` (see the module notes).

    Raises
    ------
    ValueError
        If ``initial_state`` is not one of ``valid_states``.
    """

    def __init__(self, valid_states: Iterable[Any], initial_state: Any = None,
                 ioloop: Any = None) -> None:
        states = tuple(valid_states)
        self._ioloop = ioloop
        self._valid_states = frozenset(states)
        self._state = states[0] if initial_state is None else initial_state
        if self._state not in self._valid_states:
            raise ValueError("Initial state must be one of %s, not %r"
                             % (sorted(map(repr, states)), self._state))
        self._lock = threading.Lock()
        self._waiting: Dict[Any, List["Future[Any]"]] = {state: [] for state in states}

    @property
    def state(self) -> Any:
        """The current state."""
        return self._state

    @property
    def valid_states(self) -> frozenset:
        """The possible states."""
        return self._valid_states

    def _check(self, state: Any) -> None:
        if state not in self._valid_states:
            raise ValueError("State must be one of {0}, not {1}".format(
                self._valid_states, state))

    def set_state(self, state: Any) -> None:
        """Change the state; futures waiting for it resolve with True.

        Parameters
        ----------
        state : object
            One of :attr:`valid_states`.

        Raises
        ------
        ValueError
            For a state that is not valid.
        """
        self._check(state)
        with self._lock:
            self._state = state
            waiting, self._waiting[state] = self._waiting[state], []
        for fut in waiting:
            if not fut.done():
                try:
                    fut.set_result(True)
                except concurrent.futures.InvalidStateError:
                    pass

    def until_state(self, state: Any, timeout: Optional[float] = None) -> "Future[Any]":
        """A future resolved with True when ``state`` is set (at once if it is current).

        Parameters
        ----------
        state : object
            One of :attr:`valid_states`.
        timeout : float, optional
            Seconds after which the future fails with a timeout error.

        Returns
        -------
        future : concurrent.futures.Future

        Raises
        ------
        ValueError
            For a state that is not valid.
        """
        self._check(state)
        with self._lock:
            if state == self._state:
                return _resolved(True)
            fut: "Future[Any]" = Future()
            self._waiting[state].append(fut)
        return with_timeout(timeout, fut, self._ioloop)

    def until_state_in(self, *states: Any, **kwargs: Any) -> "Future[Any]":
        """A future resolved when any of ``states`` is set.

        Parameters
        ----------
        *states : object
            Valid states.
        timeout : float, optional (keyword)
            Seconds after which the future fails with a timeout error.

        Returns
        -------
        future : concurrent.futures.Future
        """
        timeout = kwargs.get("timeout")
        return until_any(*(self.until_state(state, timeout=timeout) for state in states))


class LatencyTimer:
    """Tells a busy loop when it has run for too long without yielding.

    katcp used it in tornado coroutines; the clock here is the ``ioloop``'s
    ``time()`` if it has one, else :func:`time.monotonic`.

    Parameters
    ----------
    max_loop_latency : float
        Seconds of already-resolved futures after which
        :meth:`time_to_yield` says True.
    ioloop : object, optional
        Supplies ``time()``.
    """

    def __init__(self, max_loop_latency: float, ioloop: Any = None) -> None:
        self.max_loop_latency = max_loop_latency
        self.ioloop = ioloop
        self._time: Callable[[], float] = getattr(ioloop, "time", time.monotonic)
        self.prev_done = False
        self.done_since = self._time()
        self.done = False

    def check_future(self, fut: Any) -> None:
        """Note whether the next future to wait on is already resolved.

        Parameters
        ----------
        fut : future
        """
        done = self.done = fut.done()
        if done and not self.prev_done:
            self.done_since = self._time()
        self.prev_done = done

    def time_to_yield(self) -> bool:
        """After :meth:`check_future`: whether resolved futures have run too long.

        Returns
        -------
        yield_now : bool
        """
        return self.done and self._time() - self.done_since > self.max_loop_latency


def until_later(delay: float, ioloop: Any = None) -> "Future[Any]":
    """A future resolved with None after ``delay`` seconds.

    Parameters
    ----------
    delay : float
        Seconds.
    ioloop : object, optional
        Runs the timer (see the module notes).

    Returns
    -------
    future : concurrent.futures.Future
    """
    fut: "Future[Any]" = Future()

    def fire() -> None:
        if not fut.done():
            fut.set_result(None)

    _call_later(delay, fire, ioloop)
    return fut


def until_any(*futures: "Future[Any]", **kwargs: Any) -> "Future[Any]":
    """A future with the outcome of the first of ``futures`` to finish.

    Parameters
    ----------
    *futures : concurrent.futures.Future
    timeout : float, optional (keyword)
        Seconds after which the future fails with a timeout error.
    ioloop : object, optional (keyword)
        Runs the timer (see the module notes).

    Returns
    -------
    future : concurrent.futures.Future
    """
    any_future: "Future[Any]" = Future()

    def done(source: "Future[Any]") -> None:
        _copy_outcome(source, any_future)

    for fut in futures:
        fut.add_done_callback(done)
        if any_future.done():
            break
    return with_timeout(kwargs.get("timeout"), any_future, kwargs.get("ioloop"))


def until_some(*args: "Future[Any]", **kwargs: Any) -> "Future[Any]":
    """A future resolved once some of the given futures have finished.

    Parameters
    ----------
    *args : concurrent.futures.Future
        Futures, indexed by position ...
    **kwargs : concurrent.futures.Future
        ... or by keyword (not both).
    done_at_least : int, optional (keyword)
        How many must finish (default: all).
    timeout : float, optional (keyword)
        Seconds after which the future fails with a timeout error.

    Returns
    -------
    future : concurrent.futures.Future
        Resolves with a list of ``(index, result)`` in the order they
        finished; fails with the exception of a future that fails first.

    Raises
    ------
    ValueError
        If futures are given both by position and by keyword.
    """
    done_at_least = kwargs.pop("done_at_least", None)
    timeout = kwargs.pop("timeout", None)
    ioloop = kwargs.pop("ioloop", None)
    if args and kwargs:
        raise ValueError("Pass futures either by position or by keyword, not both")
    indexed: List[Tuple[Any, "Future[Any]"]] = list(enumerate(args)) or list(kwargs.items())
    needed = len(indexed) if done_at_least is None else done_at_least
    result: "Future[Any]" = Future()
    results: List[Tuple[Any, Any]] = []
    lock = threading.Lock()

    def on_done(index: Any, fut: "Future[Any]") -> None:
        with lock:
            if result.done():
                return
            exc = fut.exception() if not fut.cancelled() else concurrent.futures.CancelledError()
            if exc is not None:
                result.set_exception(exc)
                return
            results.append((index, fut.result()))
            if len(results) >= needed:
                result.set_result(list(results))

    if needed <= 0:
        result.set_result([])
    for index, fut in indexed:
        fut.add_done_callback(lambda f, index=index: on_done(index, f))
    return with_timeout(timeout, result, ioloop)


def future_timeout_manager(timeout: Optional[float] = None,
                           ioloop: Any = None) -> Callable[["Future[Any]"], "Future[Any]"]:
    """A helper that puts one overall timeout on several successive waits.

    Parameters
    ----------
    timeout : float, optional
        Seconds for all the waits together; None for no limit.
    ioloop : object, optional
        Runs the timers (see the module notes).

    Returns
    -------
    maybe_timeout : callable
        ``maybe_timeout(future)`` returns a future that fails with a timeout
        error once the overall time is up; ``maybe_timeout.remaining()`` gives
        the seconds left (None without a timeout).
    """
    start = time.monotonic()

    def remaining() -> Optional[float]:
        return timeout - (time.monotonic() - start) if timeout else None

    def maybe_timeout(fut: "Future[Any]") -> "Future[Any]":
        if not timeout:
            return fut
        # A deadline already passed still gets a (zero-delay) timer.
        return with_timeout(max(remaining() or 0.0, 1e-9), fut, ioloop)

    maybe_timeout.remaining = remaining  # type: ignore[attr-defined]
    return maybe_timeout


def hashable_identity(obj: Any) -> Any:
    """A hashable key for ``obj`` that is the same for each access of a bound method.

    Parameters
    ----------
    obj : object

    Returns
    -------
    key : hashable
        ``(id(function), id(instance))`` for a bound method, the string
        itself for a string, else ``id(obj)``.
    """
    if hasattr(obj, "__func__") and hasattr(obj, "__self__"):
        return (id(obj.__func__), id(obj.__self__))
    if isinstance(obj, (str, bytes)):
        return obj
    return id(obj)
