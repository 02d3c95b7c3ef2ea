"""Request timeouts: one thread, alive only while timed requests are pending.

The application owns the selector loop that drives a connection, so timers
cannot run on it; this thread calls ``method(request_id)`` at each deadline,
unless the method's object has gone away meanwhile.
"""

import heapq
import itertools
import threading
import time
import weakref
from typing import Any, Callable, List, Optional, Tuple

_THREAD_NAME = "messaging-request-expiry"


class RequestExpiry:
    """Calls ``method(request_id)`` once ``deadline`` (a :func:`time.monotonic` time) has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: List[Tuple[float, int, Any, str]] = []
        self._seq = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def add(self, deadline: float, method: Callable[[str], Any], request_id: str) -> None:
        """Schedule ``method(request_id)`` (a bound method, held weakly) at ``deadline``."""
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), weakref.WeakMethod(method),
                                        request_id))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=_THREAD_NAME, daemon=True)
                self._thread.start()
            else:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            due = []
            with self._cond:
                if not self._heap:
                    self._thread = None
                    return
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap))
            for _, _, ref, request_id in due:
                method = ref()
                if method is not None:
                    method(request_id)
