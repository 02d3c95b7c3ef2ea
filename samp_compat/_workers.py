"""A bounded pool of worker threads, started when work arrives and ended when idle."""
import logging
import queue
import threading
import time
from typing import Any, Callable, Optional, Set, Tuple

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
        self._jobs: "queue.SimpleQueue[Optional[_Job]]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._local = threading.local()  # busy: the worker runs a job not yet released
        self._threads: Set[threading.Thread] = set()
        # Workers free for a job not yet claimed by a submit (under _lock).
        self._free = 0
        self._started = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker; ignored once the pool is shut down."""
        with self._lock:
            if self._closed:
                return
            self._jobs.put((fn, args))
            if self._free:
                self._free -= 1  # a waiting worker takes it
                return
            if len(self._threads) >= self._size:
                return  # a busy worker takes it next
            self._started += 1
            thread = ExcepthookThread(None, target=self._work, daemon=True,
                                      name="%s-worker-%d" % (self._name, self._started))
            self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        jobs = self._jobs
        local = self._local
        while True:
            try:
                job = jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                job = self._retire()
                if job is None:
                    return
            if job is None:  # shut down
                return
            fn, args = job
            local.busy = True
            try:
                fn(*args)
            except Exception:
                log.exception("%s: worker job failed", self._name)
            fn = args = job = None  # type: ignore[assignment]
            if local.busy:
                local.busy = False
                with self._lock:
                    self._free += 1

    def release_worker(self) -> None:
        """Count the calling worker as free already: the rest of its job does not block.

        A job calls it just before its last step (sending a response): a job
        submitted in answer to that step then waits for this worker, which
        takes it at once, instead of starting or waking another thread.
        Outside a job of this pool it does nothing.
        """
        local = self._local
        if getattr(local, "busy", False):
            local.busy = False
            with self._lock:
                self._free += 1

    def _retire(self) -> Optional[_Job]:
        """End an idle worker, unless a job came meanwhile: then return it."""
        with self._lock:
            try:
                return self._jobs.get_nowait()  # its submit counted on this worker
            except queue.Empty:
                self._free -= 1
                self._threads.discard(threading.current_thread())
                return None

    def shutdown(self, timeout: Optional[float]) -> bool:
        """Refuse new jobs, let the workers finish the queued ones, and wait for them.

        Returns
        -------
        stopped : bool
            True if every worker (other than the calling thread) has ended.
        """
        current = threading.current_thread()
        with self._lock:
            self._closed = True
            threads = list(self._threads)
            for _ in threads:
                self._jobs.put(None)
        threads = [t for t in threads if t is not current]
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)
