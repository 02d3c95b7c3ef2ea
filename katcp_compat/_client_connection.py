"""The life cycle and connection side of DeviceClient: start/stop, connecting,
reconnecting and reading lines on the I/O thread; and the Flag used for its
states."""

import concurrent.futures
import errno
import logging
import socket
import threading
import time
from typing import Any, Callable, List, Optional

from protocompat.netutil import SelectorLoop

from ._stream import IOLoopStub, LineStream

#: Seconds a connection attempt may take before it is abandoned and retried.
CONNECT_TIMEOUT = 5.0
_EVENT_WRITE = 2  # selectors.EVENT_WRITE


class Flag:
    """A :class:`threading.Event` that can also resolve concurrent Futures."""

    def __init__(self, initially: bool = False) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._futures: List["concurrent.futures.Future[Any]"] = []
        if initially:
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    isSet = is_set  # the threading.Event spelling katcp 0.5 code uses

    def set(self) -> None:
        with self._lock:
            self._event.set()
            futures, self._futures = self._futures, []
        for fut in futures:
            if not fut.done():
                fut.set_result(None)

    def clear(self) -> None:
        self._event.clear()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._event.wait(timeout)

    def until(self, timeout: Optional[float], loop: Optional[SelectorLoop]) -> "concurrent.futures.Future[Any]":
        fut: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        with self._lock:
            if self._event.is_set():
                fut.set_result(None)
                return fut
            self._futures.append(fut)
        if timeout is not None and loop is not None and loop.is_running():
            def expire() -> None:
                if not fut.done():
                    fut.set_exception(concurrent.futures.TimeoutError(
                        "not set within %s seconds" % timeout))
            loop.call_later(timeout, expire)
        return fut


class ClientConnectionMixin:
    """Connection management of :class:`~katcp_compat.client.DeviceClient`."""

    _logger: logging.Logger

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: Optional[float] = None, daemon: Optional[bool] = None,
              excepthook: Optional[Callable[..., Any]] = None) -> None:
        """Start the client's I/O thread, which connects to the device.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait until the client is running and connected (as
            katcp 0.5 did). Returns when the time is up even if no connection
            was made, without raising (as katcp 0.9.3 does); see
            :meth:`wait_connected`.
        daemon : bool, optional
            Whether the I/O thread is a daemon thread.
        excepthook : callable, optional
            Receives unhandled exceptions of the I/O thread.

        Raises
        ------
        RuntimeError
            If the client is already running.
        """
        if self._running.is_set() or (self._loop is not None and self._loop.is_running()):
            raise RuntimeError("Device client already started.")
        if daemon is not None:
            self._daemon = bool(daemon)
        self._init_state_per_run()
        self._stopped.clear()
        loop = SelectorLoop(name="katcp-client-io %s" % self.bind_address_string,
                            excepthook=excepthook, daemon=self._daemon)
        self._loop = loop
        self._ioloop_stub = IOLoopStub(loop)
        loop.start()
        loop.call_soon(self._install)
        if timeout:
            deadline = time.monotonic() + timeout
            if self.wait_running(timeout):
                self.wait_connected(max(0.0, deadline - time.monotonic()))

    def _install(self) -> None:
        self._running.set()
        self._connect()

    def run(self) -> None:
        """Run the client in the calling thread until :meth:`stop` (katcp 0.5 form)."""
        self.start()
        self._stopped.wait()

    def stop(self, timeout: Optional[float] = None) -> None:
        """Disconnect and stop the I/O thread; safe from any thread.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the I/O thread to end.

        Raises
        ------
        RuntimeError
            If the client was never started.
        """
        loop = self._loop
        if loop is None:
            raise RuntimeError("Call start() before stop()")
        self._running.clear()
        loop.call_soon(self._teardown)
        if not loop.in_loop_thread():
            loop.stop(timeout)
            if not loop.is_running():
                self._stopped.set()
        else:
            loop.call_soon(lambda: loop.stop(0))
            self._stopped.set()

    def _teardown(self) -> None:
        for timer in (self._connect_timer, self._retry_timer):
            if timer is not None:
                timer.cancel()
        self._abort_connecting()
        stream = self._stream
        if stream is not None:
            stream.flush_now()
            stream.close("client stopped")
        self._on_stopping()

    def _on_stopping(self) -> None:
        """Hook for subclasses: the client is stopping (I/O thread)."""

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the I/O thread to end.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait.
        """
        loop = self._loop
        if loop is not None and loop.thread is not None and not loop.in_loop_thread():
            loop.thread.join(timeout)

    # ------------------------------------------------------------------ connection (I/O thread)
    def _connect(self) -> None:
        if not self._running.is_set() or self._stream is not None or self._connecting is not None:
            return
        self._retry_timer = None
        try:
            infos = socket.getaddrinfo(self._bindaddr[0], self._bindaddr[1], socket.AF_UNSPEC,
                                       socket.SOCK_STREAM)
            family, stype, proto, _name, addr = infos[0]
            sock = socket.socket(family, stype, proto)
        except OSError as exc:
            self._connect_failed("address error: %s" % exc)
            return
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sock.close()
            self._connect_failed(errno.errorcode.get(err, str(err)))
            return
        self._connecting = sock
        self._loop.register(sock, _EVENT_WRITE, self._on_connect_ready)
        self._connect_timer = self._loop.call_later(CONNECT_TIMEOUT, self._connect_timed_out, sock)

    def _abort_connecting(self) -> None:
        sock = self._connecting
        if sock is not None:
            self._connecting = None
            self._loop.unregister(sock)
            sock.close()

    def _connect_timed_out(self, sock: socket.socket) -> None:
        if self._connecting is sock:
            self._abort_connecting()
            self._connect_failed("timed out")

    def _on_connect_ready(self, sock: socket.socket, mask: int) -> None:
        if self._connecting is not sock:
            return
        if self._connect_timer is not None:
            self._connect_timer.cancel()
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._loop.unregister(sock)
        self._connecting = None
        if err:
            sock.close()
            self._connect_failed(errno.errorcode.get(err, str(err)))
            return
        if not self._running.is_set():
            sock.close()
            return
        stream = LineStream(self._loop, sock, self._on_line, self._on_stream_closed,
                            max_line=self.MAX_MSG_SIZE, max_write=self.MAX_WRITE_BUFFER_SIZE)
        self._stream = stream
        stream.register()
        self.last_connect_time = time.time()
        self._disconnected.clear()
        self._connected.set()
        self._attempt_settled.set()
        self._logger.debug("Connected to %s", self.bind_address_string)
        self._notify(True)

    def _notify(self, connected: bool) -> None:
        try:
            self.notify_connected(connected)
        except Exception:
            self._logger.exception("notify_connected(%s) failed", connected)

    def _connect_failed(self, reason: str) -> None:
        self._logger.debug("Failed to connect to %s: %s", self.bind_address_string, reason)
        if not self._auto_reconnect:
            self._attempt_settled.set()
        self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if self._auto_reconnect and self._running.is_set() and self._retry_timer is None:
            self._retry_timer = self._loop.call_later(self.auto_reconnect_delay, self._connect)

    def _on_line(self, line: bytes) -> None:
        if not line:
            return
        try:
            msg = self._parser.parse(line)
        except Exception:
            self._logger.error("Bad message from %s: %r", self.bind_address_string, line[:200],
                               exc_info=True)
            return
        self.handle_message(msg)

    def _on_stream_closed(self, reason: str) -> None:
        self._stream = None
        self._connected.clear()
        self._disconnected.set()
        if not self._static_protocol_configuration:
            self._protocol_flags = None
            self._server_supports_ids = False
            self._received_protocol_info.clear()
        self._logger.debug("Disconnected from %s: %s", self.bind_address_string, reason)
        self._on_disconnected(reason)
        self._notify(False)
        self._schedule_reconnect()

    def _on_disconnected(self, reason: str) -> None:
        """Hook for subclasses: the connection closed (I/O thread)."""

    def disconnect(self) -> None:
        """Close the current connection (it is re-made if auto_reconnect is on)."""
        stream = self._stream
        if stream is not None:
            stream.close("disconnect requested")
