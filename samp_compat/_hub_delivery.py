"""Delivery of hub callbacks to clients through a bounded worker pool.

Each client has an outbox; at most :data:`PER_CLIENT_CONCURRENCY` deliveries
to one client run at a time, so a slow or hanging client holds only that many
workers, and every outgoing XML-RPC call has a socket timeout. Calls go through
the lean kept-alive transport of :mod:`samp_compat._transport`; a delivery in
progress is interrupted when its client leaves or the hub stops.
"""
import collections
import http.client
import logging
import socket
import threading
import time
import xmlrpc.client
from typing import Any, Callable, Deque, List, Optional, Tuple

from ._workers import WorkerPool
from ._transport import LeanSafeTransport, LeanTransport

log = logging.getLogger("samp_compat.hub")

#: Seconds allowed for one callback to a client (connect and response).
DELIVERY_TIMEOUT = 10.0
#: Most deliveries running at once towards a single client (at most pool_size // 4).
PER_CLIENT_CONCURRENCY = 4
#: Most deliveries waiting for a single client; more are dropped with a warning.
MAX_OUTBOX = 10000
#: Pause between retries of a delivery that failed with a fault.
RETRY_PAUSE = 0.01

Done = Optional[Callable[[], None]]


class ClientEndpoint:
    """The delivery state of one registered client.

    Parameters
    ----------
    public_id : str
    private_key : str
    """

    def __init__(self, public_id: str, private_key: str) -> None:
        self.public_id = public_id
        self.private_key = private_key
        self.url: Optional[str] = None
        #: For the hub's own client: ``local(method, args)`` replaces XML-RPC.
        self.local: Optional[Callable[[str, tuple], Any]] = None
        #: For a Web Profile client: ``web_push(method, args)`` queues a callback.
        self.web_push: Optional[Callable[[str, tuple], bool]] = None
        self.outbox: Deque[Tuple[str, tuple, Done]] = collections.deque()
        self.in_flight = 0
        self.closed = False
        self._proxies: List[xmlrpc.client.ServerProxy] = []
        self._busy: List[xmlrpc.client.ServerProxy] = []
        self._lock = threading.Lock()

    def set_url(self, url: str) -> None:
        """Use ``url`` for the callbacks from now on."""
        with self._lock:
            self.url = url
            old, self._proxies = self._proxies, []
        for proxy in old:
            proxy("close")()

    def _take_proxy(self) -> Optional[xmlrpc.client.ServerProxy]:
        with self._lock:
            if self.closed:
                return None
            if self._proxies:
                proxy = self._proxies.pop()
                self._busy.append(proxy)
                return proxy
            url = self.url
            if not url:
                return None
            transport_class = LeanSafeTransport if url.startswith("https:") else LeanTransport
            proxy = xmlrpc.client.ServerProxy(
                url, transport=transport_class(timeout=DELIVERY_TIMEOUT), allow_none=True)
            self._busy.append(proxy)
            return proxy

    def _give_proxy(self, proxy: xmlrpc.client.ServerProxy) -> None:
        with self._lock:
            if proxy in self._busy:
                self._busy.remove(proxy)
            if not self.closed and len(self._proxies) < PER_CLIENT_CONCURRENCY:
                self._proxies.append(proxy)
                return
        proxy("close")()

    def _discard_proxy(self, proxy: xmlrpc.client.ServerProxy) -> None:
        with self._lock:
            if proxy in self._busy:
                self._busy.remove(proxy)
        proxy("close")()

    def close(self) -> None:
        """Drop pending deliveries and close the connections to the client."""
        with self._lock:
            self.closed = True
            old, self._proxies = self._proxies, []
            busy = list(self._busy)
            self.outbox.clear()
        for proxy in old:
            proxy("close")()
        for proxy in busy:
            _interrupt(proxy)


def _interrupt(proxy: xmlrpc.client.ServerProxy) -> None:
    """Wake a thread blocked on ``proxy``'s socket; the thread closes the proxy."""
    proxy("transport").abort()


class Deliverer:
    """Runs deliveries on at most ``pool_size`` threads.

    Parameters
    ----------
    pool_size : int
    on_dead : callable
        ``on_dead(endpoint)`` when a client's callback address refuses connections
        or closes a fresh connection without answering.
    stopping : threading.Event
        Set when the hub stops; retries end early.
    n_retries : callable
        Returns how many attempts a delivery failing with a fault gets.
    """

    def __init__(self, pool_size: int, on_dead: Callable[[ClientEndpoint], None],
                 stopping: threading.Event, n_retries: Callable[[], int]) -> None:
        self._pool = WorkerPool(pool_size, "SAMPHubDelivery")
        # A hanging client never holds more than a quarter of the workers.
        self._per_client = max(1, min(PER_CLIENT_CONCURRENCY, int(pool_size) // 4))
        self._on_dead = on_dead
        self._stopping = stopping
        self._n_retries = n_retries
        self._cond = threading.Condition()
        self._outstanding = 0

    def send(self, endpoint: ClientEndpoint, method: str, args: tuple, done: Done = None) -> bool:
        """Queue ``samp.client.<method>(private_key, *args)`` for ``endpoint``.

        Returns
        -------
        queued : bool
            False if the client is gone or its outbox is full.
        """
        with endpoint._lock:
            if endpoint.closed:
                return False
            if len(endpoint.outbox) >= MAX_OUTBOX:
                log.warning("outbox of %s is full; %s dropped", endpoint.public_id, method)
                return False
            endpoint.outbox.append((method, args, done))
            start = endpoint.in_flight < self._per_client
            if start:
                endpoint.in_flight += 1
        if start:
            with self._cond:
                self._outstanding += 1
            self._pool.submit(self._run, endpoint)
        return True

    def _run(self, endpoint: ClientEndpoint) -> None:
        try:
            while True:
                with endpoint._lock:
                    if not endpoint.outbox:
                        endpoint.in_flight -= 1
                        return
                    method, args, done = endpoint.outbox.popleft()
                try:
                    self._deliver(endpoint, method, args)
                except Exception:
                    log.exception("delivery of %s to %s failed", method, endpoint.public_id)
                if done is not None:
                    try:
                        done()
                    except Exception:
                        log.exception("after delivery of %s", method)
        finally:
            with self._cond:
                self._outstanding -= 1
                self._cond.notify_all()

    def _deliver(self, endpoint: ClientEndpoint, method: str, args: tuple) -> None:
        if endpoint.local is not None:
            try:
                endpoint.local(method, args)
            except Exception:
                log.exception("hub client failed on %s", method)
            return
        if endpoint.web_push is not None:
            if not endpoint.web_push(method, args):
                log.info("%s to web client %s dropped (no reverse callbacks)", method,
                         endpoint.public_id)
            return
        attempts = max(1, int(self._n_retries()))
        for attempt in range(attempts):
            proxy = endpoint._take_proxy()
            if proxy is None:
                log.info("%s to %s dropped: no callback address", method, endpoint.public_id)
                return
            try:
                getattr(proxy.samp.client, method)(endpoint.private_key, *args)
            except xmlrpc.client.Fault as exc:
                endpoint._give_proxy(proxy)
                log.debug("%s to %s: fault %s (attempt %d)", method, endpoint.public_id,
                          exc.faultCode, attempt + 1)
                if self._stopping.wait(RETRY_PAUSE):
                    return
                continue
            except ConnectionAbortedError:
                # Interrupted because the client left or the hub stops.
                endpoint._discard_proxy(proxy)
                log.debug("%s to %s interrupted", method, endpoint.public_id)
                return
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
                # The transport already retried a stale kept-alive connection
                # once; this failure happened on a fresh connection.
                endpoint._discard_proxy(proxy)
                log.warning("client %s is unreachable; unregistering it", endpoint.public_id)
                self._on_dead(endpoint)
                return
            except socket.timeout:
                endpoint._discard_proxy(proxy)
                log.warning("%s to %s timed out after %.0f s; dropped", method,
                            endpoint.public_id, DELIVERY_TIMEOUT)
                return
            except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError,
                    xmlrpc.client.ResponseError) as exc:
                endpoint._discard_proxy(proxy)
                log.warning("%s to %s failed (%s); dropped", method, endpoint.public_id,
                            type(exc).__name__)
                return
            else:
                endpoint._give_proxy(proxy)
                return
        log.warning("%s to %s failed after %d attempts", method, endpoint.public_id, attempts)

    def drain(self, timeout: float) -> bool:
        """Wait until no delivery is queued or running (at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._outstanding:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def shutdown(self, timeout: float) -> bool:
        """Stop the workers (pending deliveries are dropped)."""
        return self._pool.shutdown(timeout)
