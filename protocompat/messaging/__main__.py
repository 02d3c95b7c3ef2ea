"""The example: ``python -m protocompat.messaging serve|client|demo``.

``serve`` runs a ground-station-like server (on 127.0.0.1 unless ``--host``
says otherwise; peers may read and write files only inside its working
directory, or ``--root``); ``client HOST`` runs a drone-like client against
it, and with ``--send``/``--get`` moves files to and from the server's
directory, showing progress for large files; ``demo`` runs both in one
process on 127.0.0.1 and exits 0 once they have exchanged actions, requests
and a file.

Each side drives its selector loop the way clever-show's server and drone do:
the application owns the selector, registers each socket with ``data`` = its
:class:`ConnectionManager` and calls ``process_events`` for every ready key.

A failure to listen or to connect (address in use, unknown host, connection
refused, no answer) is one line on stderr and exit status 1.
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

from ..cli import CommandError, add_logging_arguments, configure_logging, run
from ..netutil import LOOPBACK
from . import (ConnectionManager, FileAccess, NotifierSock, message_callback, request_callback,
               set_keepalive)

PROG = "python -m protocompat.messaging"
_POLL_INTERVAL = 0.5  # seconds; the loop's select timeout
_CONNECT_TIMEOUT = 5.0
#: Seconds the client waits for an answer (or, during a transfer, for progress) before giving up.
_EXCHANGE_TIMEOUT = 10.0
_DEFAULT_PORT = 25000
#: Files at least this large have their transfer progress shown.
PROGRESS_MIN_BYTES = 1024 * 1024
#: Seconds between two progress lines of one transfer.
PROGRESS_INTERVAL = 0.5
_MB = 1e6

Output = Callable[[str], Any]
logger = logging.getLogger(__name__)


class _ExampleLoop:
    """A selector loop in its own thread, driving connections as clever-show does."""

    def __init__(self, name: str, file_access: FileAccess,
                 on_connect: Optional[Callable[[ConnectionManager], Any]] = None,
                 on_disconnect: Optional[Callable[[ConnectionManager], Any]] = None) -> None:
        self.name = name
        self.file_access = file_access
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
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
        """Stop the loop; its thread (or this one, if it never started) closes every socket."""
        self._stop.set()
        if self._thread.ident is None:
            self._shutdown()
            return
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
                        try:
                            sock, addr = self._listener.accept()  # type: ignore[union-attr]
                        except (BlockingIOError, InterruptedError):
                            continue
                        self._attach(sock, addr)
                    elif isinstance(key.data, NotifierSock):
                        key.data.process_events(mask)
                    else:
                        try:
                            key.data.process_events(mask)
                        except Exception as error:  # the connection is already closed
                            logger.info("%s: %s left: %r", self.name, key.data.addr, error)
                            self.connections.remove(key.data)
                            if self.on_disconnect is not None:
                                self.on_disconnect(key.data)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        for connection in self.connections:
            connection._close()
        if self._listener is not None:
            self.selector.unregister(self._listener)
            self._listener.close()
        NotifierSock().forget(self.selector)
        self.selector.close()


class TransferProgress:
    """A ``progress(done, total)`` callback printing bytes, rate and percentage of a large file.

    Nothing is printed for files smaller than :data:`PROGRESS_MIN_BYTES`; for
    larger ones a line at most every :data:`PROGRESS_INTERVAL` seconds and one
    when the transfer is complete. :attr:`last` is the monotonic time of the
    last call (the client's sign that the transfer moves).
    """

    def __init__(self, label: str, out: Output) -> None:
        self.label = label
        self.out = out
        self.last = time.monotonic()
        self._start: Optional[Tuple[float, int]] = None  # time and bytes of the first call
        self._printed = 0.0
        self.done = 0
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        now = self.last = time.monotonic()
        self.done, self.total = done, total
        if self._start is None:
            self._start = (now, done)
        if total < PROGRESS_MIN_BYTES:
            return
        if done < total and now - self._printed < PROGRESS_INTERVAL:
            return
        self._printed = now
        started, first = self._start
        rate = (done - first) / max(now - started, 1e-6)
        self.out("%s: %.1f of %.1f MB (%d%%), %.1f MB/s"
                 % (self.label, done / _MB, total / _MB, done * 100 // total, rate / _MB))


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

    @request_callback("size")
    def file_size(connection: ConnectionManager, path: str) -> Optional[int]:
        """The size of a file the peer may read, or None."""
        try:
            return os.path.getsize(connection.file_access.check(path, "read"))
        except (OSError, TypeError, ValueError) as error:
            logger.warning("size of %r: %s", path, error)
            return None

    def greet(connection: ConnectionManager) -> None:
        connection.get_response("id", lambda c, value: out("server: drone id is %r" % (value,)))
        connection.send_message("takeoff", kwargs={"z": 1.5})
        connection.send_message("welcome", kwargs={"file": sample})
    return greet


class _Exchange:
    """What the client waits for: named steps, the connection's end, and transfers' progress."""

    def __init__(self, steps: List[str]) -> None:
        self.steps = set(steps)
        self.changed = threading.Condition()
        self.lost = False
        self.failure: Optional[str] = None
        self.transfers: List[TransferProgress] = []

    def step(self, name: str) -> None:
        with self.changed:
            self.steps.discard(name)
            self.changed.notify_all()

    def fail(self, reason: str) -> None:
        with self.changed:
            self.failure = self.failure or reason
            self.changed.notify_all()

    def disconnected(self, connection: ConnectionManager) -> None:
        with self.changed:
            self.lost = True
            self.changed.notify_all()

    def wait(self, where: str, timeout: float = _EXCHANGE_TIMEOUT) -> None:
        """Return once every step is done; CommandError if the server left, failed or went quiet."""
        last = time.monotonic()
        with self.changed:
            while self.steps and not self.lost and self.failure is None:
                moved = max([last] + [t.last for t in self.transfers])
                left = moved + timeout - time.monotonic()
                if left <= 0:
                    raise CommandError("no answer from %s for %.0f s (waiting for: %s)"
                                       % (where, timeout, ", ".join(sorted(self.steps))))
                self.changed.wait(min(left, _POLL_INTERVAL))
        if self.failure is not None:
            raise CommandError(self.failure)
        if self.steps:
            raise CommandError("%s closed the connection before the exchange was complete" % where)


def _run_client(loop: _ExampleLoop, host: str, port: int, directory: str, out: Output,
                send: Optional[str] = None, get: Optional[str] = None) -> _Exchange:
    """Connect a drone-like client; the returned exchange says when it is done."""
    steps = ["takeoff", "time", "file"] + (["send"] if send else []) + (["get"] if get else [])
    exchange = _Exchange(steps)
    loop.on_disconnect = exchange.disconnected

    @request_callback("id")
    def drone_id(connection: ConnectionManager) -> str:
        return "copter01"

    @message_callback("takeoff")
    def takeoff(connection: ConnectionManager, z: float) -> None:
        out("client: action takeoff(z=%s)" % z)
        exchange.step("takeoff")

    @message_callback("welcome")
    def welcome(connection: ConnectionManager, file: str) -> None:
        target = os.path.join(directory, "received-" + os.path.basename(file))

        def received(c: ConnectionManager, value: bool, filepath: str) -> None:
            out("client: got file %s from the server (%d bytes)" % (os.path.basename(file),
                                                                   os.path.getsize(filepath)))
            exchange.step("file")
        connection.get_file(file, target, callback=received)

    def got_time(c: ConnectionManager, value: float) -> None:
        out("client: server time is %.3f" % value)
        exchange.step("time")

    connection = loop.connect(host, port)
    loop.start()
    connection.send_message("hello", ["drone here"])
    connection.get_response("time", got_time)
    if send:
        _send(connection, send, exchange, out)
    if get:
        _get(connection, get, exchange, out)
    return exchange


def _send(connection: ConnectionManager, path: str, exchange: _Exchange, out: Output) -> None:
    """Push ``path`` to the server's directory, then ask the server for its size there."""
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise CommandError("cannot send %s: %s" % (path, error.strerror or error)) from None
    progress = TransferProgress("client: sending %s" % name, out)
    exchange.transfers.append(progress)

    def stored(c: ConnectionManager, value: Optional[int]) -> None:
        if value != size:
            exchange.fail("the server did not store %s (it has %r bytes of %d)" % (name, value, size))
            return
        out("client: sent %s (%d bytes)" % (name, size))
        exchange.step("send")
    connection.send_file(path, name, progress=progress)
    connection.get_response("size", stored, request_args=(name,))  # answered after the file


def _get(connection: ConnectionManager, path: str, exchange: _Exchange, out: Output) -> None:
    """Pull ``path`` from the server's directory into the working directory."""
    name = os.path.basename(path)
    progress = TransferProgress("client: receiving %s" % name, out)
    exchange.transfers.append(progress)

    def received(c: ConnectionManager, value: bool, filepath: str) -> None:
        out("client: got %s (%d bytes)" % (name, os.path.getsize(filepath)))
        exchange.step("get")

    def answered(c: ConnectionManager, value: Optional[int]) -> None:
        if value is None:
            exchange.fail("the server has no file %r it may send" % path)
            return
        c.get_file(path, name, callback=received, progress=progress)
    connection.get_response("size", answered, request_args=(path,))


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # unwinds like Ctrl+C, so the sample directory is removed


def _serve(host: str, port: int, root: str, out: Output) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.chdir(root)  # the peers' relative paths name files in the root
    with tempfile.TemporaryDirectory(prefix=".messaging-example-", dir=root) as directory:
        greet = _setup_server(_sample_file(directory), out)
        server = _ExampleLoop("server", FileAccess(root), on_connect=greet)
        try:
            host, port = server.listen(host, port)
        except BaseException:
            server.stop()
            raise
        out("server: listening on %s:%d, files confined to %s" % (host, port, root))
        server.start()
        try:
            server.wait()
        finally:
            server.stop()
    return 0


def _client(host: str, port: int, out: Output, send: Optional[str] = None,
            get: Optional[str] = None) -> int:
    with tempfile.TemporaryDirectory() as directory:
        client = _ExampleLoop("client", FileAccess(directory))
        try:
            _run_client(client, host, port, directory, out, send, get).wait("%s:%d" % (host, port))
        finally:
            client.stop()
    return 0


def _demo(out: Output) -> int:
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as directory:
        greet = _setup_server(_sample_file(root), out)
        server = _ExampleLoop("demo-server", FileAccess(root), on_connect=greet)
        host, port = server.listen(LOOPBACK, 0)
        server.start()
        client = _ExampleLoop("demo-client", FileAccess(directory))
        try:
            _run_client(client, host, port, directory, out).wait("the demo server")
        finally:
            client.stop()
            server.stop()
    out("demo: exchange complete")
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a port number: %r" % text) from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("port %d is not between 0 and 65535" % port)
    return port


def build_parser() -> argparse.ArgumentParser:
    """The example's command line."""
    parser = argparse.ArgumentParser(prog=PROG, description="clever-show messaging example")
    parser.add_argument("--demo", action="store_true",
                        help="run server and client in one process, as the demo command "
                             "(default: off)")
    commands = parser.add_subparsers(dest="command", metavar="{serve,client,demo}")
    serve = commands.add_parser("serve", help="run the example server",
                                description="Run the ground-station-like example server.")
    serve.add_argument("--host", default=LOOPBACK,
                       help="address to listen on; 0.0.0.0 for every interface (default: %(default)s)")
    serve.add_argument("--port", type=_port, default=_DEFAULT_PORT,
                       help="port to listen on; 0 lets the system choose (default: %(default)s)")
    serve.add_argument("--root", default=None,
                       help="the only directory peers may read and write files in "
                            "(default: the working directory)")
    add_logging_arguments(serve)
    client = commands.add_parser("client", help="run the drone-like client",
                                 description="Run the drone-like example client against a server.")
    client.add_argument("host", help="the server's address or name")
    client.add_argument("--port", type=_port, default=_DEFAULT_PORT,
                        help="the server's port (default: %(default)s)")
    client.add_argument("--send", metavar="FILE", default=None,
                        help="also send FILE to the server's directory, showing progress for "
                             "files of %d MiB or more (default: none)" % (PROGRESS_MIN_BYTES >> 20))
    client.add_argument("--get", metavar="PATH", default=None,
                        help="also fetch PATH (relative to the server's directory) into the "
                             "working directory, showing progress (default: none)")
    add_logging_arguments(client)
    demo = commands.add_parser("demo", help="run server and client in one process on 127.0.0.1",
                               description="Run server and client in one process on 127.0.0.1.")
    # The demo's own disconnections are expected: it shows errors only, by default.
    add_logging_arguments(demo, default_level="ERROR")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the example; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    demo = args.demo or args.command == "demo"
    if demo and args.command is None:
        args.log_level, args.verbose = "ERROR", 0
    if args.command is None and not demo:
        parser.print_help()
        return 2
    configure_logging(args)

    def out(text: str) -> None:
        print(text, flush=True)

    def command() -> int:
        if demo:
            return _demo(out)
        if args.command == "serve":
            root = os.path.realpath(args.root if args.root is not None else os.getcwd())
            if not os.path.isdir(root):
                raise CommandError("--root %s is not a directory" % root)
            return _serve(args.host, args.port, root, out)
        return _client(args.host, args.port, out, args.send, args.get)

    try:
        return run(command, prog=PROG.split()[-1],
                   address=lambda: (getattr(args, "host", LOOPBACK), getattr(args, "port", 0)))
    finally:
        NotifierSock().close()


if __name__ == "__main__":
    sys.exit(main())
