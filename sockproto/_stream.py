"""One connected TCP socket carrying stp frames, driven by a SelectorLoop."""

import logging
import selectors
import socket
import threading
from typing import Callable

from protocompat.netutil import SelectorLoop

from .codec import StpDecoder, stp_encode

__all__: list = []

# Bytes read per readiness event.
_RECV_SIZE = 256 * 1024
# Queued outgoing bytes above which send() refuses more.
_MAX_OUTBUF = 64 * 1024 * 1024
_EVENT_READ = selectors.EVENT_READ
_EVENT_WRITE = selectors.EVENT_WRITE


class _StpStream:
    """A non-blocking socket on a loop: frames in via callback, frames out via write().

    ``write`` may be called from any thread; it sends directly when nothing
    is queued and leaves the rest to the loop. Everything else runs on the
    loop thread. ``on_close`` is called once, on the loop thread.
    """

    def __init__(self, loop: SelectorLoop, sock: socket.socket, on_frame: Callable[[bytes], None],
                 on_close: Callable[[], None], max_frame_size: int, logger: logging.Logger,
                 rx_log_lvl: int) -> None:
        self._loop = loop
        self._sock = sock
        self._on_frame = on_frame
        self._on_close = on_close
        self._decoder = StpDecoder(max_frame_size)
        self.logger = logger
        self._rx_log_lvl = rx_log_lvl
        self._lock = threading.Lock()
        self._outbuf = bytearray()
        self._want_write = False
        self._closed = False
        # One receive buffer per connection, reused for every read.
        self._rbuf = bytearray(_RECV_SIZE)
        self._rview = memoryview(self._rbuf)
        try:
            self.peer = sock.getpeername()
        except OSError:
            self.peer = None
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Begin reading (loop thread)."""
        self._loop.register(self._sock, selectors.EVENT_READ, self._on_event)

    # -- output ---------------------------------------------------------------
    def write(self, frame: bytes) -> bool:
        """Queue one frame for sending; True if accepted."""
        data = stp_encode(frame)
        with self._lock:
            if self._closed:
                return False
            if len(self._outbuf) + len(data) > _MAX_OUTBUF:
                self.logger.error("send queue to %s full (%d bytes): frame refused",
                                  self.peer, len(self._outbuf))
                return False
            if not self._outbuf:
                try:
                    sent = self._sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as exc:
                    self.logger.info("send to %s failed: %s", self.peer, exc)
                    self._loop.call_soon(self.close)
                    return False
                if sent == len(data):
                    return True
                data = data[sent:]
            self._outbuf += data
            if not self._want_write:
                self._want_write = True
                self._loop.call_soon(self._update_events)
        return True

    def _update_events(self) -> None:
        with self._lock:
            if self._closed:
                return
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._want_write else 0)
        self._loop.modify(self._sock, events, self._on_event)

    def _flush(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                sent = self._sock.send(self._outbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.logger.info("send to %s failed: %s", self.peer, exc)
                sent = -1
            if sent >= 0:
                del self._outbuf[:sent]
                if self._outbuf:
                    return
                self._want_write = False
        if sent < 0:
            self.close()
        else:
            self._update_events()

    # -- input ----------------------------------------------------------------
    def _on_event(self, sock: socket.socket, mask: int) -> None:
        if mask & _EVENT_WRITE:
            self._flush()
        if mask & _EVENT_READ and not self._closed:
            self._read()

    def _read(self) -> None:
        try:
            size = self._sock.recv_into(self._rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.logger.info("receive from %s failed: %s", self.peer, exc)
            self.close()
            return
        if not size:
            self.close()
            return
        on_frame = self._on_frame
        for frame in self._decoder.feed(self._rview[:size]):
            if not isinstance(frame, bytes):
                self.logger.warning("bad frame from %s: %s", self.peer, frame.reason)
                continue
            if self.logger.isEnabledFor(self._rx_log_lvl):
                self.logger.log(self._rx_log_lvl, "RX <- %s: %r", self.peer, frame)
            try:
                on_frame(frame)
            except Exception:
                self.logger.exception("frame handler raised")
            if self._closed:
                return

    # -- closing --------------------------------------------------------------
    def close(self) -> None:
        """Close the socket and call ``on_close`` once (loop thread)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._outbuf = bytearray()
        self._loop.unregister(self._sock)
        try:
            self._sock.close()
        finally:
            self._on_close()

