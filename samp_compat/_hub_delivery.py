"""Delivery of the hub's callbacks (``samp.client.*``) to registered clients.

Every recipient has its own outbox and at most :data:`PER_CLIENT_CONCURRENCY`
deliveries under way, so a delivery to one recipient never waits for another
recipient. Callbacks to an ``http://`` address are made on the hub's loop
(:mod:`samp_compat._delivery_http`): no thread waits for the client. Others
(``https://``, the hub's own client, Web Profile clients) run on delivery
threads of their recipient, started when work arrives and ended after
:data:`LANE_IDLE` seconds without work, through a pool of kept-alive
connections. Each outgoing call may take :data:`DELIVERY_TIMEOUT` seconds.
A recipient whose deliveries time out :data:`UNRESPONSIVE_AFTER` times in a
row is *unresponsive*: it keeps one delivery in flight, and every other
delivery to it fails at once, until a delivery succeeds again. A delivery in
progress is interrupted when its recipient leaves or the hub stops.
"""
import collections
import http.client
import logging
import socket
import threading
import time
import xmlrpc.client
from typing import Any, Callable, Deque, List, Optional, Set, Tuple

from protocompat.netutil import ExcepthookThread, SelectorLoop

from ._delivery_http import CallbackConnection, StaleConnection, http_target, request_bytes
from .utils import SAMPXXEServerProxy, ServerProxyPool

log = logging.getLogger("samp_compat.hub")

#: Seconds allowed for one callback to a client (connect and response).
DELIVERY_TIMEOUT = 10.0
#: Most deliveries running at once towards a single client.
PER_CLIENT_CONCURRENCY = 4
#: Most deliveries waiting for a single client; more fail at once.
MAX_OUTBOX = 10000
#: Pause between retries of a delivery that failed with a fault.
RETRY_PAUSE = 0.01
#: Timed-out deliveries in a row after which a client counts as unresponsive.
UNRESPONSIVE_AFTER = 2
#: Seconds a delivery thread waits for more work before it ends.
LANE_IDLE = 1.0

Done = Optional[Callable[[], None]]
_Item = Tuple[str, tuple, Done]


class Recipient:
    """Where and how the hub delivers callbacks to one registered client.

    Parameters
    ----------
    public_id : str
        The client's public id (for log messages).
    private_key : str
        The client's private key, the first argument of every callback.
    """

    def __init__(self, public_id: str, private_key: str) -> None:
        self.public_id = public_id
        self.private_key = private_key
        self.url: Optional[str] = None
        #: ``(host, port, path)`` of an ``http://`` url: delivered on the hub's loop.
        self.http: Optional[Tuple[str, int, str]] = None
        #: For the hub's own client: ``local(method, args)`` replaces XML-RPC.
        self.local: Optional[Callable[[str, tuple], Any]] = None
        #: For a Web Profile client: ``web_push(method, args)`` queues a callback.
        self.web_push: Optional[Callable[[str, tuple], bool]] = None
        self.closed = False
        self._outbox: Deque[_Item] = collections.deque()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._lanes = 0          # delivery threads serving this recipient
        self._idle_lanes = 0     # of which waiting for work
        self._in_flight = 0      # deliveries under way
        self._timeouts = 0       # timed-out deliveries in a row
        self._pool: Optional[ServerProxyPool] = None
        self._calls: List[CallbackConnection] = []  # loop thread only
        self._pump_due = False  # a pump of the outbox is scheduled on the loop

    @property
    def unresponsive(self) -> bool:
        """Whether the last :data:`UNRESPONSIVE_AFTER` deliveries all timed out."""
        return self._timeouts >= UNRESPONSIVE_AFTER

    def set_url(self, url: str) -> None:
        """Deliver to ``url`` from now on (connections to the old address are closed)."""
        with self._lock:
            self.url = url
            self.http = http_target(url)
            old, self._pool = self._pool, None
        if old is not None:
            old.shutdown()

    def _connections(self) -> Optional[ServerProxyPool]:
        with self._lock:
            if self.closed or not self.url:
                return None
            if self._pool is None:
                self._pool = ServerProxyPool(PER_CLIENT_CONCURRENCY, SAMPXXEServerProxy,
                                             self.url, allow_none=True,
                                             timeout=DELIVERY_TIMEOUT)
            return self._pool

    def close(self) -> int:
        """Drop pending deliveries, interrupt those under way, close the connections.

        Returns
        -------
        dropped : int
            How many queued deliveries were dropped.
        """
        with self._lock:
            self.closed = True
            dropped = len(self._outbox)
            self._outbox.clear()
            pool, self._pool = self._pool, None
            self._work.notify_all()
        if pool is not None:
            pool._abort()
            pool.shutdown()
        return dropped


class Deliverer:
    """Delivers callbacks, each recipient on its own threads.

    Parameters
    ----------
    on_dead : callable
        ``on_dead(recipient)`` when a client's callback address refuses
        connections or closes a fresh connection without answering.
    on_failed : callable
        ``on_failed(recipient, method, args, reason)`` when a delivery is
        given up (timed out, failed, or refused because the recipient is
        unresponsive); the hub answers failed calls with an error response.
    stopping : threading.Event
        Set when the hub stops; retries end early.
    n_retries : callable
        Returns how many attempts a delivery failing with a fault gets.
    """

    def __init__(self, on_dead: Callable[[Recipient], None],
                 on_failed: Callable[[Recipient, str, tuple, str], None],
                 stopping: threading.Event, n_retries: Callable[[], int]) -> None:
        self._on_dead = on_dead
        self._on_failed = on_failed
        self._stopping = stopping
        self._n_retries = n_retries
        self._cond = threading.Condition()
        self._outstanding = 0
        self._threads: Set[threading.Thread] = set()
        self._closed = False
        #: The hub's loop, on which ``http://`` callbacks are made (set once it exists).
        self.loop: Optional[SelectorLoop] = None

    def send(self, recipient: Recipient, method: str, args: tuple, done: Done = None) -> bool:
        """Deliver ``samp.client.<method>(private_key, *args)`` to ``recipient``.

        ``done()`` is called once the delivery is over, whatever its outcome.

        Returns
        -------
        accepted : bool
            False if the recipient is gone or the hub is stopping (``done``
            is then never called).
        """
        refused = ""
        start_lane = pump = False
        with recipient._lock:
            if recipient.closed or self._closed:
                return False
            busy = len(recipient._outbox) + recipient._in_flight
            if len(recipient._outbox) >= MAX_OUTBOX:
                refused = "too many deliveries waiting"
            elif recipient.unresponsive and busy > 0:
                refused = "client is not responding"
            elif self._on_loop(recipient):
                recipient._outbox.append((method, args, done))
                pump = not recipient._pump_due
                recipient._pump_due = True
            else:
                recipient._outbox.append((method, args, done))
                limit = 1 if recipient.unresponsive else PER_CLIENT_CONCURRENCY
                if recipient._idle_lanes:
                    recipient._work.notify()
                elif recipient._lanes < limit:
                    recipient._lanes += 1
                    start_lane = True
        if refused:
            log.warning("%s to %s not delivered: %s", method, recipient.public_id, refused)
            self._finish(recipient, method, args, done, refused)
            return True
        with self._cond:
            self._outstanding += 1
        if start_lane:
            self._start_lane(recipient)
        elif pump:
            loop = self.loop
            if loop is not None and loop.in_loop_thread():
                self._pump(recipient)
            elif loop is not None:
                loop.call_soon(self._pump, recipient)
        return True

    def _on_loop(self, recipient: Recipient) -> bool:
        """Whether deliveries to ``recipient`` are made on the loop (under its lock)."""
        return (recipient.http is not None and recipient.local is None
                and recipient.web_push is None and self.loop is not None)

    # -- deliveries on the loop ----------------------------------------------------
    def _pump(self, recipient: Recipient) -> None:
        """Start queued deliveries of ``recipient``, up to its limit (loop thread)."""
        while True:
            with recipient._lock:
                recipient._pump_due = False
                target = recipient.http
                limit = 1 if recipient.unresponsive else PER_CLIENT_CONCURRENCY
                if (recipient.closed or not recipient._outbox or target is None
                        or recipient._in_flight >= limit):
                    return
                recipient._in_flight += 1
                method, args, done = recipient._outbox.popleft()
            request = request_bytes("%s:%d" % target[:2], target[2], "samp.client." + method,
                                    (recipient.private_key,) + tuple(args))
            self._call(recipient, (method, args, done), request, 1, False)

    def _connection(self, recipient: Recipient) -> CallbackConnection:
        """An idle connection to ``recipient``'s address, or a new one (loop thread)."""
        host, port, _path = recipient.http  # type: ignore[misc]
        for conn in list(recipient._calls):
            if conn.closed:
                recipient._calls.remove(conn)
            elif not conn.busy and conn.address == (host, port):
                return conn

        def forget(closed: CallbackConnection) -> None:
            if closed in recipient._calls:
                recipient._calls.remove(closed)
        conn = CallbackConnection(self.loop, host, port,  # type: ignore[arg-type]
                                  DELIVERY_TIMEOUT, forget)
        recipient._calls.append(conn)
        return conn

    def _call(self, recipient: Recipient, item: _Item, request: bytes, attempt: int,
              retried: bool) -> None:
        if recipient.closed or recipient.http is None:
            self._done_on_loop(recipient, item, None if recipient.closed else "no callback address")
            return
        conn = self._connection(recipient)
        conn.call(request, lambda error: self._called(recipient, item, request, attempt, retried,
                                                      error))

    def _called(self, recipient: Recipient, item: _Item, request: bytes, attempt: int,
                retried: bool, error: Optional[BaseException]) -> None:
        """The outcome of one delivery attempt on the loop (see :meth:`_deliver`)."""
        method = item[0]
        failure: Optional[str] = None
        if error is None:
            with recipient._lock:
                recipient._timeouts = 0
        elif isinstance(error, xmlrpc.client.Fault):
            log.debug("%s to %s: fault %s (attempt %d)", method, recipient.public_id,
                      error.faultCode, attempt)
            attempts = max(1, int(self._n_retries()))
            if attempt < attempts and not self._stopping.is_set():
                self.loop.call_later(  # type: ignore[union-attr]
                    RETRY_PAUSE, self._call, recipient, item, request, attempt + 1, retried)
                return
            failure = ("hub stopping" if self._stopping.is_set()
                       else "delivery failed after %d attempts" % attempts)
            if not self._stopping.is_set():
                log.warning("%s to %s failed after %d attempts", method, recipient.public_id,
                            attempts)
        elif isinstance(error, StaleConnection) and not retried:
            self._call(recipient, item, request, attempt, True)
            return
        elif isinstance(error, ConnectionAbortedError):
            log.debug("%s to %s interrupted", method, recipient.public_id)
        elif isinstance(error, (ConnectionRefusedError, ConnectionResetError, BrokenPipeError)):
            log.warning("client %s is unreachable; unregistering it", recipient.public_id)
            self._done_on_loop(recipient, item, None)
            self._on_dead(recipient)
            return
        elif isinstance(error, socket.timeout):
            with recipient._lock:
                recipient._timeouts += 1
                newly = recipient._timeouts == UNRESPONSIVE_AFTER
            log.warning("%s to %s timed out after %g s; dropped%s", method, recipient.public_id,
                        DELIVERY_TIMEOUT, "; the client is unresponsive" if newly else "")
            if newly:
                self._fail_queued(recipient, "client is not responding")
            failure = "no answer within %g s" % DELIVERY_TIMEOUT
        else:
            log.warning("%s to %s failed (%s); dropped", method, recipient.public_id,
                        type(error).__name__)
            failure = "delivery failed (%s)" % type(error).__name__
        self._done_on_loop(recipient, item, failure)

    def _done_on_loop(self, recipient: Recipient, item: _Item, failure: Optional[str]) -> None:
        self._settle(recipient, item, failure)
        if recipient._outbox:
            self.loop.call_soon(self._pump, recipient)  # type: ignore[union-attr]

    def _settle(self, recipient: Recipient, item: _Item, failure: Optional[str]) -> None:
        """A delivery to ``recipient`` is over: free its slot, report it, count it done."""
        method, args, done = item
        with recipient._lock:
            recipient._in_flight -= 1
        self._finish(recipient, method, args, done, failure)
        with self._cond:
            self._outstanding -= 1
            self._cond.notify_all()

    def _start_lane(self, recipient: Recipient) -> None:
        thread = ExcepthookThread(None, target=self._lane, args=(recipient,), daemon=True,
                                  name="SAMPHubDelivery-%s" % recipient.public_id)
        with self._cond:
            self._threads.add(thread)
        thread.start()

    def _lane(self, recipient: Recipient) -> None:
        try:
            while True:
                item = self._next_item(recipient)
                if item is None:
                    return
                method, args, _done = item
                try:
                    failure = self._deliver(recipient, method, args)
                except Exception:
                    log.exception("delivery of %s to %s failed", method, recipient.public_id)
                    failure = "delivery failed"
                self._settle(recipient, item, failure)
        finally:
            with self._cond:
                self._threads.discard(threading.current_thread())
                self._cond.notify_all()

    def _next_item(self, recipient: Recipient) -> Optional[_Item]:
        """The next delivery for a lane of ``recipient``; None when the lane ends."""
        with recipient._lock:
            deadline = time.monotonic() + LANE_IDLE
            while not recipient._outbox and not recipient.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                recipient._idle_lanes += 1
                recipient._work.wait(left)
                recipient._idle_lanes -= 1
            if recipient.closed or not recipient._outbox:
                recipient._lanes -= 1
                return None
            recipient._in_flight += 1
            return recipient._outbox.popleft()

    def _finish(self, recipient: Recipient, method: str, args: tuple, done: Done,
                failure: Optional[str]) -> None:
        if failure:
            try:
                self._on_failed(recipient, method, args, failure)
            except Exception:
                log.exception("after the failed delivery of %s", method)
        if done is not None:
            try:
                done()
            except Exception:
                log.exception("after delivery of %s", method)

    def _deliver(self, recipient: Recipient, method: str, args: tuple) -> Optional[str]:
        """Make one delivery; return why it failed, or None."""
        if recipient.local is not None:
            try:
                recipient.local(method, args)
            except Exception:
                log.exception("hub client failed on %s", method)
            return None
        if recipient.web_push is not None:
            if not recipient.web_push(method, args):
                log.info("%s to web client %s dropped (no reverse callbacks)", method,
                         recipient.public_id)
            return None
        attempts = max(1, int(self._n_retries()))
        for attempt in range(attempts):
            pool = recipient._connections()
            if pool is None:
                log.info("%s to %s dropped: no callback address", method, recipient.public_id)
                return "no callback address"
            try:
                pool._call("samp.client." + method, (recipient.private_key,) + tuple(args))
            except xmlrpc.client.Fault as exc:
                log.debug("%s to %s: fault %s (attempt %d)", method, recipient.public_id,
                          exc.faultCode, attempt + 1)
                if self._stopping.wait(RETRY_PAUSE):
                    return "hub stopping"
                continue
            except ConnectionAbortedError:
                # Interrupted because the client left or the hub stops.
                log.debug("%s to %s interrupted", method, recipient.public_id)
                return None
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
                # The transport already retried a stale kept-alive connection
                # once; this failure happened on a fresh connection.
                log.warning("client %s is unreachable; unregistering it", recipient.public_id)
                self._on_dead(recipient)
                return None
            except socket.timeout:
                with recipient._lock:
                    recipient._timeouts += 1
                    newly = recipient._timeouts == UNRESPONSIVE_AFTER
                log.warning("%s to %s timed out after %g s; dropped%s", method,
                            recipient.public_id, DELIVERY_TIMEOUT,
                            "; the client is unresponsive" if newly else "")
                if newly:
                    self._fail_queued(recipient, "client is not responding")
                return "no answer within %g s" % DELIVERY_TIMEOUT
            except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError,
                    xmlrpc.client.ResponseError) as exc:
                log.warning("%s to %s failed (%s); dropped", method, recipient.public_id,
                            type(exc).__name__)
                return "delivery failed (%s)" % type(exc).__name__
            else:
                with recipient._lock:
                    recipient._timeouts = 0
                return None
        log.warning("%s to %s failed after %d attempts", method, recipient.public_id, attempts)
        return "delivery failed after %d attempts" % attempts

    def _fail_queued(self, recipient: Recipient, reason: str) -> None:
        """Give up every delivery waiting for ``recipient``."""
        with recipient._lock:
            items = list(recipient._outbox)
            recipient._outbox.clear()
        for method, args, done in items:
            self._finish(recipient, method, args, done, reason)
        with self._cond:
            self._outstanding -= len(items)
            self._cond.notify_all()

    def forget(self, recipient: Recipient) -> None:
        """Stop delivering to ``recipient`` (it left): pending deliveries are dropped."""
        dropped = recipient.close()
        with self._cond:
            self._outstanding -= dropped
            self._cond.notify_all()
        loop = self.loop
        if recipient._calls and loop is not None:
            if loop.in_loop_thread():
                self._close_calls(recipient)
            else:
                loop.call_soon(self._close_calls, recipient)

    @staticmethod
    def _close_calls(recipient: Recipient) -> None:
        for conn in list(recipient._calls):
            conn.close()  # a delivery under way ends as interrupted

    def drain(self, timeout: float) -> bool:
        """Wait until no delivery is queued or under way (at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._outstanding > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def shutdown(self, timeout: float) -> bool:
        """Refuse new deliveries and wait for the delivery threads to end.

        Recipients should be :meth:`forget`-ed first, so that no delivery hangs.

        Returns
        -------
        stopped : bool
            True if every delivery thread has ended within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            while self._threads:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True
