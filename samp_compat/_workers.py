"""A bounded pool of worker threads, started on demand."""
import logging
import queue
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from protocompat.netutil import ExcepthookThread

log = logging.getLogger("samp_compat.xmlrpc")


class WorkerPool:
    """Up to ``size`` threads, started on demand, running queued jobs."""

    def __init__(self, size: int, name: str) -> None:
        self._size = max(1, int(size))
        self._name = name
        self._jobs: "queue.SimpleQueue[Optional[Tuple[Callable[..., Any], tuple]]]" = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            if self._closed:
                return
            self._jobs.put((fn, args))
            if self._idle > 0 or len(self._threads) >= self._size:
                self._idle = max(0, self._idle - 1)
                return
            thread = ExcepthookThread(None, target=self._work, daemon=True,
                                      name="%s-worker-%d" % (self._name, len(self._threads) + 1))
            self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args = job
            try:
                fn(*args)
            except Exception:
                log.exception("%s: worker job failed", self._name)
            with self._lock:
                self._idle += 1

    def shutdown(self, timeout: Optional[float]) -> bool:
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            if thread is threading.current_thread():
                continue
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads if t is not threading.current_thread())
