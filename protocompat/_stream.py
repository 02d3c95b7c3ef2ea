"""One non-blocking connection on a loop: bytes in through a decoder, bytes out through a queue."""

import collections
import itertools
import logging
import socket
import ssl
import threading
from typing import Any, Callable, Deque, Iterable, List, Optional, Union

from ._loop import EVENT_READ, EVENT_WRITE

__all__ = ["Stream", "PeerClosed", "OutputOverflow", "Producer", "DEFAULT_MAX_OUTPUT",
           "DEFAULT_RECV_SIZE"]

log = logging.getLogger("protocompat.netutil")

#: Default bound of queued output per stream, in bytes.
DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
#: Default bytes asked of one ``recv`` (small enough to stay off the allocator's mmap path).
DEFAULT_RECV_SIZE = 64 * 1024
#: Most bytes of queued output joined into one ``send``.
SEND_CHUNK = 256 * 1024
#: Bytes asked of a producer at a time.
PRODUCER_CHUNK = 256 * 1024

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Stands for an output queue or held-message queue not made yet: most streams
# never need one, and a deque costs some 600 bytes (a server may hold thousands
# of idle streams). Never appended to: each append site makes a real deque.
_NONE_YET: Deque[Any] = collections.deque(maxlen=0)


class PeerClosed(ConnectionError):
    """The peer closed the connection."""


class OutputOverflow(Exception):
    """More output was queued for a peer than the stream's ``max_output`` allows."""


class Producer:
    """What :meth:`Stream.write` accepts besides bytes: output made on demand.

    The stream calls :meth:`read` on the loop thread when the producer reaches
    the head of the queue, until it returns an empty result, then :meth:`close`.
    :meth:`close` is also called when the stream closes first.
    """

    def read(self, size: int) -> bytes:  # pragma: no cover - interface
        """Return up to ``size`` more bytes; ``b""`` when done."""
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        """Release what the producer holds (an open file, say)."""


Item = Union[bytes, bytearray, memoryview, Producer]


class Stream:
    """A connected, non-blocking socket driven by a loop.

    Reading and closing happen on the loop thread: bytes received go to
    ``decoder.feed(data)``, and each message it returns to
    ``on_message(message)``. :meth:`write` is safe from any thread: when
    nothing is queued it sends straight from the caller's thread; what the
    kernel does not take is queued, and the loop sends it when the socket is
    writable. Output is bounded by ``max_output``.

    What the owner uses: :meth:`start`, :meth:`write`, :meth:`flush`,
    :meth:`close`, :meth:`close_after_flush`, :meth:`pause_reading`,
    :meth:`resume_reading`, :meth:`unsent`, and the attributes below.

    Parameters
    ----------
    loop : SelectorLoop
        The loop that owns the socket: any object with ``register``,
        ``modify``, ``unregister``, ``call_soon`` and ``in_loop_thread`` as
        :class:`~protocompat.netutil.SelectorLoop` has them.
    sock : socket.socket
        A connected socket; it is made non-blocking. An :class:`ssl.SSLSocket`
        made with ``do_handshake_on_connect=False`` does its handshake on the loop.
    decoder : object, optional
        Has ``feed(data: bytes) -> iterable of messages``, and raises on bad
        input (the stream is then closed with that exception). Without a
        decoder each chunk of bytes received is a message.
    on_message : callable, optional
        ``on_message(message)`` on the loop thread.
    on_close : callable, optional
        ``on_close(error)``, once, on the loop thread (or on the thread that
        closes the stream after the loop has ended). ``error`` is None for a
        close asked by the owner, :class:`PeerClosed` when the peer closed,
        :class:`OutputOverflow`, the decoder's exception, or an :class:`OSError`.
    on_eof : callable, optional
        ``on_eof()`` when the peer stops sending. Reading stops and the
        stream stays open, so the owner can still answer, then close.
        Without it the stream closes with :class:`PeerClosed`.
    max_output : int
        Most bytes queued for sending. A write into an empty queue is always
        taken; one that would pass the bound is refused and ``on_overflow``
        runs.
    on_overflow : callable, optional
        ``on_overflow(stream)`` when a write is refused for the bound, on the
        writer's thread. By default the stream logs a warning and closes with
        :class:`OutputOverflow`.
    recv_size : int
        Bytes asked of each ``recv``.
    name : str, optional
        Used in log records; defaults to the peer address.

    Attributes
    ----------
    sock : socket.socket
    peer : tuple or None
        The peer address, read once at creation.
    closed : bool
        True once closed.
    close_error : BaseException or None
        What closed the stream (see ``on_close``).
    """

    def __init__(self, loop: Any, sock: socket.socket, decoder: Any = None,
                 on_message: Optional[Callable[[Any], Any]] = None,
                 on_close: Optional[Callable[[Optional[BaseException]], Any]] = None,
                 on_eof: Optional[Callable[[], Any]] = None,
                 max_output: int = DEFAULT_MAX_OUTPUT,
                 on_overflow: Optional[Callable[["Stream"], Any]] = None,
                 recv_size: int = DEFAULT_RECV_SIZE, name: Optional[str] = None) -> None:
        self._loop = loop
        self.sock = sock
        sock.setblocking(False)
        try:
            self.peer = sock.getpeername()
        except OSError:
            self.peer = None
        self.name = name if name is not None else _address_text(self.peer)
        self._decoder = decoder
        self._on_message = on_message
        self._on_close = on_close
        self._on_eof = on_eof
        self._max_output = max_output
        self._on_overflow = on_overflow
        self._recv_size = recv_size
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._handshaking = self._tls and not _handshake_done(sock)
        # Output: items queued (bytes or producers), the bytes of the head item
        # already sent, and the queued byte count. All under _lock.
        self._lock = threading.Lock()
        self._out: Deque[Item] = _NONE_YET
        self._head_sent = 0
        self._out_size = 0
        self._chunk: Optional[memoryview] = None  # the part of a producer's output not yet sent
        # True while the loop will send queued output by itself (a flush is scheduled or it
        # watches for write readiness); writers then need not wake it. Under _lock.
        self._loop_flushes = False
        self._closing = False  # no more writes; close when the queue is empty
        self.closed = False
        self.close_error: Optional[BaseException] = None
        self._unsent: List[Item] = []
        # Loop-thread state.
        self._events = 0
        self._started = False
        self._paused = False
        self._eof = False
        self._held: Deque[Any] = _NONE_YET  # messages decoded while paused

    # -- set-up -------------------------------------------------------------
    def start(self) -> None:
        """Start reading; safe from any thread."""
        self._on_loop(self._start)

    def _start(self) -> None:
        if self._started or self.closed:
            return
        self._started = True
        if self._handshaking:
            self._set_events(EVENT_READ)
            self._handshake()
        else:
            self._update_events()

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop.in_loop_thread():
            fn(*args)
        else:
            self._loop.call_soon(fn, *args)

    # -- events (loop thread) -----------------------------------------------
    def _wanted_events(self) -> int:
        events = 0
        if not self._paused and not self._eof and not self._closing:
            events = EVENT_READ
        if self._out or self._chunk is not None:
            events |= EVENT_WRITE
        return events

    def _update_events(self) -> None:
        if self._started and not self.closed:
            self._set_events(self._wanted_events())

    def _set_events(self, events: int) -> None:
        if events == self._events:
            return
        loop = self._loop
        try:
            if not events:
                loop.unregister(self.sock)
            elif not self._events:
                loop.register(self.sock, events, self._on_ready)
            else:
                loop.modify(self.sock, events, self._on_ready)
        except (KeyError, ValueError, OSError) as exc:
            self._close(exc)
            return
        self._events = events

    def _on_ready(self, _sock: Any, mask: int) -> None:
        if self._handshaking:
            self._handshake()
            return
        if mask & EVENT_WRITE:
            self._flush()
        if mask & EVENT_READ and not self.closed and not self._paused:
            if self._tls:
                self._read()
                return
            # _read without TLS, written out: every message received passes here.
            try:
                data = self.sock.recv(self._recv_size)
            except _WOULD_BLOCK:
                return
            except OSError as exc:
                log.debug("%s: receive failed: %s", self.name, exc)
                self._close(exc)
                return
            if data:
                self._receive(data)
            else:
                self._peer_eof()

    def _handshake(self) -> None:
        try:
            self.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self._set_events(EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._set_events(EVENT_WRITE)
            return
        except (OSError, ValueError) as exc:
            log.info("%s: TLS handshake failed: %s", self.name, exc)
            self._close(exc)
            return
        self._handshaking = False
        self._update_events()

    # -- input (loop thread) ------------------------------------------------
    def _read(self) -> None:
        sock = self.sock
        try:
            data = sock.recv(self._recv_size)
            if self._tls and data:
                while sock.pending():  # type: ignore[attr-defined]
                    data += sock.recv(self._recv_size)
        except _WOULD_BLOCK:
            return
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        except OSError as exc:
            log.debug("%s: receive failed: %s", self.name, exc)
            self._close(exc)
            return
        if not data:
            self._peer_eof()
            return
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        decoder = self._decoder
        if decoder is None:
            messages: Iterable[Any] = (data,)
        else:
            try:
                messages = decoder.feed(data)
            except Exception as exc:
                log.warning("%s: bad input, closing: %s", self.name, exc)
                self._close(exc)
                return
        on_message = self._on_message
        if on_message is None:
            return
        for message in messages:
            if self._paused:
                if self._held is _NONE_YET:
                    self._held = collections.deque()
                self._held.append(message)
                continue
            on_message(message)
            if self.closed:
                return

    def _peer_eof(self) -> None:
        if self._on_eof is None:
            self._close(PeerClosed("connection closed by %s" % self.name))
            return
        self._eof = True
        self._update_events()
        self._on_eof()

    def pause_reading(self) -> None:
        """Stop reading and delivering messages until :meth:`resume_reading`; any thread."""
        self._on_loop(self._pause)

    def _pause(self) -> None:
        if not self._paused:
            self._paused = True
            self._update_events()

    def resume_reading(self) -> None:
        """Deliver held messages and read again; safe from any thread."""
        self._on_loop(self._resume)

    def _resume(self) -> None:
        if not self._paused or self.closed:
            return
        self._paused = False
        held = self._held
        while held and not self._paused and not self.closed:
            self._on_message(held.popleft())  # type: ignore[misc]
        self._update_events()

    @property
    def paused(self) -> bool:
        """Whether reading is paused."""
        return self._paused

    # -- output (any thread) ------------------------------------------------
    def write(self, data: Item, defer: bool = False) -> bool:
        """Queue ``data`` for sending; safe from any thread.

        Parameters
        ----------
        data : bytes-like or Producer
            What to send. Bytes are sent at once when nothing is queued
            (except on TLS, whose socket only the loop thread touches).
        defer : bool
            Leave the sending to the loop thread even if the socket could
            take the data now: a burst of small writes then leaves in a few
            large sends.

        Returns
        -------
        accepted : bool
            False when the stream is closed or closing, or the write was
            refused for the ``max_output`` bound.
        """
        if isinstance(data, Producer):
            size = 0
        else:
            size = len(data)
            if not size:
                return not self._closing
        error: Optional[BaseException] = None
        with self._lock:
            if self._closing:
                return False
            if not self._out and self._chunk is None:
                if size and not defer and not self._tls:
                    try:
                        sent = self.sock.send(data)  # type: ignore[arg-type]
                    except _WOULD_BLOCK:
                        sent = 0
                    except OSError as exc:
                        self._closing = True
                        error = exc
                        sent = 0
                    if error is None:
                        if sent == size:
                            return True
                        self._head_sent = sent
                        size -= sent
            elif self._out_size + size > self._max_output:
                size = -1  # refused
            if error is None and size >= 0:
                if self._out is _NONE_YET:
                    self._out = collections.deque()
                self._out.append(data)
                self._out_size += size
                schedule = not self._loop_flushes
                self._loop_flushes = True
        if error is not None:
            self._loop.call_soon(self._close, error)
            return False
        if size < 0:
            self._overflow()
            return False
        if schedule:
            self._loop.call_soon(self._scheduled_flush)
        return True

    def _overflow(self) -> None:
        handler = self._on_overflow
        if handler is not None:
            handler(self)
            return
        log.warning("%s: more than %d bytes of output queued; closing (the peer does not read)",
                    self.name, self._max_output)
        self.close(OutputOverflow("output queue to %s over %d bytes" % (self.name, self._max_output)))

    def _scheduled_flush(self) -> None:
        # Before start or during a handshake, _update_events watches for writes later.
        if self._started and not self._handshaking:
            self._flush()

    def flush(self) -> None:
        """Send what the kernel takes now, without waiting (loop thread)."""
        if self._started and not self._handshaking and not self.closed:
            self._flush()

    def _flush(self) -> None:
        error: Optional[BaseException] = None
        with self._lock:
            if self.closed:
                return
            try:
                self._send_queued()
            except _WOULD_BLOCK:
                pass
            except OSError as exc:
                error = exc
            done = not self._out and self._chunk is None
            if done:
                self._loop_flushes = False
        if error is not None:
            log.debug("%s: send failed: %s", self.name, error)
            self._close(error)
        elif done and self._closing:
            self._close(self.close_error)
        else:
            self._update_events()

    def _send_queued(self) -> None:
        """Send queued output until the kernel refuses (_lock held)."""
        out = self._out
        send = self.sock.send
        while True:
            chunk = self._chunk
            if chunk is not None:
                sent = send(chunk)
                if sent < len(chunk):
                    self._chunk = chunk[sent:]
                    return
                self._chunk = None
                continue
            if not out:
                return
            head = out[0]
            if isinstance(head, Producer):
                data = head.read(PRODUCER_CHUNK)
                if not data:
                    out.popleft()
                    self._head_sent = 0
                    head.close()
                else:
                    self._head_sent = 1  # the producer has started
                    self._chunk = memoryview(data)
                continue
            start = self._head_sent
            piece: Any
            if len(out) > 1 and len(head) - start < SEND_CHUNK:
                piece, count = self._join_head(start)
            else:
                piece, count = (memoryview(head)[start:] if start else head), 1
            sent = send(piece)
            self._out_size -= sent
            for _ in range(count):
                left = len(out[0]) - self._head_sent  # type: ignore[arg-type]
                if sent < left:
                    self._head_sent += sent
                    return
                sent -= left
                out.popleft()
                self._head_sent = 0

    def _join_head(self, start: int) -> Any:
        """The head bytes items joined, up to SEND_CHUNK, and how many were joined."""
        out: Any = self._out
        parts = [memoryview(out[0])[start:] if start else out[0]]
        size = len(parts[0])
        for item in itertools.islice(out, 1, None):
            if isinstance(item, Producer) or size + len(item) > SEND_CHUNK:
                break
            parts.append(item)
            size += len(item)
        return b"".join(parts), len(parts)

    @property
    def output_size(self) -> int:
        """Bytes queued for sending and not yet taken by the kernel (producers not counted)."""
        return self._out_size

    @property
    def closing(self) -> bool:
        """True once the stream takes no more writes (closing or closed)."""
        return self._closing

    # -- closing --------------------------------------------------------------
    def close(self, error: Optional[BaseException] = None) -> None:
        """Close now, dropping queued output; safe from any thread.

        Further writes are refused at once; the socket is closed on the loop
        thread and ``on_close(error)`` is called there.
        """
        with self._lock:
            self._closing = True
        self._on_loop(self._close, error)

    def close_after_flush(self) -> None:
        """Refuse further writes; close once queued output is sent; any thread."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._on_loop(self._flush_then_close)

    def _flush_then_close(self) -> None:
        if self.closed:
            return
        if not self._started or self._handshaking:
            self._close(None)
            return
        self._flush()

    def _close(self, error: Optional[BaseException]) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._closing = True
            self.close_error = error
            unsent = list(self._out)
            self._out.clear()
            self._out_size = 0
            self._chunk = None
        if self._events:
            self._loop.unregister(self.sock)
            self._events = 0
        try:
            self.sock.close()
        except OSError:
            pass
        self._unsent = unsent
        for item in unsent:
            if isinstance(item, Producer):
                try:
                    item.close()
                except Exception:
                    log.exception("%s: closing a producer failed", self.name)
        self._held.clear()
        if self._on_close is not None:
            try:
                self._on_close(error)
            except Exception:
                log.exception("%s: close callback failed", self.name)

    def unsent(self) -> List[Item]:
        """After close: the items not completely sent, in order (a cut one whole)."""
        return list(self._unsent)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return "<Stream %s %s, %d bytes queued>" % (self.name, state, self._out_size)


def _handshake_done(sock: Any) -> bool:
    try:
        return sock.version() is not None
    except (AttributeError, ValueError, OSError):
        return False


def _address_text(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return "%s:%s" % (address[0], address[1])
    return str(address) if address else "<unconnected>"
