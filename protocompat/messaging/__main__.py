"""The example: ``python -m protocompat.messaging serve|client|demo``.

``serve`` runs a ground-station-like server (on 127.0.0.1 unless ``--host``
says otherwise; peers may read and write files only inside its working
directory, or ``--root``); ``client HOST`` runs a drone-like client against
it; ``demo`` runs both in one process on 127.0.0.1 and exits 0 once they have
exchanged actions, requests and a file.

Each side drives its selector loop the way clever-show's server and drone do:
the application owns the selector, registers each socket with ``data`` = its
:class:`ConnectionManager` and calls ``process_events`` for every ready key.
"""

import argparse
import logging
import os
import selectors
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from . import (ConnectionManager, FileAccess, NotifierSock, message_callback, request_callback,
               set_keepalive)
from ..netutil import LOOPBACK

_POLL_INTERVAL = 0.5  # seconds; the loop's select timeout
_CONNECT_TIMEOUT = 5.0
_EXCHANGE_TIMEOUT = 10.0
_DEFAULT_PORT = 25000

Output = Callable[[str], Any]


class _ExampleLoop:
    """A selector loop in its own thread, driving connections as clever-show does."""

    def __init__(self, name: str, file_access: FileAccess,
                 on_connect: Optional[Callable[[ConnectionManager], Any]] = None) -> None:
        self.name = name
        self.file_access = file_access
        self.on_connect = on_connect
        self.selector = selectors.DefaultSelector()
        self.connections: List[ConnectionManager] = []
        self._listener: Optional[socket.socket] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        NotifierSock().init(self.selector)

    def listen(self, host: str, port: int) -> Tuple[str, int]:
        """Accept peers on ``host:port``; return the bound address."""
        self._listener = socket.create_server((host, port))
        self._listener.setblocking(False)
        self.selector.register(self._listener, selectors.EVENT_READ, data=None)
        address: Tuple[str, int] = self._listener.getsockname()[:2]
        return address

    def connect(self, host: str, port: int) -> ConnectionManager:
        """Connect to a server (before :meth:`start`)."""
        sock = socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT)
        return self._attach(sock, sock.getpeername())

    def _attach(self, sock: socket.socket, addr: Any) -> ConnectionManager:
        sock.setblocking(False)
        try:
            set_keepalive(sock)
        except (NotImplementedError, OSError):
            pass
        connection = ConnectionManager()
        connection.file_access = self.file_access
        self.selector.register(sock, selectors.EVENT_READ, data=connection)
        connection.connect(self.selector, sock, addr)
        self.connections.append(connection)
        if self.on_connect is not None:
            self.on_connect(connection)
        return connection

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop; its thread closes every socket."""
        self._stop.set()
        NotifierSock().notify_selector(self.selector)
        self._thread.join(_CONNECT_TIMEOUT)

    def wait(self) -> None:
        """Block until the loop ends (Ctrl+C stops it)."""
        try:
            while self._thread.is_alive():
                self._thread.join(_POLL_INTERVAL)
        except KeyboardInterrupt:
            pass

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for key, mask in self.selector.select(timeout=_POLL_INTERVAL):
                    if key.data is None:
                        sock, addr = self._listener.accept()  # type: ignore[union-attr]
                        self._attach(sock, addr)
                    elif isinstance(key.data, NotifierSock):
                        key.data.process_events(mask)
                    else:
                        try:
                            key.data.process_events(mask)
                        except Exception as error:  # the connection is already closed
                            logging.getLogger(__name__).info("%s: %s left: %r", self.name,
                                                             key.data.addr, error)
                            self.connections.remove(key.data)
        finally:
            for connection in self.connections:
                connection._close()
            if self._listener is not None:
                self.selector.unregister(self._listener)
                self._listener.close()
            NotifierSock().forget(self.selector)
            self.selector.close()


def _sample_file(directory: str) -> str:
    path = os.path.join(directory, "animation.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("frame,x,y,z\n" + "".join("%d,0,0,%.1f\n" % (i, i / 10) for i in range(50)))
    return path


def _setup_server(sample: str, out: Output) -> Callable[[ConnectionManager], None]:
    """Register the server's handlers; return what it does with each new drone."""

    @message_callback("hello")
    def hello(connection: ConnectionManager, text: str) -> None:
        out("server: action hello(%r) from %s" % (text, connection.addr))

    @request_callback("time")
    def current_time(connection: ConnectionManager) -> float:
        return time.time()

    def greet(connection: ConnectionManager) -> None:
        connection.get_response("id", lambda c, value: out("server: drone id is %r" % (value,)))
        connection.send_message("takeoff", kwargs={"z": 1.5})
        connection.send_message("welcome", kwargs={"file": sample})
    return greet


def _run_client(loop: _ExampleLoop, host: str, port: int, directory: str,
                out: Output) -> threading.Event:
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

    def got_time(c: ConnectionManager, value: float) -> None:
        out("client: server time is %.3f" % value)
        step("time")

    connection = loop.connect(host, port)
    loop.start()
    connection.send_message("hello", ["drone here"])
    connection.get_response("time", got_time)
    return done


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # unwinds like Ctrl+C, so the sample directory is removed


def _serve(host: str, port: int, root: str, out: Output) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix=".messaging-example-", dir=root) as directory:
        greet = _setup_server(_sample_file(directory), out)
        server = _ExampleLoop("server", FileAccess(root), on_connect=greet)
        host, port = server.listen(host, port)
        out("server: listening on %s:%d, files confined to %s" % (host, port, root))
        server.start()
        try:
            server.wait()
        finally:
            server.stop()
    return 0


def _client(host: str, port: int, out: Output) -> int:
    with tempfile.TemporaryDirectory() as directory:
        client = _ExampleLoop("client", FileAccess(directory))
        try:
            ok = _run_client(client, host, port, directory, out).wait(_EXCHANGE_TIMEOUT)
        finally:
            client.stop()
    return 0 if ok else 1


def _demo(out: Output) -> int:
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as directory:
        greet = _setup_server(_sample_file(root), out)
        server = _ExampleLoop("demo-server", FileAccess(root), on_connect=greet)
        host, port = server.listen(LOOPBACK, 0)
        server.start()
        client = _ExampleLoop("demo-client", FileAccess(directory))
        try:
            ok = _run_client(client, host, port, directory, out).wait(_EXCHANGE_TIMEOUT)
        finally:
            client.stop()
            server.stop()
    out("demo: %s" % ("exchange complete" if ok else "timed out"))
    return 0 if ok else 1


def main(argv: Optional[List[str]] = None) -> int:
    """Run the example; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m protocompat.messaging",
                                     description="clever-show messaging example")
    parser.add_argument("--demo", action="store_true", help="run server and client in one process")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the example server")
    serve.add_argument("--host", default=LOOPBACK,
                       help="address to listen on (default %(default)s; 0.0.0.0 for every interface)")
    serve.add_argument("--port", type=int, default=_DEFAULT_PORT)
    serve.add_argument("--root", default=os.getcwd(),
                       help="the only directory peers may read and write files in "
                            "(default: the working directory)")
    client = commands.add_parser("client", help="run the drone-like client")
    client.add_argument("host")
    client.add_argument("--port", type=int, default=_DEFAULT_PORT)
    commands.add_parser("demo", help="run server and client in one process on 127.0.0.1")
    args = parser.parse_args(argv)
    # The demo's own disconnections are expected: show errors only there.
    demo = args.demo or args.command == "demo"
    logging.basicConfig(level=logging.ERROR if demo else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")

    def out(text: str) -> None:
        print(text, flush=True)

    try:
        if demo:
            return _demo(out)
        if args.command == "serve":
            return _serve(args.host, args.port, os.path.realpath(args.root), out)
        if args.command == "client":
            return _client(args.host, args.port, out)
    finally:
        NotifierSock().close()
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
