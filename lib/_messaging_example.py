"""The runnable example of ``messaging``: ``python -m lib.messaging serve|client|demo``.

A selector loop (:class:`_Node`) that drives connections the way clever-show's
server and drone do: the application owns the selector and calls
``process_events`` for each ready connection. The benchmark and the tests use
it as their peer loop; ``messaging`` exposes its names (``messaging._Node``).
"""

import argparse
import collections
import importlib
import logging
import os
import selectors
import socket
import tempfile
import threading
import time
from typing import Any, Callable, List, Optional, Tuple


# Siblings are imported the way this module was (``lib.X`` or, with lib/ on sys.path, ``X``);
# the codec module, which needs no sibling, holds the helper that does it.
_import_sibling = importlib.import_module(
    (__package__ + "." if __package__ else "") + "_messaging_codec")._import_sibling


_messaging = _import_sibling("messaging")
_netutil = _messaging._netutil
ConnectionManager = _messaging.ConnectionManager
NotifierSock = _messaging.NotifierSock
message_callback = _messaging.message_callback
request_callback = _messaging.request_callback
set_keepalive = _messaging.set_keepalive
_unregister_quietly = _messaging._unregister_quietly
logger = _messaging.logger

_POLL_INTERVAL = 0.5  # seconds; the example loop's select timeout
_CONNECT_TIMEOUT = 5.0
_DEMO_TIMEOUT = 10.0
_DEFAULT_PORT = 25000


class _Node:
    """A selector loop driving connections the way clever-show's server and drone do."""

    def __init__(self, name: str = "messaging", on_connect: Optional[Callable[[Any], Any]] = None,
                 on_disconnect: Optional[Callable[[Any], Any]] = None) -> None:
        self.name = name
        self.selector = selectors.DefaultSelector()
        self.connections: List[ConnectionManager] = []
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self._listener: Optional[socket.socket] = None
        self._calls: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        NotifierSock().init(self.selector)

    def listen(self, host: str = _netutil.LOOPBACK, port: int = 0) -> Tuple[str, int]:
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
        self._listener = listener
        return listener.getsockname()[:2]

    def connect(self, host: str, port: int, connection: Optional[ConnectionManager] = None,
                timeout: float = _CONNECT_TIMEOUT) -> ConnectionManager:
        """Connect to a server and attach ``connection`` (a new one by default) on the loop."""
        connection = connection if connection is not None else ConnectionManager()
        sock = socket.create_connection((host, port), timeout=timeout)
        attached = threading.Event()

        def attach() -> None:
            try:
                self._attach(sock, sock.getpeername(), connection)
            finally:
                attached.set()
        self.call_soon(attach)
        if not attached.wait(timeout):
            raise TimeoutError("the loop did not attach the connection in %s s" % timeout)
        return connection

    def call_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the loop thread."""
        self._calls.append((function, args))
        NotifierSock()._notify_selector(self.selector)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = _CONNECT_TIMEOUT) -> bool:
        """Stop the loop and close its sockets; True if the loop thread ended."""
        self._stop.set()
        NotifierSock()._notify_selector(self.selector)
        if self._thread is None:
            self._shutdown()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _attach(self, sock: socket.socket, addr: Any, connection: ConnectionManager) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            set_keepalive(sock)
        except (NotImplementedError, OSError):
            pass
        self.selector.register(sock, selectors.EVENT_READ, data=connection)
        connection.connect(self.selector, sock, addr)
        if connection not in self.connections:
            self.connections.append(connection)
        if self.on_connect is not None:
            self.on_connect(connection)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, addr = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self._attach(sock, addr, ConnectionManager())

    def _run(self) -> None:
        select = self.selector.select
        stopping = self._stop.is_set
        calls = self._calls
        try:
            while not stopping():
                for key, mask in select(_POLL_INTERVAL):
                    data = key.data
                    if data is None:
                        self._accept()
                    elif isinstance(data, NotifierSock):
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

    def _ended(self, connection: ConnectionManager, error: Optional[Exception]) -> None:
        """Forget a connection whose events raised ``error`` or that closed."""
        if error is not None:
            logger.info("%s: connection to %s ended: %r", self.name, connection.addr, error)
            connection._close()
        if connection.socket is None and connection in self.connections:
            self.connections.remove(connection)
            if self.on_disconnect is not None:
                self.on_disconnect(connection)

    def _shutdown(self) -> None:
        for connection in list(self.connections):
            connection._close()
        self.connections.clear()
        if self._listener is not None:
            _unregister_quietly(self.selector, self._listener)
            self._listener.close()
            self._listener = None
        NotifierSock()._forget(self.selector)
        self.selector.close()


def _demo_file(directory: str) -> str:
    path = os.path.join(directory, "animation.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("frame,x,y,z\n" + "".join("%d,0,0,%.1f\n" % (i, i / 10) for i in range(50)))
    return path


def _run_server(node: _Node, directory: str, out: Callable[[str], Any]) -> None:
    """Set up the example server on ``node``: greets each drone and answers ``time``."""
    served_file = _demo_file(directory)

    @message_callback("hello")
    def hello(connection: ConnectionManager, text: str) -> None:
        out("server: action hello(%r) from %s" % (text, connection.addr))

    @request_callback("time")
    def current_time(connection: ConnectionManager) -> float:
        return time.time()

    def greet(connection: ConnectionManager) -> None:
        connection.get_response("id", lambda c, value: out("server: drone id is %r" % (value,)))
        connection.send_message("takeoff", kwargs={"z": 1.5})
        connection.send_message("welcome", kwargs={"file": served_file})
    node.on_connect = greet


def _run_client(node: _Node, host: str, port: int, directory: str,
                out: Callable[[str], Any]) -> threading.Event:
    """Connect a drone-like client; the returned event is set when the exchange is done."""
    done = threading.Event()
    steps = {"takeoff", "time", "file"}

    def step(name: str) -> None:
        steps.discard(name)
        if not steps:
            done.set()

    @request_callback("id")
    def drone_id(connection: ConnectionManager) -> str:
        return "copter01"

    @message_callback("takeoff")
    def takeoff(connection: ConnectionManager, z: float) -> None:
        out("client: action takeoff(z=%s)" % z)
        step("takeoff")

    @message_callback("welcome")
    def welcome(connection: ConnectionManager, file: str) -> None:
        target = os.path.join(directory, "received-" + os.path.basename(file))

        def received(c: ConnectionManager, value: bool, filepath: str) -> None:
            out("client: got file %s from the server (%d bytes)" % (os.path.basename(file),
                                                                   os.path.getsize(filepath)))
            step("file")
        connection.get_file(file, target, callback=received)

    connection = node.connect(host, port)
    connection.send_message("hello", ["drone here"])

    def got_time(c: ConnectionManager, value: float) -> None:
        out("client: server time is %.3f" % value)
        step("time")
    connection.get_response("time", got_time)
    return done


def _main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.messaging",
                                     description="clever-show messaging example")
    parser.add_argument("--demo", action="store_true", help="run server and client in one process")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the example server")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=_DEFAULT_PORT)
    client = commands.add_parser("client", help="run the drone-like client")
    client.add_argument("host")
    client.add_argument("--port", type=int, default=_DEFAULT_PORT)
    commands.add_parser("demo", help="run server and client in one process on 127.0.0.1")
    args = parser.parse_args(argv)
    # The demo's own disconnections are expected: show errors only there.
    quiet = args.demo or args.command == "demo"
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    out = lambda text: print(text, flush=True)  # noqa: E731

    with tempfile.TemporaryDirectory() as directory:
        if args.demo or args.command == "demo":
            server = _Node("demo-server")
            host, port = server.listen(_netutil.LOOPBACK, 0)
            _run_server(server, directory, out)
            server.start()
            drone = _Node("demo-client")
            drone.start()
            try:
                done = _run_client(drone, host, port, directory, out)
                ok = done.wait(_DEMO_TIMEOUT)
            finally:
                drone.stop()
                server.stop()
                NotifierSock().close()
            out("demo: %s" % ("exchange complete" if ok else "timed out"))
            return 0 if ok else 1
        if args.command == "serve":
            server = _Node("server")
            host, port = server.listen(args.host, args.port)
            _run_server(server, directory, out)
            out("server: listening on %s:%d" % (host, port))
            server.start()
            try:
                while server._thread is not None and server._thread.is_alive():
                    server._thread.join(_POLL_INTERVAL)
            except KeyboardInterrupt:
                pass
            finally:
                server.stop()
            return 0
        if args.command == "client":
            drone = _Node("client")
            drone.start()
            try:
                done = _run_client(drone, args.host, args.port, directory, out)
                ok = done.wait(_DEMO_TIMEOUT)
            finally:
                drone.stop()
            return 0 if ok else 1
    parser.print_help()
    return 2
