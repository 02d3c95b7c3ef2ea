"""The application's selector, presented as the loop of one connection's :class:`~protocompat.netutil.Stream`.

In clever-show the application owns the selector: it registers each
connection's socket with ``data`` = the ConnectionManager, runs ``select()``
itself and calls ``connection.process_events(mask)`` for every ready key;
other threads wake it through :class:`~._notifier.NotifierSock`. A Stream
drives its socket through any object with ``register``, ``modify``,
``unregister``, ``call_soon`` and ``in_loop_thread``; :class:`ApplicationLoop`
is that object for one socket on the application's selector.
"""

import collections
import logging
import selectors
import threading
from typing import Any, Callable, Deque, Optional, Tuple

from ._notifier import NotifierSock

logger = logging.getLogger(__name__)

Callback = Callable[..., Any]

_EVENT_WRITE = selectors.EVENT_WRITE
# What the selector raises for a socket it cannot watch (unknown, closed, or gone from the OS).
_SELECTOR_ERRORS = (KeyError, ValueError, OSError)


class ApplicationLoop:
    """One socket on a selector that the application drives, as a Stream's loop.

    The selector key keeps ``data`` = the owner (the ConnectionManager), so the
    application hands each of the socket's events to the owner, which passes
    it to :meth:`handle`. The loop thread is the thread that last called
    :meth:`handle` or :meth:`claim` (the owner claims it on ``connect``).

    :meth:`call_soon` from another thread queues the call, adds write events
    to the key (a connected socket is writable, so the application's
    ``select()`` returns it) and wakes the selector through
    :class:`~._notifier.NotifierSock`; :meth:`handle` runs the queued calls,
    then the event, and watches only what the stream asks for again. Once the
    stream is closed (:meth:`close`), calls run at once in the calling thread.

    Parameters
    ----------
    selector : selectors.BaseSelector
        The application's selector.
    sock : socket.socket
        The connection's socket (registered here if the application has not).
    data : object
        The selector key's ``data``.
    """

    def __init__(self, selector: Any, sock: Any, data: Any) -> None:
        self.selector = selector
        self._sock = sock
        self._data = data
        self._lock = threading.Lock()  # guards what is watched, and the queue against close
        self._calls: Deque[Tuple[Callback, Tuple[Any, ...]]] = collections.deque()
        self._ready: Optional[Callable[[Any, int], Any]] = None  # the stream's event callback
        self._wanted = 0  # the events the stream asked for
        try:
            self._watched = selector.get_key(sock).events
        except KeyError:
            self._watched = 0
        self._thread = threading.get_ident()
        self._handling = False  # the loop thread is inside handle()
        self._closed = False

    # -- the loop interface of a Stream ------------------------------------------
    def in_loop_thread(self) -> bool:
        """True when called from the loop thread."""
        return threading.get_ident() == self._thread

    def register(self, fileobj: Any, events: int, callback: Callable[[Any, int], Any]) -> None:
        """Watch the socket for ``events``; ``callback(sock, mask)`` gets them (loop thread)."""
        self.modify(fileobj, events, callback)

    def modify(self, fileobj: Any, events: int, callback: Callable[[Any, int], Any]) -> None:
        """Change the events the socket is watched for (loop thread)."""
        with self._lock:
            self._ready = callback
            self._wanted = events
            self._watch()

    def unregister(self, fileobj: Any) -> None:
        """Stop watching the socket for the stream (loop thread); errors are ignored."""
        with self._lock:
            self._wanted = 0
            try:
                self._watch()
            except _SELECTOR_ERRORS:
                self._watched = 0

    def call_soon(self, callback: Callback, *args: Any) -> None:
        """Run ``callback(*args)`` on the loop thread, inside :meth:`handle`; safe from any thread."""
        in_loop = threading.get_ident() == self._thread
        with self._lock:
            if not self._closed:
                self._calls.append((callback, args))
                if in_loop and self._handling:
                    return  # handle() runs it before it returns
                try:
                    self._watch()
                except _SELECTOR_ERRORS as error:  # the application dropped the socket
                    logger.debug("Cannot watch %r: %s; running its calls now", self._sock, error)
                    self._closed = True
            if self._closed:
                calls = list(self._calls)
                self._calls.clear()
            else:
                calls = None
        if calls is not None:
            for queued, queued_args in calls:
                self._call(queued, queued_args)
        elif not in_loop:
            NotifierSock().notify_selector(self.selector)

    def _watch(self) -> None:
        """Watch what the stream wants, and write events while calls wait (lock held)."""
        events = self._wanted | _EVENT_WRITE if self._calls else self._wanted
        if events == self._watched:
            return
        selector = self.selector
        if not events:
            self._watched = 0
            selector.unregister(self._sock)
        elif not self._watched:
            try:
                selector.register(self._sock, events, self._data)
            except KeyError:  # registered by the application meanwhile
                selector.modify(self._sock, events, self._data)
        else:
            selector.modify(self._sock, events, self._data)
        self._watched = events

    # -- what the owner calls --------------------------------------------------------
    def claim(self) -> None:
        """Make the calling thread the loop thread (it drives the socket from now on)."""
        self._thread = threading.get_ident()

    def handle(self, mask: int, after: Optional[Callable[[], Any]] = None) -> None:
        """Run queued calls, pass the event ``mask`` to the stream, then call ``after()``.

        The calling thread becomes the loop thread. Calls queued meanwhile run
        before this returns, also when ``after`` raises; the exception then
        leaves.
        """
        self._thread = threading.get_ident()
        self._handling = True
        try:
            if self._calls:
                self._run_calls()
            events = mask & self._wanted
            ready = self._ready
            if events and ready is not None:
                ready(self._sock, events)
            if after is not None:
                after()
        finally:
            if self._calls:
                self._run_calls()
            self._handling = False
            if self._calls or self._watched != self._wanted:
                with self._lock:
                    if not self._closed:
                        try:
                            self._watch()
                        except _SELECTOR_ERRORS as error:
                            logger.debug("Cannot watch %r: %s", self._sock, error)

    def _run_calls(self) -> None:
        calls = self._calls
        while calls:
            callback, args = calls.popleft()
            self._call(callback, args)

    @staticmethod
    def _call(callback: Callback, args: Tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("Call %r on the application's loop raised", callback)

    def close(self) -> None:
        """The stream is closed: forget it and its queued calls, and stop watching the socket."""
        with self._lock:
            self._closed = True
            self._calls.clear()
            self._ready = None
            self._wanted = 0
            if self._watched:
                try:
                    self._watch()
                except _SELECTOR_ERRORS:
                    self._watched = 0
