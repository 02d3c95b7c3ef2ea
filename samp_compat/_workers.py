"""A bounded pool of worker threads, started when work arrives and ended when idle."""
import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Optional, Set, Tuple

from protocompat.netutil import ExcepthookThread

log = logging.getLogger("samp_compat.xmlrpc")

#: Seconds a worker waits for a job before it ends.
WORKER_IDLE = 1.0

_Job = Tuple[Callable[..., Any], tuple]


class WorkerPool:
    """Up to ``size`` threads running queued jobs in order.

    A thread is started when a job finds no idle worker, and ends after
    ``idle`` seconds without a job, so an idle pool holds no thread.

    Parameters
    ----------
    size : int
        Most threads at once.
    name : str
        Prefix of the thread names.
    idle : float
        Seconds an idle worker waits for a job before it ends.
    """

    def __init__(self, size: int, name: str, idle: float = WORKER_IDLE) -> None:
        self._size = max(1, int(size))
        self._name = name
        self._idle_timeout = idle
        self._jobs: Deque[_Job] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._threads: Set[threading.Thread] = set()
        self._waiting = 0  # workers blocked waiting for a job
        self._started = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker; ignored once the pool is shut down."""
        with self._cond:
            if self._closed:
                return
            self._jobs.append((fn, args))
            if self._waiting:
                self._cond.notify()
            if len(self._jobs) <= self._waiting or len(self._threads) >= self._size:
                return
            self._started += 1
            thread = ExcepthookThread(None, target=self._work, daemon=True,
                                      name="%s-worker-%d" % (self._name, self._started))
            self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        cond = self._cond
        jobs = self._jobs
        cond.acquire()
        try:
            while True:
                if jobs:
                    fn, args = jobs.popleft()
                    cond.release()
                    try:
                        fn(*args)
                    except Exception:
                        log.exception("%s: worker job failed", self._name)
                    finally:
                        fn = args = None  # type: ignore[assignment]
                        cond.acquire()
                    continue
                if self._closed or not self._wait():
                    self._threads.discard(threading.current_thread())
                    return
        finally:
            cond.release()

    def _wait(self) -> bool:
        """Wait for a job (lock held); False when the idle time is over without one."""
        deadline = time.monotonic() + self._idle_timeout
        while not self._jobs and not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._waiting += 1
            self._cond.wait(left)
            self._waiting -= 1
        return bool(self._jobs)

    def shutdown(self, timeout: Optional[float]) -> bool:
        """Refuse new jobs, let the workers finish the queued ones, and wait for them.

        Returns
        -------
        stopped : bool
            True if every worker (other than the calling thread) has ended.
        """
        current = threading.current_thread()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = [t for t in self._threads if t is not current]
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)
