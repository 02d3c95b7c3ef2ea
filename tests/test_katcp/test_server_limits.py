"""Bad input and resource limits of the server: nothing a client sends or fails
to read may crash the loop or hurt other clients."""

import selectors
import socket
import struct
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from katcp_compat.core import Message
from katcp_io_helpers import WAIT, ExampleDevice, RawClient, started

MIB = 1024 * 1024


class Watched(ExampleDevice):
    """Records disconnects."""

    def setup_sensors(self):
        super().setup_sensors()
        self.disconnects = []
        self.disconnected = threading.Event()
        self.changed = threading.Condition()

    def on_client_disconnect(self, client_conn, msg, connection_valid):
        super().on_client_disconnect(client_conn, msg, connection_valid)
        with self.changed:
            self.disconnects.append((msg, connection_valid))
            self.changed.notify_all()
        self.disconnected.set()


@pytest.fixture
def server():
    srv = started(Watched("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


def _connected(srv):
    raw = RawClient(srv.bind_address)
    raw.skip_greeting()
    return raw


def test_line_over_2_mib_closes_that_connection_only(server):
    victim, bystander = _connected(server), _connected(server)
    try:
        victim.sock.sendall(b"?echo " + b"x" * (2 * MIB + 10))
        assert victim.read_to_eof() == ""
        assert server.disconnected.wait(WAIT)
        assert server.disconnects[0][1] is False
        assert bystander.request("?watchdog") == ["!watchdog ok"]
    finally:
        victim.close()
        bystander.close()


def test_line_just_under_the_limit_is_accepted(server):
    raw = _connected(server)
    try:
        arg = "y" * (MIB)
        assert raw.request("?echo " + arg) == ["!echo ok " + arg]
    finally:
        raw.close()


def test_client_that_does_not_read_is_dropped(server):
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(server.bind_address)
    bystander = _connected(server)
    try:
        local = "%s:%d" % slow.getsockname()
        conn = None
        for _ in range(2):  # the connect hook may still be queued
            server.sync_with_ioloop(WAIT)
            conn = next((c for c in list(server._client_conns) if c.address == local), None)
        assert conn is not None
        big = Message.inform("blob", "z" * MIB)
        sent = 0
        while conn.inform(big) and sent < 64:
            sent += 1
        assert sent < 64, "a non-reading client was never dropped"
        assert server.disconnected.wait(WAIT)
        assert bystander.request("?watchdog") == ["!watchdog ok"]
    finally:
        slow.close()
        bystander.close()


def test_vanished_peer_is_cleaned_up(server):
    raw = _connected(server)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # RST
    assert server.disconnected.wait(WAIT)
    assert server.disconnects == [(server.disconnects[0][0], False)]
    assert server._client_conns == set()


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_never_break_the_server(server, seed):
    raw = _connected(server)
    try:
        rng = __import__("random").Random(seed)
        junk = bytes(rng.randrange(256) for _ in range(4096))
        raw.sock.sendall(junk + b"\n")
        assert raw.request("?watchdog[99]", "!watchdog[99]")[-1] == "!watchdog[99] ok"
    finally:
        raw.close()


def test_stop_returns_in_time_while_a_handler_blocks():
    release, entered = threading.Event(), threading.Event()

    class Stuck(ExampleDevice):
        def request_stuck(self, req, msg):
            """Block until released."""
            entered.set()
            release.wait(WAIT)
            return req.make_reply("ok")

    srv = started(Stuck("127.0.0.1", 0))
    raw = _connected(srv)
    try:
        raw.send("?stuck")
        assert entered.wait(WAIT)
        started_at = time.monotonic()
        srv.stop(0.5)
        assert time.monotonic() - started_at < 1.5
        assert "#disconnect Device\\_server\\_shutting\\_down." in raw.read_to_eof()
    finally:
        release.set()
        srv.join(WAIT)
        raw.close()


def test_many_clients_connect_and_leave(server):
    clients = [RawClient(server.bind_address) for _ in range(50)]
    for raw in clients:
        raw.skip_greeting()
    for raw in clients:
        raw.close()
    with server.changed:
        assert server.changed.wait_for(lambda: len(server.disconnects) == 50, WAIT)
    probe = _connected(server)
    try:
        assert probe.request("?client-list")[-1] == "!client-list ok 1"
    finally:
        probe.close()


def _send_until_stalled(sock, data, stall):
    """Send ``data`` until the peer stops taking bytes for ``stall`` seconds; bytes sent."""
    view = memoryview(data)
    sent = 0
    sock.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE)
        while sent < len(data) and sel.select(stall):
            try:
                sent += sock.send(view[sent:sent + 65536])
            except BlockingIOError:
                pass
    sock.settimeout(WAIT)
    return sent


def test_flooding_client_is_paused_then_served_in_full():
    release, entered = threading.Event(), threading.Event()

    class Slow(ExampleDevice):
        MAX_QUEUED_PER_CLIENT = 10
        # The replies (1 MiB each) may pile up while this test reads them; the
        # bound of a client's unsent output is not what is tested here.
        MAX_WRITE_BUFFER_SIZE = 1 << 30

        def request_gate(self, req, msg):
            """Block until released."""
            entered.set()
            release.wait(WAIT)
            return req.make_reply("ok")

    srv = started(Slow("127.0.0.1", 0))
    raw = _connected(srv)
    request = b"?echo " + b"f" * MIB + b"\n"
    flood = request * 200
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(raw.read_until("!watchdog")))
    try:
        raw.send("?gate")
        assert entered.wait(WAIT)
        sent = _send_until_stalled(raw.sock, flood, stall=0.5)
        # With the handler busy the server stops reading from this client once
        # ten of its messages wait, instead of taking 200 MiB into memory.
        assert sent < len(flood) // 2
        reader.start()
        release.set()
        whole, part = divmod(sent, len(request))
        raw.sock.sendall(request[part:] if part else b"")
        raw.send("?watchdog")
        reader.join(WAIT * 4)
        echoes = whole + (1 if part else 0)
        assert lines[0] == "!gate ok"
        assert [line == "!echo ok " + "f" * MIB for line in lines[1:-1]] == [True] * echoes
        assert lines[-1] == "!watchdog ok"  # reading has resumed
    finally:
        release.set()
        raw.close()
        srv.stop(WAIT)
        if reader.is_alive():
            reader.join(WAIT)


@pytest.fixture(scope="module")
def shared_server():
    srv = started(Watched("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=60), max_size=12),
       eol=st.sampled_from([b"\n", b"\r", b"\r\n"]))
def test_messages_split_anywhere_are_reassembled(shared_server, cuts, eol):
    payload = b"".join(b"?echo %d a\\_b" % i + eol for i in range(5))
    raw = _connected(shared_server)
    try:
        raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pos = 0
        for cut in cuts:
            raw.sock.sendall(payload[pos:pos + cut])
            pos += cut
        raw.sock.sendall(payload[pos:])
        assert [raw.readline() for _ in range(5)] == ["!echo ok %d a\\_b" % i for i in range(5)]
    finally:
        gone = len(shared_server.disconnects) + 1
        raw.close()
        with shared_server.changed:  # the server has closed its end too
            assert shared_server.changed.wait_for(
                lambda: len(shared_server.disconnects) >= gone, WAIT)
