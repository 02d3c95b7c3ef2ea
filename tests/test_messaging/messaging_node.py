"""The tests' peer loop: a selector loop in its own thread, driving connections as clever-show does.

The application owns the selector and calls ``process_events`` for each ready
connection; this node adds what tests need on top: ``call_soon``, a
``connect`` that waits for the loop, connect/disconnect hooks, and a ``stop``
that closes every socket.
"""
import collections
import logging
import selectors
import socket
import threading

from protocompat import messaging
from protocompat.netutil import LOOPBACK

POLL_INTERVAL = 0.5  # seconds; the loop's select timeout
CONNECT_TIMEOUT = 5.0

logger = logging.getLogger(__name__)


class Node:
    """A selector loop driving messaging connections, as clever-show's server and drone do."""

    def __init__(self, name="messaging", on_connect=None, on_disconnect=None,
                 connection_factory=messaging.ConnectionManager):
        self.name = name
        self.selector = selectors.DefaultSelector()
        self.connections = []
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.connection_factory = connection_factory
        self.listener = None
        self._calls = collections.deque()
        self._stop = threading.Event()
        self._thread = None
        messaging.NotifierSock().init(self.selector)

    def listen(self, host=LOOPBACK, port=0):
        """Listen for peers (before :meth:`start`); return the bound address."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((host, port))
            listener.listen()
            listener.setblocking(False)
            self.selector.register(listener, selectors.EVENT_READ, data=None)
        except BaseException:
            listener.close()
            raise
        self.listener = listener
        return listener.getsockname()[:2]

    def connect(self, host, port, connection=None, timeout=CONNECT_TIMEOUT):
        """Connect to a server and attach ``connection`` (a new one by default) on the loop."""
        connection = connection if connection is not None else self.connection_factory()
        sock = socket.create_connection((host, port), timeout=timeout)
        attached = threading.Event()

        def attach():
            try:
                self._attach(sock, sock.getpeername(), connection)
            finally:
                attached.set()
        self.call_soon(attach)
        if not attached.wait(timeout):
            raise TimeoutError("the loop did not attach the connection in %s s" % timeout)
        return connection

    def call_soon(self, function, *args):
        """Run ``function(*args)`` on the loop thread."""
        self._calls.append((function, args))
        messaging.NotifierSock().notify_selector(self.selector)

    def start(self):
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout=CONNECT_TIMEOUT):
        """Stop the loop and close its sockets; True if the loop thread ended."""
        self._stop.set()
        messaging.NotifierSock().notify_selector(self.selector)
        if self._thread is None:
            self._shutdown()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _attach(self, sock, addr, connection):
        sock.setblocking(False)
        try:
            messaging.set_keepalive(sock)
        except (NotImplementedError, OSError):
            pass
        self.selector.register(sock, selectors.EVENT_READ, data=connection)
        connection.connect(self.selector, sock, addr)
        if connection not in self.connections:
            self.connections.append(connection)
        if self.on_connect is not None:
            self.on_connect(connection)

    def _accept(self):
        try:
            sock, addr = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self._attach(sock, addr, self.connection_factory())

    def _run(self):
        select = self.selector.select
        stopping = self._stop.is_set
        calls = self._calls
        try:
            while not stopping():
                for key, mask in select(POLL_INTERVAL):
                    data = key.data
                    if data is None:
                        self._accept()
                    elif isinstance(data, messaging.NotifierSock):
                        data.process_events(mask)
                    else:
                        try:
                            data.process_events(mask)
                        except Exception as error:
                            self._ended(data, error)
                        else:
                            if data.socket is None:
                                self._ended(data, None)
                while calls:
                    function, args = calls.popleft()
                    try:
                        function(*args)
                    except Exception:
                        logger.exception("%s: call %r failed", self.name, function)
        finally:
            self._shutdown()

    def _ended(self, connection, error):
        """Forget a connection whose events raised ``error`` or that closed."""
        if error is not None:
            logger.info("%s: connection to %s ended: %r", self.name, connection.addr, error)
            connection._close()
        if connection.socket is None and connection in self.connections:
            self.connections.remove(connection)
            if self.on_disconnect is not None:
                self.on_disconnect(connection)

    def _shutdown(self):
        for connection in list(self.connections):
            connection._close()
        self.connections.clear()
        if self.listener is not None:
            try:
                self.selector.unregister(self.listener)
            except (KeyError, ValueError):
                pass
            self.listener.close()
            self.listener = None
        messaging.NotifierSock().forget(self.selector)
        self.selector.close()
