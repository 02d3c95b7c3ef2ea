"""KATCP clients (katcp ``katcp.client``).

:class:`DeviceClient` is the base; :class:`CallbackClient` (alias
:class:`AsyncClient`) adds requests with callbacks, Futures and blocking
waits; :class:`BlockingClient` is the same class under its katcp 0.5 name.
Every client has one I/O thread; reply and inform callbacks run on it, or on
a thread blocked in ``blocking_request``, which runs the client's loop itself
while it waits (see :meth:`CallbackClient.blocking_request`). Requests may be
made from any other thread.
"""

import collections
import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, TypeVar

from protocompat.netutil import SelectorLoop

from ._client_base import DeviceClient, log
from ._text import address_to_string
from .core import KatcpClientError, Message
# Also importable from here, as from katcp.client.
from .core import (AsyncEvent, DeviceMetaclass, KatcpClientDisconnected,  # noqa: F401
                   KatcpVersionError, LatencyTimer, MessageParser, ProtocolFlags, until_later)

__all__ = ["DeviceClient", "AsyncClient", "CallbackClient", "BlockingClient", "request_check",
           "address_to_string", "make_threadsafe", "make_threadsafe_blocking"]

_F = TypeVar("_F", bound=Callable[..., Any])


def make_threadsafe(meth: _F) -> _F:
    """Mark a client method as one to run on the I/O thread (katcp 0.9.3).

    katcp 0.9.3 wrapped marked methods in ``enable_thread_safety()``. Every
    method of these clients may already be called from any thread, so the
    decorator only sets ``meth.make_threadsafe = True``.

    Parameters
    ----------
    meth : callable

    Returns
    -------
    meth : callable
        The same function.
    """
    meth.make_threadsafe = True  # type: ignore[attr-defined]
    return meth


def make_threadsafe_blocking(meth: _F) -> _F:
    """Mark a blocking client method as callable from other threads (katcp 0.9.3).

    As :func:`make_threadsafe`, it only sets
    ``meth.make_threadsafe_blocking = True``.

    Parameters
    ----------
    meth : callable

    Returns
    -------
    meth : callable
        The same function.
    """
    meth.make_threadsafe_blocking = True  # type: ignore[attr-defined]
    return meth

_STOPPED_REASON = "Client stopped before reply was received"
_CLOSED_REASON = "Connection closed before reply was received"
#: Extra seconds a blocking caller waits beyond the request timeout.
_EXTRA_WAIT = 1.0


class _Pending:
    """A request waiting for its reply."""

    __slots__ = ("mid", "request", "reply_cb", "inform_cb", "user_data", "timer", "start")

    def __init__(self, mid: bytes, request: Message, reply_cb: Optional[Callable[..., Any]],
                 inform_cb: Optional[Callable[..., Any]], user_data: Optional[tuple]) -> None:
        self.mid = mid
        self.request = request
        self.reply_cb = reply_cb
        self.inform_cb = inform_cb
        self.user_data = user_data
        self.timer: Any = None
        self.start = time.monotonic()


class _Waiter:
    """One request's informs and reply, for the thread blocked on it.

    The blocked thread runs the client's loop itself while it waits
    (:meth:`protocompat.netutil.SelectorLoop.wait_for`), so the reply is read and handled in that
    thread. When the loop is ending it waits instead on a lock that the reply
    (or the failure of the request) releases.
    """

    __slots__ = ("_lock", "reply", "informs", "last_activity")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.reply: Optional[Message] = None
        self.informs: List[Message] = []
        self.last_activity = time.monotonic()

    def on_reply(self, msg: Message) -> None:
        if self.reply is None:
            self.reply = msg
            self._lock.release()

    def on_inform(self, msg: Message) -> None:
        self.informs.append(msg)
        self.last_activity = time.monotonic()

    def done(self) -> bool:
        return self.reply is not None

    def wait(self, loop: Optional[SelectorLoop], deadline: Optional[float]) -> bool:
        """Wait until the reply is in or ``deadline`` (monotonic clock; None: no limit)
        passes, running ``loop`` meanwhile; True once the reply is in."""
        if self.reply is not None:
            return True
        if loop is not None and loop.wait_for(
                self.done, None if deadline is None else max(0.0, deadline - time.monotonic())):
            return True
        remaining = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if self._lock.acquire(True, remaining):
            self._lock.release()  # later waits return at once
            return True
        return False


class CallbackClient(DeviceClient):
    """A client whose requests report their reply through callbacks.

    Message ids are used when the server supports them. Replies are matched
    by id, or else by name (first sent, first answered).

    Parameters
    ----------
    host : str
        Device host.
    port : int
        Device port.
    tb_limit : int, optional
        Traceback depth logged for errors in callbacks.
    timeout : float, optional
        Default request timeout in seconds.
    logger : logging.Logger, optional
        Where client events are logged.
    auto_reconnect : bool, optional
        Reconnect when the connection drops.

    Examples
    --------
    >>> c = CallbackClient('localhost', 10000)
    >>> c.start()
    >>> c.callback_request(Message.request('watchdog'), reply_cb=print)
    >>> c.stop(); c.join()
    """

    def __init__(self, host: str, port: int, tb_limit: int = 20, timeout: float = 5.0,
                 logger: logging.Logger = log, auto_reconnect: bool = True) -> None:
        super().__init__(host, port, tb_limit=tb_limit, logger=logger,
                         auto_reconnect=auto_reconnect)
        self._request_timeout = timeout
        self._pending_lock = threading.Lock()
        # Held while a request is queued for its reply and written, so that
        # the wire order is the order of the per-name queues.
        self._send_lock = threading.Lock()
        self._reset_async_requests()

    def _reset_async_requests(self) -> Dict[bytes, _Pending]:
        with self._pending_lock:
            old = getattr(self, "_async_queue", {})
            self._async_queue: Dict[bytes, _Pending] = {}
            self._async_id_stack: Dict[str, Deque[bytes]] = {}
        return old

    # ------------------------------------------------------------------ bookkeeping
    def _push(self, pending: _Pending) -> None:
        with self._pending_lock:
            self._async_queue[pending.mid] = pending
            stack = self._async_id_stack.get(pending.request.name)
            if stack is None:
                stack = self._async_id_stack[pending.request.name] = collections.deque()
            stack.append(pending.mid)

    def _pop_locked(self, mid: bytes) -> Optional[_Pending]:
        pending = self._async_queue.pop(mid, None)
        if pending is not None:
            stack = self._async_id_stack.get(pending.request.name)
            if stack:
                try:
                    stack.remove(mid)
                except ValueError:
                    pass
        return pending

    def _pop(self, mid: bytes) -> Optional[_Pending]:
        with self._pending_lock:
            return self._pop_locked(mid)

    def _pending_for_locked(self, msg: Message) -> Optional[_Pending]:
        """The request a reply or inform belongs to: by id, else by name."""
        if msg.mid is not None:
            return self._async_queue.get(msg.mid)
        return self._oldest_without_id_locked(msg.name)

    def _oldest_without_id_locked(self, name: str) -> Optional[_Pending]:
        """The first-sent request of this name that went out without an id."""
        stack = self._async_id_stack.get(name)
        if not stack:
            return None
        queue = self._async_queue
        for mid in stack:
            pending = queue.get(mid)
            if pending is not None and pending.request.mid is None:
                return pending
        return None

    # ------------------------------------------------------------------ requests
    def callback_request(self, msg: Message, reply_cb: Optional[Callable[..., Any]] = None,
                         inform_cb: Optional[Callable[..., Any]] = None,
                         user_data: Optional[tuple] = None, timeout: Optional[float] = None,
                         use_mid: Optional[bool] = None) -> None:
        """Send a request; its informs and reply go to the callbacks.

        Callbacks run on the client's loop (the I/O thread, or a thread blocked
        in :meth:`blocking_request`) as ``reply_cb(msg, *user_data)`` and
        ``inform_cb(msg, *user_data)`` (just ``(msg)`` when ``user_data`` is
        None). A timeout, a lost connection or a failure to send gives
        ``reply_cb`` a ``fail`` message.

        Parameters
        ----------
        msg : Message
            The request.
        reply_cb, inform_cb : callable, optional
            Reply and inform callbacks.
        user_data : tuple, optional
            Extra callback arguments.
        timeout : float, optional
            Seconds to wait for the reply (default: the client's timeout).
        use_mid : bool, optional
            Force message ids on or off.
        """
        if timeout is None:
            timeout = self._request_timeout
        mid = self._get_mid_and_update_msg(msg, use_mid)
        pending = _Pending(mid, msg, reply_cb, inform_cb, user_data)
        loop = self._io.loop
        if timeout is not None and loop is not None and loop.is_running():
            pending.timer = loop.call_later(timeout, self._handle_timeout, mid)
        self._push_and_send(pending)

    def _push_and_send(self, pending: _Pending) -> None:
        """Queue a request for its reply and send it, as one step."""
        msg, mid = pending.request, pending.mid
        try:
            with self._send_lock:
                self._push(pending)
                self.send_request(msg)
        except KatcpClientError as exc:
            error_reply = Message.request(msg.name, "fail", str(exc))
            error_reply.mid = mid
            self.handle_reply(error_reply)

    def future_request(self, msg: Message, timeout: Optional[float] = None,
                       use_mid: Optional[bool] = None) -> "concurrent.futures.Future[Any]":
        """Send a request; return a Future of ``(reply, informs)``.

        Parameters
        ----------
        msg : Message
            The request.
        timeout : float, optional
            Seconds to wait for the reply (default: the client's timeout).
        use_mid : bool, optional
            Force message ids on or off.

        Returns
        -------
        future : concurrent.futures.Future
            Resolves to ``(reply, informs)``; failures resolve to a ``fail``
            reply rather than an exception.
        """
        fut: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        informs: List[Message] = []

        def reply_cb(reply: Message) -> None:
            if not fut.done():
                fut.set_result((reply, informs))

        try:
            self.callback_request(msg, reply_cb=reply_cb, inform_cb=informs.append,
                                  timeout=timeout, use_mid=use_mid)
        except Exception as exc:
            fut.set_exception(exc)
        return fut

    def blocking_request(self, msg: Message, timeout: Optional[float] = None,
                         keepalive: bool = False,
                         use_mid: Optional[bool] = None) -> Tuple[Message, List[Message]]:
        """Send a request and wait for its reply.

        Never raises for a failed request: a timeout or a lost connection
        comes back as a ``fail`` reply.

        While it waits, the calling thread runs the client's I/O loop itself,
        taking turns with the I/O thread: the reply is read and handled in the
        calling thread, with no hand-over between threads. Whatever else
        arrives meanwhile (informs, replies to other requests) is handled in
        order, one message at a time, by whichever of the two threads holds
        the turn; its handlers and callbacks may therefore run in the calling
        thread, never concurrently with the I/O thread.

        Parameters
        ----------
        msg : Message
            The request.
        timeout : float, optional
            Seconds to wait (default: the client's timeout).
        keepalive : bool, optional
            Restart the timeout whenever an inform of the request arrives.
        use_mid : bool, optional
            Force message ids on or off.

        Returns
        -------
        reply : Message
            The reply.
        informs : list of Message
            The request's informs.
        """
        loop = self._io.loop
        if loop is not None and loop.in_loop_thread():
            raise RuntimeError("Cannot call blocking_request() on the client's I/O thread")
        if timeout is None:
            timeout = self._request_timeout
        mid = self._get_mid_and_update_msg(msg, use_mid)
        waiter = _Waiter()
        pending = _Pending(mid, msg, waiter.on_reply, waiter.on_inform, None)
        self._push_and_send(pending)
        if timeout is None:
            waiter.wait(loop, None)
        else:
            while not waiter.wait(loop, (waiter.last_activity if keepalive else pending.start)
                                  + timeout):
                if not keepalive or waiter.last_activity + timeout <= time.monotonic():
                    break
        if waiter.reply is None and self._pop(mid) is not None:
            elapsed = time.monotonic() - pending.start
            reason = "Request {0} timed out after {1:f} seconds.".format(msg.name, elapsed)
            return Message.reply(msg.name, "fail", reason, mid=msg.mid), waiter.informs
        if waiter.reply is None:  # a reply is being delivered right now
            waiter.wait(None, time.monotonic() + _EXTRA_WAIT)
        if waiter.reply is None:
            return Message.reply(msg.name, "fail", _CLOSED_REASON, mid=msg.mid), waiter.informs
        return waiter.reply, waiter.informs

    # ------------------------------------------------------------------ dispatch (I/O thread)
    @staticmethod
    def _call(cb: Callable[..., Any], msg: Message, user_data: Optional[tuple]) -> None:
        if user_data is None:
            cb(msg)
        else:
            cb(msg, *user_data)

    def handle_inform(self, msg: Message) -> None:
        """Pass an inform to its request's ``inform_cb``, else to the handlers.

        Parameters
        ----------
        msg : Message
            The inform.
        """
        with self._pending_lock:
            pending = self._pending_for_locked(msg)
        if pending is None or pending.inform_cb is None:
            super().handle_inform(msg)
            return
        try:
            self._call(pending.inform_cb, msg, pending.user_data)
        except Exception:
            self._log_handler_error("Callback inform", msg)

    def handle_reply(self, msg: Message) -> None:
        """Pass a reply to its request's ``reply_cb``, else to the handlers.

        Parameters
        ----------
        msg : Message
            The reply.
        """
        with self._pending_lock:
            pending = self._pending_for_locked(msg)
            if pending is not None:
                self._pop_locked(pending.mid)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        if pending is None or pending.reply_cb is None:
            super().handle_reply(msg)
            return
        try:
            self._call(pending.reply_cb, msg, pending.user_data)
        except Exception:
            self._log_handler_error("Callback reply", msg)

    def _do_fail_callback(self, reason: str, pending: _Pending) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        if pending.reply_cb is None:
            return
        reason_msg = Message.reply(pending.request.name, "fail", reason, mid=pending.request.mid)
        try:
            self._call(pending.reply_cb, reason_msg, pending.user_data)
        except Exception:
            self._log_handler_error("Callback reply during failure", reason_msg)

    def _handle_timeout(self, mid: bytes) -> None:
        pending = self._pop(mid)
        if pending is None:
            return
        reason = "Request {0} timed out after {1:f} seconds.".format(
            pending.request.name, time.monotonic() - pending.start)
        pending.timer = None
        self._do_fail_callback(reason, pending)

    def _fail_waiting_requests(self, reason: str) -> None:
        for pending in list(self._reset_async_requests().values()):
            self._do_fail_callback(reason, pending)

    def _on_disconnected(self, reason: str) -> None:
        self._fail_waiting_requests(_STOPPED_REASON if not self.running()
                                    else _CLOSED_REASON)

    def _on_stopping(self) -> None:
        self._fail_waiting_requests(_STOPPED_REASON)

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop the client; waiting requests get a ``fail`` reply.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the I/O thread to end.
        """
        super().stop(timeout)
        # Requests made while the loop was going down.
        self._fail_waiting_requests(_STOPPED_REASON)


#: katcp 0.9 name of :class:`CallbackClient`.
AsyncClient = CallbackClient


class BlockingClient(CallbackClient):
    """:class:`CallbackClient` under its katcp 0.5 name, for blocking requests.

    Examples
    --------
    >>> c = BlockingClient('localhost', 10000)
    >>> c.start()
    >>> reply, informs = c.blocking_request(Message.request('help'))
    >>> c.stop(); c.join()
    """


def request_check(client: CallbackClient, exception: type, *msg_parms: Any,
                  **kwargs: Any) -> Tuple[Message, List[Message]]:
    """Make a blocking request and raise ``exception`` unless the reply is ok.

    Parameters
    ----------
    client : CallbackClient
        The client.
    exception : type
        Exception class raised for a non-ok reply.
    *msg_parms
        Request name and arguments (for :meth:`Message.request`).
    **kwargs
        ``timeout`` for :meth:`~CallbackClient.blocking_request`, ``mid``
        for :meth:`Message.request`.

    Returns
    -------
    reply : Message
        The reply, as :meth:`~CallbackClient.blocking_request` returns it.
    informs : list of Message
        The informs, as :meth:`~CallbackClient.blocking_request` returns them.

    Raises
    ------
    Exception
        The class given as ``exception``, if the reply is not ``ok``.
    """
    timeout = kwargs.get("timeout")
    req_kwargs = {"mid": kwargs["mid"]} if "mid" in kwargs else {}
    req_msg = Message.request(*msg_parms, **req_kwargs)
    if timeout is not None:
        reply, informs = client.blocking_request(req_msg, timeout=timeout)
    else:
        reply, informs = client.blocking_request(req_msg)
    if not reply.reply_ok():
        raise exception('Unexpected failure reply "{2}"\n with device at {0}, request \n"{1}"'
                        .format(client.bind_address_string, req_msg, reply))
    return reply, informs
