"""Both ends of each implementation measured by ``bench_katcp.py``.

Four implementations, each with its own server and its own client:

* ``katcp``: katcp 0.9.3's ``DeviceServer`` and ``BlockingClient`` (tornado threads);
* ``aiokatcp``: aiokatcp's ``DeviceServer`` and ``Client`` (asyncio, one thread);
* ``protocompat``: katcp_compat's ``DeviceServer`` and ``BlockingClient``;
* ``limit``: the physical limit, benchlib's bare ``selectors`` server answering
  ``?watchdog`` with ``!watchdog ok`` inline, and a client blocking on ``recv``.

Every device has an integer sensor ``counter`` and a request ``?burst N`` that sets
the sensor to 1, 2, ..., N before replying.

A client measure is ``measure(port, n_clients, go) -> (count, seconds)``: it
connects, calls ``go()`` (which blocks until every client process is ready and
returns ``(start, deadline)`` on the :func:`time.monotonic` clock), works, and
returns what it counted and over how long.
"""
import asyncio
import logging
import os
import selectors
import socket
import threading
import time
import warnings
from typing import Any, Callable, List, Tuple

import benchlib
from benchlib import LOOPBACK, serve_bare_selectors

WATCHDOG = b"?watchdog\n"
WATCHDOG_OK = b"!watchdog ok\n"
#: Seconds any single wait of a client may take.
WAIT = 30.0
#: Greeting lines a KATCP v5 server sends on connect (#version-connect x 3).
GREETING_LINES = 3
#: The counter's value before a burst, as the argument of a ``#sensor-status``.
INITIAL_VALUE = (b"0", "0")

IMPLEMENTATIONS = ("katcp", "aiokatcp", "protocompat", "limit")
TITLES = {"katcp": "katcp 0.9.3", "aiokatcp": "aiokatcp", "protocompat": "protocompat",
          "limit": "physical limit"}

Go = Callable[[], Tuple[float, float]]


def threaded_lib(impl: str) -> Any:
    """The module of a threaded implementation."""
    if impl == "katcp":
        import katcp
        return katcp
    import katcp_compat
    return katcp_compat


def installed(impl: str) -> bool:
    """Whether the implementation can be imported here."""
    try:
        if impl == "aiokatcp":
            import aiokatcp  # noqa: F401
        elif impl != "limit":
            threaded_lib(impl)
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- servers

def make_threaded_device(lib: Any) -> Any:
    """A device class of katcp 0.9.3 or katcp_compat with ``counter`` and ``?burst``."""
    class Device(lib.DeviceServer):
        VERSION_INFO = ("bench", 1, 0)
        BUILD_INFO = ("bench", 1, 0, "")

        def setup_sensors(self):
            self.counter = lib.Sensor.integer("counter", "A counter", "", [0, 10 ** 9])
            self.add_sensor(self.counter)

        def request_burst(self, req, msg):
            """Set the counter to 1, 2, ..., N (?burst N)."""
            for value in range(1, int(msg.arguments[0]) + 1):
                self.counter.set_value(value)
            return req.make_reply("ok")

    return Device


def start_threaded_server(impl: str) -> Any:
    server = make_threaded_device(threaded_lib(impl))(LOOPBACK, 0)
    server.start(timeout=WAIT)
    return server


def stop_threaded_server(server: Any) -> None:
    server.stop()
    server.join(timeout=WAIT)


def make_aiokatcp_device(port: int = 0) -> Any:
    import aiokatcp

    class Device(aiokatcp.DeviceServer):
        VERSION = "bench-1.0"
        BUILD_STATE = "bench-1.0"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.counter = aiokatcp.Sensor(int, "counter", "A counter")
            self.sensors.add(self.counter)

        async def request_burst(self, ctx: Any, n: int) -> None:
            """Set the counter to 1, 2, ..., N."""
            counter = self.counter
            for value in range(1, n + 1):
                counter.value = value

    return Device(LOOPBACK, port)


def aiokatcp_port(server: Any) -> int:
    return server.server.sockets[0].getsockname()[1]


def quiet() -> None:
    """No log records or warnings on the terminal (dropped clients are expected)."""
    logging.basicConfig(level=logging.CRITICAL)
    warnings.simplefilter("ignore")


def serve(pipe: Any, impl: str) -> None:
    """Server process: send ``(port, pid)``, serve until anything arrives on ``pipe``."""
    quiet()
    if impl == "limit":
        serve_bare_selectors(_PortAndPid(pipe), WATCHDOG_OK)
    elif impl == "aiokatcp":
        asyncio.run(_serve_aiokatcp(pipe))
    else:
        server = start_threaded_server(impl)
        pipe.send((server.bind_address[1], os.getpid()))
        benchlib.wait_for_stop(pipe)
        stop_threaded_server(server)


class _PortAndPid:
    """Makes the bare server send ``(port, pid)`` as the others do."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe

    def send(self, port: int) -> None:
        self._pipe.send((port, os.getpid()))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)


async def _serve_aiokatcp(pipe: Any) -> None:
    server = make_aiokatcp_device()
    await server.start()
    pipe.send((aiokatcp_port(server), os.getpid()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(pipe.fileno(), stop.set)
    await stop.wait()
    loop.remove_reader(pipe.fileno())
    await server.stop()


# --------------------------------------------------------------------------- round trips

def round_trips(impl: str, port: int, n_clients: int, go: Go) -> Tuple[int, float]:
    """``?watchdog`` round trips of ``n_clients`` clients, one request in flight each
    (threaded clients: one thread per client; aiokatcp: one task per client, one loop)."""
    if impl == "aiokatcp":
        return asyncio.run(_aiokatcp_round_trips(port, n_clients, go))
    if impl == "limit":
        socks = [socket.create_connection((LOOPBACK, port), timeout=WAIT)
                 for _ in range(n_clients)]
        for sock in socks:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return _threads_until_deadline([_raw_watchdog(sock) for sock in socks], go)
        finally:
            for sock in socks:
                sock.close()
    lib = threaded_lib(impl)
    clients = [_start_threaded_client(lib, port) for _ in range(n_clients)]
    try:
        return _threads_until_deadline([_blocking_watchdog(lib, c) for c in clients], go)
    finally:
        for client in clients:
            client.stop()
            client.join(timeout=WAIT)


def _start_threaded_client(lib: Any, port: int, cls: Any = None) -> Any:
    client = (cls or lib.BlockingClient)(LOOPBACK, port)
    client.start(timeout=WAIT)
    if not client.wait_protocol(WAIT):
        raise RuntimeError("no protocol information from the server at port %d" % port)
    return client


def _blocking_watchdog(lib: Any, client: Any) -> Callable[[], None]:
    request = lib.Message.request

    def one() -> None:
        reply, _ = client.blocking_request(request("watchdog"))
        if not reply.reply_ok():
            raise RuntimeError("watchdog failed: %s" % reply)
    return one


def _raw_watchdog(sock: socket.socket) -> Callable[[], None]:
    size = len(WATCHDOG_OK)

    def one() -> None:
        sock.sendall(WATCHDOG)
        got = 0
        while got < size:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed")
            got += len(chunk)
    return one


def _threads_until_deadline(jobs: List[Callable[[], None]], go: Go) -> Tuple[int, float]:
    counts = [0] * len(jobs)
    errors: List[BaseException] = []
    times = [0.0, 0.0]
    ready = threading.Barrier(len(jobs) + 1)

    def work(i: int) -> None:
        job = jobs[i]
        ready.wait()
        start, deadline = times
        now = time.monotonic()
        if start > now:
            time.sleep(start - now)
        count = 0
        try:
            while time.monotonic() < deadline:
                job()
                count += 1
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        counts[i] = count

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    times[:] = go()
    ready.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(counts), times[1] - times[0]


async def _aiokatcp_round_trips(port: int, n_clients: int, go: Go) -> Tuple[int, float]:
    import aiokatcp
    clients = [await aiokatcp.Client.connect(LOOPBACK, port) for _ in range(n_clients)]
    try:
        start, deadline = go()
        await asyncio.sleep(max(0.0, start - time.monotonic()))

        async def work(client: Any) -> int:
            count = 0
            while time.monotonic() < deadline:
                await client.request("watchdog")
                count += 1
            return count

        counts = await asyncio.gather(*(work(client) for client in clients))
        return sum(counts), deadline - start
    finally:
        for client in clients:
            client.close()
            await client.wait_closed()


# --------------------------------------------------------------------------- sensor events

def sensor_events(impl: str, port: int, n_events: int, go: Go) -> Tuple[int, float]:
    """``#sensor-status`` informs received by one client (``event`` strategy) while the
    server sets its sensor ``n_events`` times; seconds from ``?burst`` to the last one."""
    if impl == "aiokatcp":
        return asyncio.run(_aiokatcp_events(port, n_events, go))
    lib = threaded_lib(impl)
    done = threading.Event()
    received = [0]

    class Listener(lib.BlockingClient):
        def inform_sensor_status(self, msg):
            """Count the burst's readings (not the reading of the subscription)."""
            if msg.arguments[-1] not in INITIAL_VALUE:
                received[0] += 1
                if received[0] == n_events:
                    done.set()

    client = _start_threaded_client(lib, port, Listener)
    try:
        reply, _ = client.blocking_request(lib.Message.request("sensor-sampling", "counter",
                                                               "event"))
        if not reply.reply_ok():
            raise RuntimeError("sensor-sampling failed: %s" % reply)
        go()
        start = time.monotonic()
        reply, _ = client.blocking_request(lib.Message.request("burst", n_events), timeout=WAIT)
        if not reply.reply_ok():
            raise RuntimeError("burst failed: %s" % reply)
        done.wait(WAIT)
        return received[0], time.monotonic() - start
    finally:
        client.stop()
        client.join(timeout=WAIT)


async def _aiokatcp_events(port: int, n_events: int, go: Go) -> Tuple[int, float]:
    import aiokatcp
    done = asyncio.Event()
    received = [0]

    class Listener(aiokatcp.Client):
        def handle_inform(self, msg: Any) -> None:
            if msg.name == "sensor-status" and msg.arguments[-1] not in INITIAL_VALUE:
                received[0] += 1
                if received[0] == n_events:
                    done.set()
            elif msg.name != "sensor-status":
                super().handle_inform(msg)

    client = await Listener.connect(LOOPBACK, port)
    try:
        await client.request("sensor-sampling", "counter", "event")
        go()
        start = time.monotonic()
        await client.request("burst", n_events)
        await asyncio.wait_for(done.wait(), WAIT)
        return received[0], time.monotonic() - start
    finally:
        client.close()
        await client.wait_closed()


# --------------------------------------------------------------------------- connections

def connect_cycles(impl: str, port: int, _n: int, go: Go) -> Tuple[int, float]:
    """Connect, read the greeting, disconnect (raw sockets: the server's cost)."""
    start, deadline = go()
    time.sleep(max(0.0, start - time.monotonic()))
    cycles = 0
    while time.monotonic() < deadline:
        with socket.create_connection((LOOPBACK, port), timeout=WAIT) as sock:
            read_lines(sock, GREETING_LINES)
        cycles += 1
    return cycles, deadline - start


def read_lines(sock: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("server closed after %r" % data)
        data += chunk
    return data


def hold_clients(port: int, n_clients: int) -> Tuple[List[socket.socket], int]:
    """Connect ``n_clients`` raw sockets one after the other, each reading its greeting;
    then each makes one ``?watchdog``. Returns the sockets (to close) and how many got
    no reply. (aiokatcp tells every client of each new one with ``#client-connected``.)"""
    socks = []
    try:
        for _ in range(n_clients):
            sock = socket.create_connection((LOOPBACK, port), timeout=WAIT)
            socks.append(sock)
            data = b""
            while data.count(b"#version-connect") < GREETING_LINES:
                chunk = sock.recv(65536)
                if not chunk:
                    raise EOFError("server closed after %r" % data)
                data += chunk
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    for sock in socks:
        sock.sendall(WATCHDOG)
    return socks, n_clients - _count_replies(socks, time.monotonic() + WAIT)


def _count_replies(socks: List[socket.socket], deadline: float) -> int:
    """Read every socket until it has a ``!watchdog ok`` line (or the deadline passes)."""
    sel = selectors.DefaultSelector()
    data = {}
    for sock in socks:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
        data[sock] = b""
    ok = 0
    while data and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            sock = key.fileobj
            try:
                chunk = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            data[sock] = got = data[sock][-len(WATCHDOG_OK):] + chunk
            if not chunk or WATCHDOG_OK in got:
                ok += bool(chunk)
                sel.unregister(sock)
                del data[sock]
    sel.close()
    return ok


# --------------------------------------------------------------------------- both ends here

def in_process(figure: Callable[..., Tuple[int, float]], impl: str, n: int,
               seconds: float) -> Tuple[int, float]:
    """Run a client measure against a server of the same implementation in this process
    (aiokatcp: both on one event loop)."""
    def go() -> Tuple[float, float]:
        now = time.monotonic()
        return now, now + seconds

    if impl == "aiokatcp":
        return asyncio.run(_aiokatcp_in_process(figure, n, go))
    server = start_threaded_server(impl)
    try:
        return figure(impl, server.bind_address[1], n, go)
    finally:
        stop_threaded_server(server)


async def _aiokatcp_in_process(figure: Callable[..., Any], n: int, go: Go) -> Tuple[int, float]:
    server = make_aiokatcp_device()
    await server.start()
    try:
        port = aiokatcp_port(server)
        if figure is round_trips:
            return await _aiokatcp_round_trips(port, n, go)
        return await _aiokatcp_events(port, n, go)
    finally:
        await server.stop()
