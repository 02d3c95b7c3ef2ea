"""The handler thread of a device server: queued calls, run one after the other."""

import logging
import queue
import threading
from typing import Any, Callable, Optional

from protocompat.netutil import ExcepthookThread

__all__ = ["HandlerThread"]

_STOP = object()  # queue sentinel


class HandlerThread:
    """One thread that runs queued calls in order (``katcp-server-handler``).

    Request handlers, connect and disconnect hooks run here, so a handler may
    block without stalling the I/O of other clients.

    Parameters
    ----------
    on_stop : callable
        ``on_stop() -> bool`` when a stop request reaches the front of the
        queue: True ends the thread (False: the request was stale, go on).
    logger : logging.Logger
        Where exceptions of queued calls are logged.
    excepthook : callable, optional
        Passed to the :class:`~protocompat.netutil.ExcepthookThread`.
    daemon : bool
    """

    def __init__(self, on_stop: Callable[[], bool], logger: logging.Logger,
                 excepthook: Any = None, daemon: bool = True) -> None:
        self._on_stop = on_stop
        self._logger = logger
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        #: Queue a call: ``put((fn, args))``; safe from any thread.
        self.put = self._queue.put
        self._thread = ExcepthookThread(excepthook, target=self._run,
                                        name="katcp-server-handler", daemon=daemon)

    @property
    def thread(self) -> threading.Thread:
        """The thread."""
        return self._thread

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the thread after the calls queued before; any thread."""
        self._queue.put((fn, args))

    def request_stop(self) -> None:
        """Queue a stop request (see ``on_stop``); any thread."""
        self._queue.put(_STOP)

    def is_current(self) -> bool:
        """True when called on the handler thread."""
        return threading.current_thread() is self._thread

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait up to ``timeout`` for the thread to end; True if it has ended."""
        if not self.is_current() and self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                if self._on_stop():
                    return
                continue
            fn, args = item
            try:
                fn(*args)
            except Exception:
                self._logger.exception("Error in server handler thread")
