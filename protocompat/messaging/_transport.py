"""The bytes of one messaging connection: socket to decoder, send queue to socket.

:class:`Transport` owns the socket's registration with the application's
selector, feeds received bytes to the decoder and hands each message to its
owner, and sends queued frames (bytes, or :class:`~._files.FileFrame` objects
streamed from disk). It knows nothing of actions, requests or responses.

The send queue is bounded: once more than the owner's limit of bytes wait in
it, a new frame is dropped and the owner's ``on_overflow`` policy runs (the
connection closes itself).
"""

import collections
import logging
import selectors
import socket
import threading
from typing import Any, Callable, List, Optional, Tuple, Union

from ._codec import FrameError, MessageManager
from ._files import FileFrame
from ._notifier import NotifierSock

logger = logging.getLogger(__name__)

#: Bytes that may wait in a connection's send queue (files count only their headers).
MAX_QUEUED_OUTPUT = 16 * 1024 * 1024
# Smallest number of bytes asked of one ``recv``/``send`` call.
_MIN_IO_SIZE = 64 * 1024
# Small queued frames are joined into one ``send`` up to this size.
_COALESCE_LIMIT = 64 * 1024
# Bytes read from a file per step of a streamed file frame.
_FILE_CHUNK = 256 * 1024
# Bytes sent per write event, in I/O-size units, before other sockets get their turn.
_WRITE_ROUNDS = 4

_READ = selectors.EVENT_READ
_READ_WRITE = selectors.EVENT_READ | selectors.EVENT_WRITE
_EVENT_MASKS = {"r": selectors.EVENT_READ, "w": selectors.EVENT_WRITE, "rw": _READ_WRITE}

Frame = Union[bytes, FileFrame]


class Transport:
    """Socket, selector registration, decoder and send queue of one connection.

    Every method may be called from any thread except :meth:`process_events`,
    :meth:`read`, :meth:`write` and :meth:`close_now`, which run on the loop
    thread (or while no loop drives the connection).

    Parameters
    ----------
    on_message : callable
        ``on_message(message)`` for each received message, on the loop thread.
        A :class:`~._codec.FrameError` it raises closes the connection.
    on_overflow : callable
        ``on_overflow(queued_bytes)`` when a frame is dropped because the send
        queue holds more than the limit given to :meth:`send`.

    Attributes
    ----------
    selector, socket, addr
        As given to :meth:`connect`; None while not connected.
    buffer_size : int
        Bytes asked of each ``recv``/``send`` (at least 64 KiB are used).
    resume_queue : bool
        Keep unsent frames across a reconnection.
    send_queue : collections.deque
        Frames waiting to be sent.
    """

    def __init__(self, on_message: Callable[[MessageManager], Any],
                 on_overflow: Callable[[int], Any]) -> None:
        self._on_message = on_message
        self._on_overflow = on_overflow
        self.selector: Any = None
        self.socket: Optional[socket.socket] = None
        self.addr: Any = None
        self.buffer_size = 1024
        self.resume_queue = False
        self.decoder = MessageManager()
        self.send_queue: "collections.deque[Frame]" = collections.deque()
        self.lock = threading.RLock()  # guards the queue, the counters and the selector key
        self._close_lock = threading.Lock()
        self._should_close = False
        self._received: "collections.deque[MessageManager]" = collections.deque()
        self._out = memoryview(b"")
        self._out_pos = 0
        self._out_frames: List[Tuple[int, bytes]] = []  # (end offset in _out, frame)
        self._current_file: Optional[FileFrame] = None
        self._queued_bytes = 0  # bytes of the frames in send_queue
        self._queued_files = 0  # file frames in send_queue
        self._overflowed = False  # a frame was dropped; the owner is closing the connection
        self._writing = False  # the selector mask includes EVENT_WRITE
        self._loop_ident: Optional[int] = None
        self._generation = 0  # counts connects and closes
        self._in_events = False  # the loop thread is inside process_events

    # -- state -------------------------------------------------------------
    @property
    def queued_files(self) -> int:
        """File frames waiting in the send queue (not counting the one being sent)."""
        return self._queued_files

    def frames(self) -> List[Frame]:
        """A copy of the send queue."""
        with self.lock:
            return list(self.send_queue)

    def replace_queue(self, queue: "collections.deque[Frame]") -> None:
        """Use ``queue`` as the send queue (legacy code assigns ``_send_queue``)."""
        with self.lock:
            self.send_queue = queue
            self._queued_bytes = sum(len(frame) for frame in queue if not isinstance(frame, FileFrame))
            self._queued_files = sum(1 for frame in queue if isinstance(frame, FileFrame))

    def _pending_output(self) -> bool:
        return bool(self.send_queue) or self._current_file is not None or self._out_pos < len(self._out)

    # -- selector ------------------------------------------------------------
    def set_events(self, mode: str) -> Any:
        """Watch ``"r"``, ``"w"`` or ``"rw"`` events; return the selector key."""
        try:
            events = _EVENT_MASKS[mode]
        except KeyError:
            raise ValueError("Invalid events mask mode {}.".format(mode)) from None
        with self.lock:
            self._writing = bool(events & selectors.EVENT_WRITE)
            return self._modify(events)

    def _modify(self, events: int) -> Any:
        """Change the watched events, keeping the key's data (lock held)."""
        key = self.selector.get_key(self.socket)
        if key.events == events:
            return key
        return self.selector.modify(self.socket, events, key.data)

    def _watch_writes(self) -> bool:
        """Add write events to the watch (lock held); False if the socket is gone."""
        try:
            self._modify(_READ_WRITE)
        except (KeyError, ValueError, OSError) as error:
            logger.debug("Cannot watch %s for writing: %s", self.addr, error)
            return False
        self._writing = True
        return True

    def _notify(self) -> None:
        """Wake the loop if the caller is not the loop thread."""
        if threading.get_ident() != self._loop_ident:
            selector = self.selector
            if selector is not None:
                NotifierSock().notify_selector(selector)

    # -- lifecycle -----------------------------------------------------------
    def connect(self, selector: Any, sock: socket.socket, addr: Any, decoder: MessageManager,
                owner: Any) -> None:
        """Attach to ``sock`` (registered with ``selector`` here if it is not yet).

        Parameters
        ----------
        selector : selectors.BaseSelector
            The application's selector.
        sock : socket.socket
            A connected, non-blocking socket; a TCP one gets ``TCP_NODELAY``.
        addr : object
            Address of the peer.
        decoder : MessageManager
            The decoder of this connection's received bytes.
        owner : object
            The selector key's ``data`` if the socket is registered here.
        """
        _set_nodelay(sock)
        with self.lock:
            self.selector = selector
            self.socket = sock
            self.addr = addr
            self._generation += 1
            with self._close_lock:
                self._should_close = False
            self._overflowed = False
            self.clear()
            self._drop_received()
            self.decoder.reset()
            self.decoder = decoder
            events = _READ_WRITE if self._pending_output() else _READ
            self._writing = events == _READ_WRITE
            try:
                self._modify(events)
            except KeyError:
                selector.register(sock, events, owner)

    def clear(self) -> None:
        """Drop queued frames, unless :attr:`resume_queue`."""
        if self.resume_queue:
            return
        with self.lock:
            for frame in self.send_queue:
                if isinstance(frame, FileFrame):
                    frame.close()
            self.send_queue.clear()
            self._queued_bytes = 0
            self._queued_files = 0
            if self._current_file is not None:
                self._current_file.close()
                self._current_file = None
            self._out = memoryview(b"")
            self._out_pos = 0
            self._out_frames = []

    def _drop_received(self) -> None:
        while self._received:
            self._received.popleft().discard()

    def _requeue_unsent(self) -> None:
        """Put frames not completely sent back at the head of the queue (lock held)."""
        if self._current_file is not None:
            self._current_file.rewind()
            self.send_queue.appendleft(self._current_file)
            self._queued_files += 1
            self._current_file = None
        unsent = [frame for end, frame in self._out_frames if end > self._out_pos]
        self.send_queue.extendleft(reversed(unsent))
        self._queued_bytes += sum(len(frame) for frame in unsent)
        self._out = memoryview(b"")
        self._out_pos = 0
        self._out_frames = []

    def close(self) -> None:
        """Close the connection; safe from any thread (done by the loop's next event).

        The socket's receiving side is shut down at once, so that the loop
        gets an event for it even when the peer neither sends nor reads.
        """
        with self._close_lock:
            self._should_close = True
        with self.lock:
            if self.selector is None or self.socket is None:
                return
            try:
                self._writing = True
                self._modify(_READ_WRITE)
            except (KeyError, ValueError, OSError):
                pass
            try:
                self.socket.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        self._notify()

    def close_now(self) -> None:
        """Unregister and close the socket now (loop thread); idempotent."""
        with self.lock:
            selector, sock = self.selector, self.socket
            if sock is not None:
                self._generation += 1
            self.selector = None
            self.socket = None
            self._writing = False
            if sock is not None:
                logger.info("Closing connection to %s", self.addr)
            if selector is not None and sock is not None:
                try:
                    selector.unregister(sock)
                except (KeyError, ValueError):
                    pass
                except Exception as error:
                    logger.error("%s: Error during selector unregistering: %s", self.addr, error)
            if sock is not None:
                try:
                    sock.close()
                except OSError as error:
                    logger.error("%s: Error during socket closing: %s", self.addr, error)
            with self._close_lock:
                self._should_close = False
            self._overflowed = False
            self._requeue_unsent()
            self._drop_received()
            self.decoder.reset()
            self.clear()

    # -- events --------------------------------------------------------------
    def process_events(self, mask: int) -> None:
        """Handle the selector events ``mask`` (loop thread); see ``ConnectionManager``."""
        self._loop_ident = threading.get_ident()
        if self._should_close:  # set (under _close_lock) before close() asks for this event
            self.close_now()
            return
        self._in_events = True
        try:
            if mask & selectors.EVENT_READ:
                self.read()
        finally:
            self._in_events = False
        # Frames queued by callbacks just now go out without another select round.
        if self.socket is not None and (mask & selectors.EVENT_WRITE or self.send_queue):
            self.write()

    def read(self) -> None:
        """Receive available bytes and hand every complete message to the owner."""
        sock = self.socket
        if sock is None:
            return
        size = self.buffer_size  # at least _MIN_IO_SIZE per call (checked inline: hot path)
        if type(size) is not int or size < _MIN_IO_SIZE:
            size = max(int(size), _MIN_IO_SIZE)
        try:
            data = sock.recv(size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            logger.warning("Connection to %s lost: %s", self.addr, error)
            self.close_now()
            raise
        if not data:
            if self._should_close:  # close() shut the receiving side down
                self.close_now()
                return
            if self.decoder.partial:
                logger.warning("Connection to %s lost in the middle of a frame!", self.addr)
            else:
                logger.warning("Connection to %s lost!", self.addr)
            self.close_now()
            raise RuntimeError("Peer closed.")
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        generation = self._generation
        try:
            messages = self.decoder.feed(data)
        except ValueError as error:
            self._bad_data(error)
            raise
        received = self._received
        on_message = self._on_message
        try:
            if len(messages) == 1 and not received:  # the usual case
                on_message(messages[0])
                return
            received.extend(messages)
            # A callback may close or reconnect the connection: the rest is then dropped.
            while received and generation == self._generation:
                on_message(received.popleft())
        except FrameError as error:
            self._bad_data(error)
            raise

    def _bad_data(self, error: Exception) -> None:
        logger.error("Bad data from %s, closing the connection: %s", self.addr, error)
        self.close_now()

    def write(self) -> None:
        """Send queued frames; go back to read-only events when all is sent."""
        sock = self.socket
        if sock is None:
            return
        size = self.buffer_size
        if type(size) is not int or size < _MIN_IO_SIZE:
            size = max(int(size), _MIN_IO_SIZE)
        budget = size * _WRITE_ROUNDS
        try:
            while budget > 0:
                out, pos = self._out, self._out_pos
                if pos >= len(out):
                    try:
                        if not self._fill_out(size):
                            return
                    except FrameError as error:
                        logger.error("Cannot send to %s, closing the connection: %s", self.addr, error)
                        self.close_now()
                        raise
                    out, pos = self._out, self._out_pos
                wanted = out[pos:pos + size]
                try:
                    sent = sock.send(wanted)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as error:
                    logger.warning("Sending to %s failed: %s", self.addr, error)
                    self.close_now()
                    raise
                pos += sent
                self._out_pos = pos
                budget -= sent
                if sent < len(wanted):
                    return  # the socket buffer is full
                if pos >= len(out) and not self._writing and not self.send_queue \
                        and self._current_file is None:
                    return  # all sent, and no write watch to drop
        finally:
            # Checked again under the lock; a frame queued meanwhile by another
            # thread finds no write watch and sets one itself.
            if self.socket is not None and not self._writing and (
                    self.send_queue or self._current_file is not None
                    or self._out_pos < len(self._out)):
                with self.lock:
                    if not self._writing and self.socket is not None and self._pending_output():
                        self._watch_writes()

    def _fill_out(self, size: int) -> bool:
        """Load the next bytes to send; False (and read-only events) when there are none."""
        while True:
            with self.lock:
                current: Any = self._current_file
                if current is None:
                    queue = self.send_queue
                    if not queue:
                        self._out = memoryview(b"")
                        self._out_pos = 0
                        self._out_frames = []
                        # A pending close() keeps write events: they run close_now().
                        if self._writing and self.socket is not None and not self._should_close:
                            self._writing = False
                            try:
                                self._modify(_READ)
                            except (KeyError, ValueError, OSError) as error:
                                logger.debug("Cannot stop watching %s for writing: %s", self.addr, error)
                        return False
                    if len(queue) == 1 and not isinstance(queue[0], FileFrame):
                        frame: Any = queue.popleft()  # the usual case: one frame
                        self._queued_bytes -= len(frame)
                        self._out_frames = [(len(frame), frame)]
                        self._out = memoryview(frame)
                        self._out_pos = 0
                        return True
                    if not isinstance(queue[0], FileFrame):
                        self._take_frames(queue)
                        return True
                    current = queue.popleft()
                    self._current_file = current
                    self._queued_files -= 1
                    opening = True
                else:
                    opening = False
            if opening and not self._open_file(current):
                continue
            chunk = current.next_chunk(max(size, _FILE_CHUNK))
            with self.lock:
                self._out_frames = []
                self._out_pos = 0
                if chunk is not None:
                    self._out = memoryview(chunk)
                    return True
                current.close()
                if self._current_file is current:
                    self._current_file = None
                self._out = memoryview(b"")

    def _take_frames(self, queue: "collections.deque[Any]") -> None:
        """Move the next bytes frames (joined up to a limit) to the output (lock held)."""
        frames = []
        total = 0
        while queue and total < _COALESCE_LIMIT and not isinstance(queue[0], FileFrame):
            frame = queue.popleft()
            total += len(frame)
            frames.append((total, frame))
        self._queued_bytes -= total
        self._out_frames = frames
        self._out = memoryview(frames[0][1] if len(frames) == 1
                               else b"".join(frame for _, frame in frames))
        self._out_pos = 0

    def _open_file(self, frame: FileFrame) -> bool:
        """Open the file of the frame about to be sent; log and drop the frame if it cannot be."""
        try:
            frame.open()
        except OSError as error:
            logger.warning("File {} can not be opened due error: {}".format(frame.name, error))
            with self.lock:
                if self._current_file is frame:
                    self._current_file = None
            return False
        return True

    def send(self, frame: Frame, max_output: Optional[int] = MAX_QUEUED_OUTPUT) -> None:
        """Queue one frame for sending; safe from any thread.

        Parameters
        ----------
        frame : bytes or FileFrame
            The frame.
        max_output : int or None
            Bytes the send queue may hold (a file frame counts its header); a
            frame that would take it past this is dropped and ``on_overflow``
            runs. A single larger frame is still accepted into an empty queue.
            None for no limit.
        """
        is_file = isinstance(frame, FileFrame)
        size = len(frame.header) if is_file else len(frame)  # type: ignore[union-attr]
        with self.lock:
            queued = self._queued_bytes
            if max_output is not None and queued and queued + size > max_output or self._overflowed:
                if self._overflowed:
                    return  # the owner is closing the connection
                self._overflowed = True
                overflow = True
            else:
                overflow = False
                self.send_queue.append(frame)
                if is_file:
                    self._queued_files += 1
                else:
                    self._queued_bytes = queued + size
                if self._writing or self.selector is None or self.socket is None:
                    if self.selector is None:
                        logger.debug("Not connected: frame queued for %s", self.addr)
                    return
                if self._in_events and threading.get_ident() == self._loop_ident:
                    return  # process_events writes before it returns
                if not self._watch_writes():
                    return
        if overflow:
            self._on_overflow(queued + size)
            return
        self._notify()


def _set_nodelay(sock: Any) -> None:
    """Turn Nagle's algorithm off on a TCP socket; leave any other socket as it is."""
    try:
        if sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError) as error:
        logger.debug("TCP_NODELAY not set on %r: %s", sock, error)
