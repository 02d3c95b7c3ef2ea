"""Shared pieces of the messaging tests: a peer process, an inbox, a log watcher."""
import collections
import concurrent.futures
import json
import logging
import os
import selectors
import socket
import subprocess
import sys
import threading

PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer.py")
WAIT = 15.0  # seconds any single wait may take on a loaded machine


class PeerProcess:
    """``peer.py`` in a subprocess; stopped by closing its stdin."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, PEER_SCRIPT] + [str(a) for a in args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)

    def first_line(self, timeout=WAIT):
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise TimeoutError("peer printed nothing in %s s" % timeout)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("peer exited: %s" % self.proc.stderr.read().decode(errors="replace"))
        return json.loads(line)

    def stop(self, timeout=WAIT):
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode


class Inbox:
    """Values put by callbacks on the loop thread, awaited by the test thread."""

    def __init__(self):
        self._cond = threading.Condition()
        self._items = collections.defaultdict(list)

    def put(self, key, value):
        with self._cond:
            self._items[key].append(value)
            self._cond.notify_all()

    def wait(self, key, count=1, timeout=WAIT):
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._items[key]) >= count, timeout):
                raise AssertionError("waited %s s for %d x %r, have %r"
                                     % (timeout, count, key, self._items[key]))
            return list(self._items[key])

    def get(self, key):
        with self._cond:
            return list(self._items[key])


class LogWatcher(logging.Handler):
    """Collects records of a logger and lets a test wait for one that matches."""

    def __init__(self, name="protocompat.messaging"):
        super().__init__(logging.DEBUG)
        self._cond = threading.Condition()
        self.records = []
        self._logger = logging.getLogger(name)

    def __enter__(self):
        self._old_level = self._logger.level
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.setLevel(self._old_level)

    def emit(self, record):
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def messages(self, level=logging.DEBUG):
        with self._cond:
            return [r.getMessage() for r in self.records if r.levelno >= level]

    def count(self, text, level=logging.DEBUG):
        with self._cond:
            return sum(text in r.getMessage() and r.levelno >= level for r in self.records)

    def wait_for(self, text, level=logging.DEBUG, timeout=WAIT, count=1):
        def found():
            return sum(text in r.getMessage() and r.levelno >= level for r in self.records) >= count
        with self._cond:
            if not self._cond.wait_for(found, timeout):
                raise AssertionError("no %d log records with %r in %s s; got %r"
                                     % (count, text, timeout, [r.getMessage() for r in self.records][-5:]))


def request(connection, name, *args, timeout=None):
    """Send a request and return a Future of its value."""
    future = concurrent.futures.Future()
    connection.get_response(name, lambda c, value: future.set_result(value),
                            request_args=args, timeout=timeout)
    return future


class DirectLink:
    """A connection on one end of a loopback TCP pair, driven by the test thread itself.

    ``peer`` is the other end, a plain blocking socket. :meth:`pump` runs the
    selector and ``process_events`` until a condition holds, re-raising what
    ``process_events`` raises.
    """

    def __init__(self, connection):
        self.connection = connection
        self.selector = selectors.DefaultSelector()
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            self.peer = socket.create_connection(listener.getsockname(), timeout=WAIT)
            self.sock, addr = listener.accept()
        finally:
            listener.close()
        self.sock.setblocking(False)
        self.selector.register(self.sock, selectors.EVENT_READ, data=connection)
        connection.connect(self.selector, self.sock, addr)

    def pump(self, until=lambda: False, timeout=WAIT):
        """Handle events until ``until()`` is true or nothing happens for ``timeout`` seconds."""
        while not until():
            ready = self.selector.select(timeout)
            if not ready:
                return
            for key, mask in ready:
                key.data.process_events(mask)

    def close(self):
        self.connection._close()
        self.selector.close()
        self.sock.close()
        self.peer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
