"""Line-oriented, non-blocking socket streams driven by a selector loop.

A :class:`LineStream` owns one connected socket registered with a
:class:`protocompat.netutil.SelectorLoop`. Reading happens on the loop thread: a
:class:`~katcp_compat.core.LineDecoder` splits what arrives into lines (ended
by LF or CR), each handed to ``on_line(line)``. Writing may happen
from any thread: :meth:`LineStream.write` tries to send at once and leaves any
remainder to the loop (or, with ``defer=True``, leaves it all to the loop, which
joins queued pieces into large sends). Both directions are bounded: a line longer than
``max_line`` or an output backlog over ``max_write`` closes the stream.
"""

import logging
import selectors
import socket
import threading
import time
from typing import Any, Callable, List, Optional

from protocompat.netutil import SelectorLoop

from ._codec import MAX_MSG_SIZE, LineDecoder
from ._errors import KatcpLineTooLong

log = logging.getLogger("katcp_compat.stream")

#: Largest output backlog kept for a peer before it is dropped as too slow.
MAX_WRITE_BUFFER_SIZE = 2 * MAX_MSG_SIZE
#: Bytes asked of the kernel per ``recv``.
RECV_SIZE = 256 * 1024
#: Most bytes of queued output joined into one ``send``.
SEND_CHUNK = 256 * 1024

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class LineStream:
    """A socket read as lines and written as bytes.

    Parameters
    ----------
    loop : SelectorLoop
        The loop that owns the socket.
    sock : socket.socket
        A connected socket; it is made non-blocking.
    on_line : callable
        ``on_line(line: bytes)`` for each complete line, on the loop thread.
    on_close : callable
        ``on_close(reason: str)``, called once on the loop thread when the
        stream closes for any reason.
    max_line, max_write : int
        Input line and output backlog limits in bytes.
    """

    def __init__(self, loop: SelectorLoop, sock: socket.socket,
                 on_line: Callable[[bytes], None], on_close: Callable[[str], None],
                 max_line: int = MAX_MSG_SIZE, max_write: int = MAX_WRITE_BUFFER_SIZE) -> None:
        self._loop = loop
        self.sock = sock
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._on_line = on_line
        self._on_close = on_close
        self._max_line = max_line
        self._max_write = max_write
        self._decoder = LineDecoder(max_line)
        self._out: List[bytes] = []
        self._out_size = 0
        self._lock = threading.Lock()
        self._want_write = False  # the selector watches EVENT_WRITE
        self._writing = False  # queued output will be flushed by the loop (under _lock)
        self._paused = False  # reading suspended (back-pressure)
        self._started = False  # register() was called
        self._registered = False  # currently in the selector
        self.closed = False
        self._closing = False  # no more writes accepted; flush then close
        self.close_reason: Optional[str] = None

    # -- set-up (loop thread) ---------------------------------------------
    def register(self) -> None:
        """Start watching the socket; call on the loop thread."""
        self._started = True
        self._apply_events()

    def _apply_events(self) -> None:
        """Make the selector watch what is wanted now (loop thread)."""
        if self.closed or not self._started:
            return
        events = (0 if self._paused else _READ) | (_WRITE if self._want_write else 0)
        try:
            if not events:
                if self._registered:
                    self._loop.unregister(self.sock)
                    self._registered = False
            elif self._registered:
                self._loop.modify(self.sock, events, self._on_event)
            else:
                self._loop.register(self.sock, events, self._on_event)
                self._registered = True
        except (KeyError, ValueError, OSError):
            pass

    @property
    def paused(self) -> bool:
        """Whether reading is suspended."""
        return self._paused

    def pause_reading(self) -> None:
        """Stop reading from the peer until :meth:`resume_reading` (loop thread)."""
        if not self._paused:
            self._paused = True
            self._apply_events()

    def resume_reading(self) -> None:
        """Read from the peer again (loop thread)."""
        if self._paused:
            self._paused = False
            self._apply_events()

    # -- loop-thread I/O ----------------------------------------------------
    def _on_event(self, sock: socket.socket, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush_from_loop()
        if mask & selectors.EVENT_READ and not self.closed and not self._paused:
            self._read()

    def _read(self) -> None:
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close("connection error: %s" % exc)
            return
        if not data:
            self.close("connection closed by peer")
            return
        try:
            lines = self._decoder.feed(data)
        except KatcpLineTooLong as exc:
            self._deliver(exc.decoded)
            log.warning("line longer than %d bytes from %s; closing", self._max_line,
                        self.peer_text())
            self.close("message too long (over %d bytes)" % self._max_line)
            return
        self._deliver(lines)

    def _deliver(self, lines: List[bytes]) -> None:
        on_line = self._on_line
        for line in lines:
            if self.closed:
                return
            on_line(line)

    def _flush_from_loop(self) -> None:
        """Send queued output (loop thread): on EVENT_WRITE or when scheduled."""
        with self._lock:
            if self.closed:
                return
            ok = self._send_pending_locked()
            done = not self._out
            if done:
                self._writing = False  # decided under the lock: no lost wake-up
        if not ok:
            self.close("connection error while sending")
            return
        self._set_want_write(not done)
        if done and self._closing:
            self._do_close(self.close_reason or "closed")

    def _send_pending_locked(self) -> bool:
        """Send queued output, joined into large chunks; False on a socket error."""
        while self._out:
            if len(self._out) > 1:
                self._join_head_locked()
            chunk = self._out[0]
            try:
                sent = self.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            self._out_size -= sent
            if sent < len(chunk):
                self._out[0] = chunk[sent:]
                return True
            self._out.pop(0)
        return True

    def _join_head_locked(self) -> None:
        """Merge queued pieces at the head into one chunk of at most SEND_CHUNK bytes."""
        size, count = 0, 0
        for piece in self._out:
            if count and size + len(piece) > SEND_CHUNK:
                break
            size += len(piece)
            count += 1
        if count > 1:
            self._out[:count] = [b"".join(self._out[:count])]

    def _set_want_write(self, want: bool) -> None:
        if want == self._want_write or self.closed:
            return
        self._want_write = want
        self._apply_events()

    # -- any thread -----------------------------------------------------------
    def write(self, data: bytes, defer: bool = False) -> bool:
        """Queue ``data`` for sending; safe from any thread.

        Parameters
        ----------
        data : bytes
            What to send.
        defer : bool
            Leave the sending to the loop thread even if the socket could take
            the data now. Many small writes in a burst then go out in a few
            large sends.

        Returns
        -------
        accepted : bool
            False if the stream is closed or closing, or if the backlog limit
            was exceeded (the stream is then being closed).
        """
        with self._lock:
            if self.closed or self._closing:
                return False
            if not self._out and not defer:
                try:
                    sent = self.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    self._schedule_close("connection error while sending")
                    return False
                if sent == len(data):
                    return True
                data = data[sent:]
            self._out.append(data)
            self._out_size += len(data)
            too_slow = self._out_size > self._max_write
            schedule = not self._writing
            self._writing = True
        if too_slow:
            log.warning("output backlog to %s over %d bytes; dropping the slow peer",
                        self.peer_text(), self._max_write)
            self._discard_output()
            self._schedule_close("client too slow (output backlog over %d bytes)" % self._max_write)
            return False
        if schedule:
            self._run_on_loop(self._flush_from_loop)
        return True

    def _discard_output(self) -> None:
        with self._lock:
            self._out = []
            self._out_size = 0

    def _run_on_loop(self, fn: Callable, *args) -> None:
        if self._loop.in_loop_thread():
            fn(*args)
        else:
            self._loop.call_soon(fn, *args)

    def _schedule_close(self, reason: str) -> None:
        self._run_on_loop(self.close, reason)

    def close_after_flush(self, reason: str) -> None:
        """Refuse further writes and close once queued output is sent."""
        with self._lock:
            if self._closing or self.closed:
                return
            self._closing = True
            self.close_reason = reason
        self._run_on_loop(self._close_when_flushed)

    def _close_when_flushed(self) -> None:
        with self._lock:
            if self.closed:
                return
            ok = self._send_pending_locked()
            done = not self._out
            self._writing = not done
        if done or not ok:
            self._do_close(self.close_reason or "closed")
        else:
            self._set_want_write(True)

    def flush_now(self) -> None:
        """Send what the kernel takes right now, without waiting (loop thread)."""
        with self._lock:
            if not self.closed:
                self._send_pending_locked()

    def close(self, reason: str = "closed") -> None:
        """Close the stream now; safe from any thread."""
        if not self._loop.in_loop_thread() and self._loop.is_running():
            self._loop.call_soon(self._do_close, reason)
            return
        self._do_close(reason)

    def _do_close(self, reason: str) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.close_reason = self.close_reason or reason
            self._out = []
            self._out_size = 0
        if self._registered:
            self._loop.unregister(self.sock)
            self._registered = False
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self._on_close(reason)
        except Exception:
            log.exception("close callback failed")

    @property
    def backlog(self) -> int:
        """Bytes queued for sending and not yet taken by the kernel."""
        return self._out_size

    def peer_text(self) -> str:
        """The peer address as ``host:port`` (or ``<unknown>``)."""
        try:
            host, port = self.sock.getpeername()[:2]
            return "%s:%s" % (host, port)
        except OSError:
            return "<unknown>"


class IOLoopStub:
    """Stands in for katcp 0.9's tornado ioloop: ``add_callback`` runs the
    function on the owner's I/O thread."""

    def __init__(self, loop: SelectorLoop) -> None:
        self._loop = loop

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback(*args, **kwargs)`` soon on the I/O thread."""
        self._loop.call_soon(lambda: callback(*args, **kwargs))

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        """Run ``callback(*args)`` on the I/O thread after ``delay`` seconds."""
        return self._loop.call_later(delay, callback, *args)

    def time(self) -> float:
        """The loop's clock."""
        return time.monotonic()
