"""A stream whose answer a waiting caller reads itself: no hand-over from the loop thread."""

import logging
import select
import socket
import threading
import time
from typing import Any, Callable, Iterable, List, Optional

from ._stream import _WOULD_BLOCK, PeerClosed, Stream

__all__ = ["CallerReadStream"]

log = logging.getLogger("protocompat.netutil")


class CallerReadStream(Stream):
    """A :class:`~protocompat.netutil.Stream` that a thread waiting for an answer may read.

    A thread that sends a request and waits for the answer calls
    :meth:`read_here`: it takes reading over from the loop (whose selector
    then stops watching the socket), reads and decodes in its own thread,
    and gives reading back. The answer reaches the waiting thread with no
    wake-up of the loop and no hand-over between threads, as in a blocking
    client. Everything else is as :class:`~protocompat.netutil.Stream`,
    which also gives the parameters; each stream costs one more lock.

    Order is kept: a message the caller does not take, and every message
    after it, go to ``on_message`` on the loop thread in the order received,
    before the loop reads again. Closing, the peer's end and bad input are
    dealt with on the loop thread as usual; a close while a caller reads
    wakes it, and the socket is closed once it has stopped.

    Reading here needs a loop whose selector takes interest changes from any
    thread (:attr:`SelectorLoop.interest_from_any_thread
    <protocompat.netutil.SelectorLoop.interest_from_any_thread>`: epoll,
    kqueue); elsewhere :meth:`read_here` declines and the loop reads.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Whoever reads and delivers holds it: the loop (in _read) or a caller.
        self._read_lock = threading.Lock()
        self._direct = False  # a caller reads (changed under _lock)
        self._socket_left = False  # closed while a caller read: it closes the socket
        self._poller: Any = None  # the caller's poll object, made on first use

    def read_here(self, take: Callable[[Any], bool], done: Callable[[], bool],
                  timeout: Optional[float], first: Optional[Callable[[], Any]] = None) -> bool:
        """Read and decode in the calling thread until ``done()`` or ``timeout``.

        Each message decoded goes to ``take(message)`` in this thread. Once
        ``take`` returns False, that message and every later one go to
        ``on_message`` on the loop thread, in order, and reading goes back to
        the loop; so it does when this call returns.

        Parameters
        ----------
        take : callable
            ``take(message) -> bool``: True when the message was dealt with.
        done : callable
            ``done() -> bool``, asked before each wait for input.
        timeout : float or None
            Most seconds to read here (None: no limit).
        first : callable, optional
            Called once reading is taken over and before any wait: send the
            request there, so that the loop cannot read the answer first. If
            it raises, reading goes back to the loop and the error propagates.

        Returns
        -------
        read : bool
            False, at once and without calling ``first``, when reading here
            is not possible: on the loop thread, while another thread reads
            here, on TLS, before :meth:`start`, once paused, closing or
            closed, or when the loop's selector takes interest changes on its
            own thread only. The loop reads as usual then.
        """
        lock = self._read_lock
        loop = self._loop
        if (self._tls or not getattr(loop, "interest_from_any_thread", False)
                or loop.in_loop_thread() or not lock.acquire(False)):
            return False
        with self._lock:
            refused = (not self._started or self.closed or self._closing or self._paused
                       or self._eof or bool(self._held))
            if not refused:
                self._direct = True
                error = self._apply_events(self._wanted_events())  # the loop stops watching
                if error is not None:
                    self._direct = refused = True
        if refused:
            self._give_back()
            return False
        handback: List[Any] = []
        end: Optional[BaseException] = None
        try:
            if first is not None:
                first()
            end = self._read_in_caller(take, done, timeout, handback)
        finally:
            if handback or (end is not None and not self.closed):
                loop.call_soon(self._caller_done, handback, end)
            else:
                self._give_back()
        return True

    def _read_in_caller(self, take: Callable[[Any], bool], done: Callable[[], bool],
                        timeout: Optional[float], handback: List[Any]) -> Optional[BaseException]:
        """Read with ``_read_lock`` held; fill ``handback`` with what is not taken.

        Returns what ended the input (:class:`PeerClosed`, an :class:`OSError`,
        :class:`_BadInput`), or None.
        """
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            poller.register(self.sock, select.POLLIN)
        sock, decoder, size = self.sock, self._decoder, self._recv_size
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done() and not self._paused and not self.closed:
            wait = None
            if deadline is not None:
                wait = (deadline - time.monotonic()) * 1000.0
                if wait <= 0:
                    break
            if not poller.poll(wait):
                continue
            try:
                data = sock.recv(size)
            except _WOULD_BLOCK:
                continue
            except OSError as exc:
                return exc
            if not data:
                return PeerClosed("connection closed by %s" % self.name)
            messages: Iterable[Any] = (data,)
            if decoder is not None:
                try:
                    messages = decoder.feed(data)
                except Exception as exc:
                    return _BadInput(exc)
            for message in messages:
                if not handback:
                    try:
                        if take(message):
                            continue
                    except Exception:
                        log.exception("%s: a reading caller failed to take %r", self.name,
                                      message)
                        continue
                handback.append(message)
            if handback:
                break
        return None

    def _caller_done(self, handback: List[Any], end: Optional[BaseException]) -> None:
        """On the loop: deliver what the caller left, deal with its end, take reading back."""
        try:
            self._deliver(handback)
            if self.closed or end is None:
                pass
            elif isinstance(end, PeerClosed):
                self._peer_eof()
            elif isinstance(end, _BadInput):
                log.warning("%s: bad input, closing: %s", self.name, end.error)
                self._close(end.error)
            else:
                log.debug("%s: receive failed: %s", self.name, end)
                self._close(end)
        finally:
            self._give_back()

    def _give_back(self) -> None:
        """Reading back to the loop (and ``_read_lock`` released)."""
        error: Optional[BaseException] = None
        with self._lock:
            self._direct = False
            close_socket, self._socket_left = self._socket_left, False
            if self._started and not self.closed:
                error = self._apply_events(self._wanted_events())
        self._read_lock.release()
        if close_socket:
            Stream._close_socket(self)
        if error is not None:
            self._loop.call_soon(self._close, error)

    # -- the loop's side ----------------------------------------------------------
    def _set_events(self, events: Optional[int]) -> None:
        with self._lock:  # a reading caller changes them too
            error = self._apply_events(self._wanted_events() if events is None else events)
        if error is not None:
            self._close(error)

    def _read(self) -> None:
        if self._read_lock.acquire(False):  # else a caller reads (a readiness seen before)
            try:
                super()._read()
            finally:
                self._read_lock.release()

    def _close_socket(self) -> None:
        with self._lock:
            reading = self._socket_left = self._direct
        if reading:  # wake the caller; it closes the socket when it stops
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            super()._close_socket()


class _BadInput(Exception):
    """The decoder refused input a caller read; ``error`` is the decoder's exception."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error
