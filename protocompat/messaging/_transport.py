"""The bytes of one messaging connection, on the foundation's :class:`~protocompat.netutil.Stream`.

Each connect makes a Stream over the socket, on an
:class:`~._apploop.ApplicationLoop` (the application's selector), with the
connection's :class:`~._codec.MessageManager` as its decoder. The Stream does
the socket I/O, the bounded output queue and the close; this module adds what
clever-show's connection keeps across sockets: frames held while it is not
connected (and, with ``resume_queue``, those a close left unsent), the
messages a raising callback left undelivered, and the exception
``process_events`` raises once the connection has closed.
"""

import collections
import functools
import logging
import sys
import threading
from socket import SHUT_RD
from socket import socket as Socket
from typing import Any, Callable, Deque, List, Optional, Union

from ..netutil import (DEFAULT_RECV_SIZE, EVENT_READ, EVENT_READ_WRITE, EVENT_WRITE,
                       OutputOverflow, PeerClosed, Stream, configure_socket)
from ._apploop import ApplicationLoop
from ._codec import FrameError, MessageManager
from ._files import FileFrame

logger = logging.getLogger(__name__)

#: Bytes that may wait to be sent on a connection (files count nothing; their number is bounded).
MAX_QUEUED_OUTPUT = 16 * 1024 * 1024
_EVENT_MASKS = {"r": EVENT_READ, "w": EVENT_WRITE, "rw": EVENT_READ_WRITE}

Frame = Union[bytes, FileFrame]


class Transport:
    """The socket, decoder and output of one connection, across reconnections.

    :meth:`send` and :meth:`close` are safe from any thread; :meth:`connect`,
    :meth:`process_events` and :meth:`close_now` run on the loop thread (the
    thread that calls them becomes it).

    Parameters
    ----------
    on_message : callable
        ``on_message(message)`` for each received message, on the loop thread.
        A :class:`~._codec.FrameError` it raises closes the connection; any
        other exception leaves :meth:`process_events`, and the messages after
        that one are delivered on the next event.
    on_overflow : callable
        ``on_overflow(queued_bytes)`` when the stream refuses a frame because
        its output holds more than its bound; the frame is dropped, and so
        are the frames sent while the connection closes.

    Attributes
    ----------
    addr
        The peer's address as given to :meth:`connect`.
    buffer_size : int
        Bytes asked of each ``recv`` (at least 64 KiB); read by :meth:`connect`.
    resume_queue : bool
        Keep frames a close left unsent, and frames sent while not connected,
        for the next connection.
    held : collections.deque
        Frames waiting for a connection.
    """

    def __init__(self, on_message: Callable[[MessageManager], Any],
                 on_overflow: Callable[[int], Any]) -> None:
        self._on_message = on_message
        self._on_overflow = on_overflow
        self.addr: Any = None
        self.buffer_size = 1024
        self.resume_queue = False
        self._lock = threading.RLock()  # guards the stream's replacement and the held frames
        self._stream: Optional[Stream] = None
        self._loop: Optional[ApplicationLoop] = None
        self._decoder = MessageManager()
        self._received: Deque[MessageManager] = collections.deque()
        self.held: Deque[Frame] = collections.deque()
        self._held_bytes = 0
        self._files = 0  # file frames queued and not yet sent or dropped
        self._files_lock = threading.Lock()
        self._close_asked = False  # the owner closes the stream: its end is no error
        self._dropping: Optional[Stream] = None  # overflowed: frames for it are dropped
        self._error: Optional[BaseException] = None  # for process_events to raise
        self._connects = 0  # numbers the streams
        self._deferring = False  # the loop thread delivers a message with more to follow
        self._sent_direct = False  # another thread sent a frame since the last event

    # -- state ---------------------------------------------------------------
    @property
    def selector(self) -> Any:
        """The application's selector while connected, else None."""
        loop = self._loop
        return loop.selector if loop is not None and self._stream is not None else None

    @property
    def socket(self) -> Optional[Socket]:
        """The socket while connected, else None."""
        stream = self._stream
        return stream.sock if stream is not None else None

    @property
    def queued_files(self) -> int:
        """File frames queued and not completely sent (waiting, or being sent)."""
        return self._files

    def replace_held(self, queue: "collections.deque[Frame]") -> None:
        """Hold ``queue`` instead of the frames held now (legacy code assigns ``_send_queue``)."""
        with self._lock:
            old, self.held = self.held, queue
            for frame in old:
                if isinstance(frame, FileFrame):
                    frame.close()
            self._held_bytes = 0
            for frame in queue:
                if isinstance(frame, FileFrame):
                    self._track(frame)
                else:
                    self._held_bytes += len(frame)

    def _track(self, frame: FileFrame) -> None:
        with self._files_lock:
            self._files += 1
        frame.track(self._file_released)

    def _file_released(self) -> None:
        with self._files_lock:
            self._files -= 1

    # -- lifecycle -------------------------------------------------------------
    def connect(self, selector: Any, sock: Socket, addr: Any, decoder: MessageManager,
                owner: Any, max_output: Optional[int]) -> List[Frame]:
        """Attach to ``sock`` (registered with ``selector`` here if it is not yet).

        A previous socket is closed first. Held frames are dropped, unless
        :attr:`resume_queue`; then they are sent first, and returned.

        Parameters
        ----------
        selector : selectors.BaseSelector
            The application's selector.
        sock : socket.socket
            A connected socket; it is made non-blocking, and a TCP one gets
            ``TCP_NODELAY``.
        addr : object
            Address of the peer.
        decoder : MessageManager
            The decoder of this connection's received bytes.
        owner : object
            The selector key's ``data``.
        max_output : int or None
            Bytes that may wait to be sent (None: no bound).
        """
        configure_socket(sock)
        with self._lock:
            if self._stream is not None:
                self.close_now()
            if not self.resume_queue:
                self._drop_held()
            self.addr = addr
            self._error = None
            self._close_asked = False
            self._dropping = None
            self._decoder = decoder
            self._connects += 1
            loop = ApplicationLoop(selector, sock, owner)
            # The stream's close callback names it by number: a reference would keep a
            # closed stream, and the output it dropped, alive until the garbage collector runs.
            stream = Stream(loop, sock, _LoggingDecoder(decoder, addr), self._received.append,
                            functools.partial(self._closed, self._connects),
                            max_output=sys.maxsize if max_output is None else max_output,
                            on_overflow=self._overflow,
                            recv_size=max(int(self.buffer_size), DEFAULT_RECV_SIZE))
            self._loop, self._stream = loop, stream
            stream.start()
            carried = list(self.held)
            self.held.clear()
            self._held_bytes = 0
            for frame in carried:
                self._write(frame, max_output)
        return carried

    def _drop_held(self) -> None:
        """Forget the held frames (lock held)."""
        for frame in self.held:
            if isinstance(frame, FileFrame):
                frame.close()
        self.held.clear()
        self._held_bytes = 0

    def _drop_received(self) -> None:
        received = self._received
        while received:
            received.popleft().discard()

    def close(self) -> None:
        """Close the connection; safe from any thread (the loop closes it on its next turn).

        The socket's receiving side is shut down at once, so that the
        application's ``select()`` returns it even when the peer neither sends
        nor reads.
        """
        loop, stream = self._loop, self._stream
        if loop is None or stream is None or stream.closing:
            return
        self._close_asked = True
        if loop.in_loop_thread():
            stream.flush()  # frames the callbacks of this event sent leave first
        else:
            try:
                stream.sock.shutdown(SHUT_RD)
            except OSError:
                pass
        stream.close()

    def close_now(self) -> None:
        """Unregister and close the socket now; the calling thread acts as the loop thread."""
        loop, stream = self._loop, self._stream
        if loop is None or stream is None:
            return
        loop.claim()
        self._close_asked = True
        stream.close()

    def _closed(self, connect: int, error: Optional[BaseException]) -> None:
        """Stream number ``connect`` has closed: keep what resumes, decide what process_events raises."""
        with self._lock:
            stream = self._stream
            if connect != self._connects or stream is None:
                return
            loop = self._loop
            if loop is not None:
                loop.close()
            logger.info("Closing connection to %s", self.addr)
            self._error = self._close_error(error)
            self._decoder.reset()
            self._drop_received()
            if self.resume_queue:
                unsent = stream.unsent()
                for frame in unsent:
                    if isinstance(frame, FileFrame):
                        self._track(frame)
                    else:
                        self._held_bytes += len(frame)  # type: ignore[arg-type]
                self.held.extendleft(reversed(unsent))  # type: ignore[arg-type]
            self._dropping = None
            self._stream = None

    def _close_error(self, error: Optional[BaseException]) -> Optional[BaseException]:
        """The exception process_events raises for a close by ``error`` (logged here), or None."""
        if error is None or isinstance(error, OutputOverflow):
            return None
        if isinstance(error, PeerClosed):
            if self._close_asked:
                return None  # the receiving side was shut down by close()
            if self._decoder.partial:
                logger.warning("Connection to %s lost in the middle of a frame!", self.addr)
            else:
                logger.warning("Connection to %s lost!", self.addr)
            return RuntimeError("Peer closed.")
        if not isinstance(error, ValueError):  # bad data is logged before the close
            logger.warning("Connection to %s lost: %s", self.addr, error)
        return error

    # -- events ------------------------------------------------------------------
    def process_events(self, mask: int) -> None:
        """Handle the selector events ``mask`` (loop thread); see ``ConnectionManager``."""
        loop = self._loop
        if loop is None or self._stream is None:
            return
        self._sent_direct = False
        loop.handle(mask, self._deliver)
        error = self._error
        if error is not None:
            self._error = None
            raise error

    def _deliver(self) -> None:
        """Hand each received message to the owner, until the connection closes or reconnects.

        While more messages of the same event wait, frames the callbacks send
        are queued, and leave together at the end of the event.
        """
        received = self._received
        on_message = self._on_message
        try:
            while received:
                message = received.popleft()
                self._deferring = bool(received)
                on_message(message)
        except FrameError as error:
            stream = self._stream
            if stream is not None:
                _log_bad_data(self.addr, error)
                stream.close(error)
        finally:
            self._deferring = False

    def set_events(self, mode: str) -> Any:
        """Watch ``"r"``, ``"w"`` or ``"rw"`` events; return the selector key (None if not connected).

        Write events make the loop's next ``select()`` return the socket; the
        events go back to what the connection needs after that event.
        """
        try:
            events = _EVENT_MASKS[mode]
        except KeyError:
            raise ValueError("Invalid events mask mode {}.".format(mode)) from None
        loop, stream = self._loop, self._stream
        if loop is None or stream is None:
            return None
        if events & EVENT_WRITE:
            loop.call_soon(_nothing)
        return loop.selector.get_key(stream.sock)

    # -- output --------------------------------------------------------------------
    def send(self, frame: Frame, max_output: Optional[int] = MAX_QUEUED_OUTPUT) -> None:
        """Send one frame, or hold it while not connected; safe from any thread.

        Parameters
        ----------
        frame : bytes or FileFrame
            The frame.
        max_output : int or None
            Bytes that may be held while not connected (a file frame counts
            nothing); a frame past it is dropped, with an error logged.
            Connected, the stream's bound (set by :meth:`connect`) applies.
        """
        if isinstance(frame, FileFrame):
            self._track(frame)
        self._write(frame, max_output)

    def _write(self, frame: Frame, max_output: Optional[int]) -> None:
        """Give a frame to the stream (hold it if there is none, or it is closing).

        On the loop thread a frame leaves at once, unless more received
        messages of the event wait: then the frames leave together at its end.
        From another thread the first frame since the connection's last event
        leaves at once, and the next ones wait for the loop, which sends a
        burst in a few large sends instead of one system call a frame.
        """
        while True:
            stream = self._stream
            if stream is not None:
                if self._deferring:  # set on the loop thread only; elsewhere deferring is harmless
                    defer = True
                elif self._loop.in_loop_thread():  # type: ignore[union-attr]
                    defer = False
                else:
                    defer = self._sent_direct
                    self._sent_direct = True
                if stream.write(frame, defer):
                    return
                if self._dropping is stream:  # overflowed: closing
                    _drop(frame)
                    return
            with self._lock:
                if self._stream is stream:  # closing, or not connected
                    self._hold(frame, max_output)
                    return

    def _hold(self, frame: Frame, max_output: Optional[int]) -> None:
        """Keep a frame for the next connection, within ``max_output`` (lock held)."""
        size = 0 if isinstance(frame, FileFrame) else len(frame)
        queued = self._held_bytes
        if max_output is not None and self.held and queued + size > max_output:
            _drop(frame)
            logger.error("Frame to %s dropped: %d bytes wait to be sent, more than "
                         "max_queued_output (%s), and the connection is closed",
                         self.addr, queued, max_output)
            return
        self.held.append(frame)
        self._held_bytes = queued + size
        logger.debug("Not connected: frame held for %s", self.addr)

    def _overflow(self, stream: Stream) -> None:
        """The stream refused a frame for its bound: the peer does not read fast enough."""
        self._dropping = stream
        self._on_overflow(stream.output_size)


class _LoggingDecoder:
    """The connection's decoder, logging bad data before the stream closes the connection for it."""

    __slots__ = ("_feed", "_addr")

    def __init__(self, decoder: MessageManager, addr: Any) -> None:
        self._feed = decoder.feed
        self._addr = addr

    def feed(self, data: bytes) -> List[MessageManager]:
        try:
            return self._feed(data)
        except ValueError as error:
            _log_bad_data(self._addr, error)
            raise


def _log_bad_data(addr: Any, error: Exception) -> None:
    logger.error("Bad data from %s, closing the connection: %s", addr, error)


def _drop(frame: Frame) -> None:
    if isinstance(frame, FileFrame):
        frame.close()


def _nothing() -> None:
    """A call that only makes the loop handle the socket's next event."""
