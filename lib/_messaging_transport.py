"""The byte-moving half of a messaging connection: selector events, queues, send and receive.

:class:`_Transport` is the base of ``messaging.ConnectionManager``; it owns
the socket state and the send queue, turns ready events into ``recv`` and
``send`` calls, and hands each complete message to ``process_received``,
which the connection class provides (with ``_content_sink`` and
``_resend_requests``). Part of ``messaging``; import from there.
"""

import importlib
import logging
import selectors
import socket
import threading
from typing import Any, Union


# Siblings are imported the way this module was (``lib.X`` or, with lib/ on sys.path, ``X``);
# the codec module, which needs no sibling, holds the helper that does it.
_import_sibling = importlib.import_module(
    (__package__ + "." if __package__ else "") + "_messaging_codec")._import_sibling


_codec = _import_sibling("_messaging_codec")
_files = _import_sibling("_messaging_files")
_notifier = _import_sibling("_messaging_notifier")
MessageManager = _codec.MessageManager
MAX_CONTENT_LENGTH = _codec.MAX_CONTENT_LENGTH
_FrameError = _codec._FrameError
_PROTOHEADER_LENGTH = _codec._PROTOHEADER_LENGTH
_decode_header = _codec._decode_header
_decode_content = _codec._decode_content
_FileFrame = _files._FileFrame
NotifierSock = _notifier.NotifierSock

# Records go to the logger of ``messaging`` (``lib.messaging`` or ``messaging``).
logger = logging.getLogger(__name__.replace("_messaging_transport", "messaging"))

# Smallest number of bytes asked of one ``recv``/``send`` call.
_MIN_IO_SIZE = 64 * 1024
#: Small queued frames are joined into one ``send`` up to this size.
_COALESCE_LIMIT = 64 * 1024
#: Bytes read from a file per step of a streamed file frame.
_FILE_CHUNK = 256 * 1024
#: Bytes sent per write event, in I/O-size units, before other sockets get their turn.
_WRITE_ROUNDS = 4

_EVENT_MASKS = {
    "r": selectors.EVENT_READ,
    "w": selectors.EVENT_WRITE,
    "rw": selectors.EVENT_READ | selectors.EVENT_WRITE,
}


class _Transport:
    """Socket, selector registration, send queue and incoming buffer of one connection.

    Subclasses provide ``process_received(message)``, ``_content_sink(header)``
    and ``_resend_requests()``, and set up the attributes in ``__init__``
    (see ``ConnectionManager.__init__``).
    """

    # -- selector --------------------------------------------------------
    def _set_selector_events_mask(self, mode: str) -> Any:
        """Set the events watched: ``"r"``, ``"w"`` or ``"rw"``."""
        try:
            events = _EVENT_MASKS[mode]
        except KeyError:
            raise ValueError("Invalid events mask mode {}.".format(mode)) from None
        with self._send_lock:
            self._writing = bool(events & selectors.EVENT_WRITE)
            return self._modify(events)

    def _modify(self, events: int) -> Any:
        """Change the watched events, keeping the key's data (send lock held)."""
        key = self.selector.get_key(self.socket)
        if key.events == events:
            return key
        return self.selector.modify(self.socket, events, key.data)

    def _notify(self) -> None:
        """Wake the loop if the caller is not the loop thread."""
        if threading.get_ident() != self._loop_ident:
            selector = self.selector
            if selector is not None:
                NotifierSock()._notify_selector(selector)

    # -- lifecycle -------------------------------------------------------
    def connect(self, client_selector: Any, client_socket: socket.socket, client_addr: Any) -> None:
        """Attach the connection to a socket registered with ``client_selector``.

        Parameters
        ----------
        client_selector : selectors.BaseSelector
            The application's selector.
        client_socket : socket.socket
            A connected, non-blocking socket (registered with ``data`` = this
            object; it is registered here if it is not yet). A TCP socket gets
            ``TCP_NODELAY``, so a frame leaves without waiting for an ACK.
        client_addr : object
            Address of the peer.
        """
        _set_nodelay(client_socket)
        with self._send_lock:
            self.selector = client_selector
            self.socket = client_socket
            self.addr = client_addr
            self._generation += 1
            with self._close_lock:
                self._should_close = False
            self._clear()
            self._reset_incoming()
            events = selectors.EVENT_READ
            if self._send_queue or self._current_file is not None or self._out_pos < len(self._out):
                events |= selectors.EVENT_WRITE
            self._writing = bool(events & selectors.EVENT_WRITE)
            try:
                self._modify(events)
            except KeyError:
                client_selector.register(client_socket, events, self)
        if self.resend_requests:
            self._resend_requests()

    def _clear(self) -> None:
        """Drop queued frames and buffers, unless :attr:`resume_queue`."""
        if self.resume_queue:
            return
        with self._send_lock:
            for item in self._send_queue:
                if isinstance(item, _FileFrame):
                    item.close()
            self._send_queue.clear()
            if self._current_file is not None:
                self._current_file.close()
                self._current_file = None
            self._out = memoryview(b"")
            self._out_pos = 0
            self._out_frames = []
            self._received_queue.clear()

    def _new_incoming(self) -> MessageManager:
        message = MessageManager()
        message.max_content_length = getattr(self, "max_content_length", MAX_CONTENT_LENGTH)
        message._on_header = self._content_sink
        return message

    def _reset_incoming(self) -> None:
        self._incoming._abort()
        self._incoming = self._new_incoming()

    def _requeue_unsent(self) -> None:
        """Put frames not completely sent back at the head of the queue (send lock held)."""
        if self._current_file is not None:
            self._current_file.rewind()
            self._send_queue.appendleft(self._current_file)
            self._current_file = None
        unsent = [frame for end, frame in self._out_frames if end > self._out_pos]
        self._send_queue.extendleft(reversed(unsent))
        self._out = memoryview(b"")
        self._out_pos = 0
        self._out_frames = []

    def close(self) -> None:
        """Close the connection; safe from any thread (done by the loop's next event)."""
        with self._close_lock:
            self._should_close = True
        with self._send_lock:
            if self.selector is None or self.socket is None:
                return
            try:
                self._writing = True
                self._modify(selectors.EVENT_READ | selectors.EVENT_WRITE)
            except (KeyError, ValueError, OSError):
                pass
        self._notify()

    def _close(self) -> None:
        """Unregister and close the socket now (loop thread); idempotent."""
        with self._send_lock:
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
            self._requeue_unsent()
            self._reset_incoming()
            self._clear()

    # -- events ----------------------------------------------------------
    def process_events(self, mask: int) -> None:
        """Handle the selector events ``mask`` of this connection (loop thread).

        Parameters
        ----------
        mask : int
            ``selectors.EVENT_READ`` and/or ``selectors.EVENT_WRITE``.

        Raises
        ------
        RuntimeError
            ``"Peer closed."`` when the peer closed the connection.
        ValueError
            When the peer sent a malformed frame.
        OSError
            When the socket failed.

        In every case the connection is closed before the exception leaves.
        """
        self._loop_ident = threading.get_ident()
        if self._should_close:  # set (under _close_lock) before close() asks for this event
            self._close()
            return
        self._in_events = True
        try:
            if mask & selectors.EVENT_READ:
                self.read()
        finally:
            self._in_events = False
        # Frames queued by callbacks just now go out without another select round.
        if self.socket is not None and (mask & selectors.EVENT_WRITE or self._send_queue):
            self.write()

    def read(self) -> None:
        """Receive available bytes and handle every complete message."""
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
            self._close()
            raise
        if not data:
            pending = len(self._incoming._raw) + (self._incoming.jsonheader is not None)
            if pending:
                logger.warning("Connection to %s lost in the middle of a frame!", self.addr)
            else:
                logger.warning("Connection to %s lost!", self.addr)
            self._close()
            raise RuntimeError("Peer closed.")
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        generation = self._generation
        incoming = self._incoming
        if not incoming._raw and incoming._jsonheader_len is None:
            # The common case: whole JSON frames in one recv, decoded straight
            # from ``data``. Binary and cut frames go through the buffer below.
            pos = 0
            end = len(data)
            try:
                while end - pos >= _PROTOHEADER_LENGTH:
                    start = pos + _PROTOHEADER_LENGTH
                    header_end = start + ((data[pos] << 8) | data[pos + 1])
                    if header_end > end:
                        break
                    header = _decode_header(data[start:header_end], incoming.max_content_length)
                    content_end = header_end + header["content-length"]
                    if content_end > end or header["content-type"] != "json":
                        break
                    incoming._jsonheader_len = header_end - start
                    incoming.jsonheader = header
                    incoming.content = _decode_content(header, data[header_end:content_end])
                    incoming._complete = True
                    pos = content_end
                    self._incoming = following = self._new_incoming()
                    try:
                        self.process_received(incoming)
                    except BaseException:
                        if following is self._incoming:
                            following._raw += data[pos:]  # kept, as the buffered path keeps it
                        raise
                    if generation != self._generation:
                        return  # a callback closed or reconnected us
                    incoming = self._incoming
            except _FrameError as error:
                logger.error("Bad data from %s, closing the connection: %s", self.addr, error)
                self._close()
                raise
            if pos == end:
                return
            if pos:
                data = data[pos:]
        incoming._raw += data
        while generation == self._generation:  # a callback may close or reconnect us
            try:
                incoming.process_message()
                if not incoming._complete:
                    return
                following = self._new_incoming()
                following._raw, incoming._raw = incoming._raw, bytearray()
                self._incoming = following
                self.process_received(incoming)
            except _FrameError as error:
                logger.error("Bad data from %s, closing the connection: %s", self.addr, error)
                self._close()
                raise
            incoming = self._incoming
            if not incoming._raw:
                return

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
                    except _FrameError as error:
                        logger.error("Cannot send to %s, closing the connection: %s", self.addr, error)
                        self._close()
                        raise
                    out, pos = self._out, self._out_pos
                wanted = out[pos:pos + size]
                try:
                    sent = sock.send(wanted)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as error:
                    logger.warning("Sending to %s failed: %s", self.addr, error)
                    self._close()
                    raise
                pos += sent
                self._out_pos = pos
                budget -= sent
                if sent < len(wanted):
                    return  # the socket buffer is full
                if pos >= len(out) and not self._writing and not self._send_queue \
                        and self._current_file is None:
                    return  # all sent, and no write watch to drop
        finally:
            # Checked again under the lock; a frame queued meanwhile by another
            # thread finds no write watch and sets one itself.
            if self.socket is not None and not self._writing and (
                    self._send_queue or self._current_file is not None
                    or self._out_pos < len(self._out)):
                self._watch_writes_if_pending()

    def _watch_writes_if_pending(self) -> None:
        with self._send_lock:
            if self._writing or self.socket is None:
                return
            if self._send_queue or self._current_file is not None or self._out_pos < len(self._out):
                try:
                    self._modify(selectors.EVENT_READ | selectors.EVENT_WRITE)
                    self._writing = True
                except (KeyError, ValueError, OSError) as error:
                    logger.debug("Cannot watch %s for writing: %s", self.addr, error)

    def _fill_out(self, size: int) -> bool:
        """Load the next bytes to send; False (and read-only events) when there are none."""
        with self._send_lock:
            if self._current_file is None:
                queue = self._send_queue
                if not queue:
                    self._out = memoryview(b"")
                    self._out_pos = 0
                    self._out_frames = []
                    # A pending close() keeps write events: they run _close().
                    if self._writing and self.socket is not None and not self._should_close:
                        self._writing = False
                        try:
                            self._modify(selectors.EVENT_READ)
                        except (KeyError, ValueError, OSError) as error:
                            logger.debug("Cannot stop watching %s for writing: %s", self.addr, error)
                    return False
                if isinstance(queue[0], _FileFrame):
                    self._current_file = queue.popleft()
                elif len(queue) == 1:
                    frame = queue.popleft()
                    self._out_frames = [(len(frame), frame)]
                    self._out = memoryview(frame)
                    self._out_pos = 0
                    return True
                else:
                    frames = []
                    total = 0
                    while queue and total < _COALESCE_LIMIT and not isinstance(queue[0], _FileFrame):
                        frame = queue.popleft()
                        total += len(frame)
                        frames.append((total, frame))
                    self._out_frames = frames
                    self._out = memoryview(frames[0][1] if len(frames) == 1
                                           else b"".join(frame for _, frame in frames))
                    self._out_pos = 0
                    return True
            current = self._current_file
        chunk = current.next_chunk(max(size, _FILE_CHUNK))
        with self._send_lock:
            if chunk is None:
                current.close()
                if self._current_file is current:
                    self._current_file = None
                self._out = memoryview(b"")
                self._out_pos = 0
                self._out_frames = []
            else:
                self._out = memoryview(chunk)
                self._out_pos = 0
                self._out_frames = []
        return True if chunk is not None else self._fill_out(size)

    def _send(self, data: Union[bytes, _FileFrame]) -> None:
        """Queue one frame for sending; safe from any thread."""
        with self._send_lock:
            self._send_queue.append(data)
            if self._writing or self.selector is None or self.socket is None:
                if self.selector is None:
                    logger.debug("Not connected: frame queued for %s", self.addr)
                return
            if self._in_events and threading.get_ident() == self._loop_ident:
                return  # process_events writes before it returns
            try:
                self._modify(selectors.EVENT_READ | selectors.EVENT_WRITE)
            except (KeyError, ValueError, OSError) as error:
                logger.debug("Cannot watch %s for writing: %s", self.addr, error)
                return
            self._writing = True
        self._notify()


def _set_nodelay(sock: Any) -> None:
    """Turn Nagle's algorithm off on a TCP socket; leave any other socket as it is."""
    try:
        if sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError) as error:
        logger.debug("TCP_NODELAY not set on %r: %s", sock, error)
