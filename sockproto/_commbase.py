"""Callback bookkeeping shared by the comm instances (memory and TCP).

A comm instance delivers whole frames to one data callback and calls its
connect/disconnect callbacks, all on its dispatch thread: whichever thread
runs its :class:`protocompat.netutil.SelectorLoop` at that moment. That is
the loop's own thread, or a thread blocked in ``receive()``,
``wait_connected()`` or ``wait_for()`` (also through a protocol's ``receive``
or ``authentificate``), which runs the loop itself while it waits, so that
the answer it waits for is handled on its own thread, without a hop.
Callbacks never run two at once; ``in_dispatch_thread()`` is true inside
every one of them. Frames that arrive before a data
callback is registered wait (bounded by ``MAX_PENDING_FRAMES`` and
``MAX_PENDING_BYTES``, the oldest dropped first) and are delivered once one
is, or can be taken with ``receive()``.
"""

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, List, Optional

from protocompat.netutil import SelectorLoop

from ._logs import ChannelLogger

__all__: List[str] = []

#: Default seconds ``close`` waits for the loop thread.
CLOSE_TIMEOUT = 5.0

DataCallback = Callable[[bytes], Any]
EventCallback = Callable[[], Any]


class _CommBase:
    """Base of the comm instances: callbacks, pending frames, connection flag.

    Subclasses implement :meth:`send` and :meth:`reconnect`, and call
    :meth:`_deliver`, :meth:`_set_connected` and :meth:`_set_disconnected`
    on the dispatch thread (see the module's docstring). A subclass that owns its loop
    closes its sockets in :meth:`_shutdown`.

    Parameters
    ----------
    loop : SelectorLoop
        The loop whose thread runs the callbacks.
    """

    IS_CLIENT = True
    #: Frames kept while there is no data callback; the oldest is dropped first.
    MAX_PENDING_FRAMES = 1024
    #: Bytes of frames kept while there is no data callback; the oldest are dropped first.
    MAX_PENDING_BYTES = 32 * 1024 * 1024
    _LOGGER_BASE = "sockproto.comm"

    def __init__(self, loop: SelectorLoop) -> None:
        self._loop = loop
        self._closed = False
        self._cb_lock = threading.RLock()
        self._cond = threading.Condition(self._cb_lock)
        self._data_callback: Optional[DataCallback] = None
        self._connect_callbacks: List[EventCallback] = []
        self._disconnect_callbacks: List[EventCallback] = []
        self._pending: Deque[bytes] = collections.deque()
        self._pending_bytes = 0
        self._connected = False
        self._channel_name: Optional[str] = None
        self.logger: logging.Logger = logging.getLogger(self._LOGGER_BASE)

    def _schedule(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the dispatch thread; safe from any thread."""
        self._loop.call_soon(function, *args)

    def in_dispatch_thread(self) -> bool:
        """Return True when called from the thread that runs this instance's loop now.

        That is true inside every callback, whether it runs on the loop
        thread or on a thread that waits in :meth:`receive` or
        :meth:`wait_for`.

        Returns
        -------
        in_dispatch_thread : bool
        """
        return self._loop.in_loop_thread()

    def wait_for(self, predicate: Callable[[], Any], timeout: Optional[float]) -> bool:
        """Wait until ``predicate()`` is true, running the dispatch loop in this thread meanwhile.

        What the caller waits for (a frame, a connection) is then handled
        on the caller's own thread, which wakes without a hop from the
        dispatch thread; callbacks that come due meanwhile run on it too,
        one at a time as always. Called from a callback (the dispatch
        thread, which cannot wait for itself) it only checks ``predicate``.

        Parameters
        ----------
        predicate : callable
            ``predicate() -> bool``; called with the loop's lock held, so it
            must be quick and take no lock.
        timeout : float or None
            Seconds to wait at most; None waits as long as the instance runs.

        Returns
        -------
        satisfied : bool
            The last value of ``predicate()``: False on timeout or once the
            instance is closed.
        """
        try:
            return self._loop.wait_for(predicate, None if timeout is None else max(0.0, timeout))
        except RuntimeError:  # raised, after a look at predicate, in the loop's own thread
            if self._loop.in_loop_thread():
                return False
            raise

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the instance is connected.

        Parameters
        ----------
        timeout : float
            Seconds to wait at most.

        Returns
        -------
        connected : bool
            True if connected; False after ``timeout``, once the instance
            is closed, or at once when called from the dispatch thread
            (which would have to make the connection itself).
        """
        return self.wait_for(self._connected_or_closed, timeout) and self._connected

    def _connected_or_closed(self) -> bool:
        return self._connected or self._closed

    # -- the comm interface ------------------------------------------------
    def init_channel_name(self, channel_name: Optional[str] = None) -> None:
        """Set the channel name used in this instance's log messages.

        Parameters
        ----------
        channel_name : str, optional
            The name, shown at the start of this instance's log lines (the
            logger stays the instance's, e.g. ``sockproto.tcp.server``); None
            shows none.
        """
        self._channel_name = channel_name
        base = logging.getLogger(self._LOGGER_BASE)
        # The name may come from the peer: it tags the lines, it makes no logger.
        self.logger = ChannelLogger(base, str(channel_name)) if channel_name else base

    def is_connected(self) -> bool:
        """Return True while the connection is up.

        Returns
        -------
        connected : bool
        """
        return self._connected

    def register_callback(self, callback: Optional[DataCallback]) -> None:
        """Register the callback that gets every received frame.

        Parameters
        ----------
        callback : callable or None
            Called as ``callback(frame)`` with the frame's bytes on the
            dispatch thread. It replaces an earlier callback; frames that
            arrived while there was none are delivered to it first.
        """
        with self._cb_lock:
            self._data_callback = callback
            flush = callback is not None and bool(self._pending)
        if flush:
            self._schedule(self._flush_pending)

    def register_connect_callback(self, callback: EventCallback) -> None:
        """Register a callback for every (re)connect.

        Parameters
        ----------
        callback : callable
            Called without arguments on the dispatch thread. If the
            instance is connected already, it is called once soon.
        """
        with self._cb_lock:
            self._connect_callbacks.append(callback)
            connected = self._connected
        if connected:
            self._schedule(self._call, callback)

    def register_disconnect_callback(self, callback: EventCallback) -> None:
        """Register a callback for every disconnect.

        Parameters
        ----------
        callback : callable
            Called without arguments on the dispatch thread.
        """
        with self._cb_lock:
            self._disconnect_callbacks.append(callback)

    def receive(self, timeout: float = 1) -> Optional[bytes]:
        """Take the oldest frame that no callback took.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for a frame.

        Returns
        -------
        frame : bytes or None
            None if no frame arrived within ``timeout``.
        """
        pending = self._pending
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if pending:
                with self._cond:
                    if pending:
                        return self._pop_pending()
            if not self.wait_for(pending.__len__, deadline - time.monotonic()):
                return None

    # -- for subclasses ----------------------------------------------
    def _fallback_data_callback(self) -> Optional[DataCallback]:
        """A callback to use when none is registered on this instance."""
        return None

    def _deliver(self, frame: bytes) -> None:
        """Hand one frame to the data callback (dispatch thread)."""
        callback = self._data_callback
        if callback is not None and not self._pending:  # the common case
            try:
                callback(frame)
            except Exception:
                self.logger.exception("callback %r raised", callback)
            return
        callback = callback or self._fallback_data_callback()
        if callback is None or self._pending:
            with self._cond:
                dropped = 0
                while self._pending and (len(self._pending) >= self.MAX_PENDING_FRAMES or
                                         self._pending_bytes + len(frame) > self.MAX_PENDING_BYTES):
                    self._pop_pending()
                    dropped += 1
                if dropped:
                    self.logger.warning("no receiver for frames: %d oldest pending frame(s) dropped "
                                        "(at most %d frames and %d bytes are kept)", dropped,
                                        self.MAX_PENDING_FRAMES, self.MAX_PENDING_BYTES)
                self._pending.append(frame)
                self._pending_bytes += len(frame)
                self._cond.notify_all()
            if callback is not None:
                self._flush_pending()  # keep the order of frames held back earlier
            return
        self._call(callback, frame)

    def _flush_pending(self) -> None:
        while True:
            with self._cond:
                callback = self._data_callback or self._fallback_data_callback()
                if callback is None or not self._pending:
                    return
                frame = self._pop_pending()
            self._call(callback, frame)

    def _pop_pending(self) -> bytes:
        """The oldest pending frame, removed (hold ``_cond``)."""
        frame = self._pending.popleft()
        self._pending_bytes -= len(frame)
        return frame

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            self.logger.exception("callback %r raised", callback)

    def _set_connected(self) -> None:
        with self._cond:
            if self._connected:
                return
            self._connected = True
            callbacks = list(self._connect_callbacks)
            self._cond.notify_all()
        for callback in callbacks:
            self._call(callback)

    def _set_disconnected(self) -> None:
        with self._cond:
            if not self._connected:
                return
            self._connected = False
            callbacks = list(self._disconnect_callbacks)
            self._cond.notify_all()
        for callback in callbacks:
            self._call(callback)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Close for good: take the connection down, stop connecting, end the loop thread.

        A thread blocked in :meth:`receive`, :meth:`wait_connected` or
        :meth:`wait_for` returns at once (with None or False).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the loop thread.

        Returns
        -------
        stopped : bool
            True if the loop thread has ended (and the sockets are closed).
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._loop.call_soon(self._shutdown)
        return self._loop.stop(timeout)

    def stop(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Same as :meth:`close`."""
        return self.close(timeout)

    def _shutdown(self) -> None:
        """Release what the instance holds, on the dispatch thread before it ends."""
