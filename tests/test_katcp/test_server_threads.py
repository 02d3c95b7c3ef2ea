"""The threads and sockets of a device server: two threads, many clients at once."""

import resource
import selectors
import socket
import threading
import time

import pytest

from katcp_compat.core import Message
from katcp_compat.server import ClientConnection
from katcp_io_helpers import WAIT, ExampleDevice, RawClient, started

#: Clients that connect at once in the backlog test.
MANY = 1000
#: The first SYN retransmission of Linux comes after 1 s: every connection
#: completing sooner shows none of them was dropped from a full backlog.
SYN_RETRY = 1.0


def _new_threads(before):
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())


def test_device_server_with_sampled_sensors_runs_two_threads_and_no_sampling_thread():
    before = set(threading.enumerate())
    srv = started(ExampleDevice("127.0.0.1", 0))
    raw = RawClient(srv.bind_address)
    try:
        raw.skip_greeting()
        assert raw.request("?sensor-sampling an.int period 0.01")[-1] == \
            "!sensor-sampling ok an.int period 0.01"
        assert raw.request("?sensor-sampling a.float event-rate 0.01 0.02")[-1] == \
            "!sensor-sampling ok a.float event-rate 0.01 0.02"
        for _ in range(10):  # periodic informs keep coming, from the server's own threads
            raw.read_until("#sensor-status")
        assert _new_threads(before) == ["katcp-server-handler", "katcp-server-io"]
    finally:
        raw.close()
        srv.stop(WAIT)
        srv.join(WAIT)


@pytest.fixture
def descriptors_for_many_clients():
    """Raise the soft descriptor limit for both ends of MANY connections (or skip)."""
    needed = 2 * MANY + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip("needs %d file descriptors; the hard limit is %d" % (needed, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_thousand_clients_connecting_while_the_server_is_busy_all_connect_without_a_syn_retry(
        descriptors_for_many_clients):
    srv = started(ExampleDevice("127.0.0.1", 0))
    busy, release = threading.Event(), threading.Event()
    socks = []
    try:
        # The I/O thread accepts nothing while the clients connect: the kernel's
        # queue of connections not yet accepted (the listen backlog) holds them.
        srv.ioloop.add_callback(lambda: (busy.set(), release.wait(WAIT)))
        assert busy.wait(WAIT)
        started_at = time.monotonic()
        with selectors.DefaultSelector() as sel:
            for _ in range(MANY):
                sock = socket.socket()
                socks.append(sock)
                sock.setblocking(False)
                sock.connect_ex(srv.bind_address)
                sel.register(sock, selectors.EVENT_WRITE)
            connected = 0
            while connected < MANY and time.monotonic() - started_at < SYN_RETRY:
                for key, _ in sel.select(0.05):
                    sel.unregister(key.fileobj)
                    assert key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                    connected += 1
        release.set()
        assert connected == MANY
        greeted = 0
        deadline = time.monotonic() + WAIT * 2
        with selectors.DefaultSelector() as sel:
            buffers = {}
            for sock in socks:
                sel.register(sock, selectors.EVENT_READ)
                buffers[sock] = b""
            while greeted < MANY and time.monotonic() < deadline:
                for key, _ in sel.select(0.1):
                    data = key.fileobj.recv(4096)
                    buffers[key.fileobj] += data
                    if not data or buffers[key.fileobj].count(b"\n") >= 3:
                        sel.unregister(key.fileobj)
                        greeted += bool(data)
        assert greeted == MANY
    finally:
        release.set()
        for sock in socks:
            sock.close()
        srv.stop(WAIT)
        srv.join(WAIT)


def test_client_connection_sends_and_disconnects_through_the_callables_it_is_given():
    written, disconnects, broadcasts = [], [], []
    conn = ClientConnection(lambda data, defer: written.append((data, defer)) is None,
                            "10.0.0.1:7147", lambda c, reason: disconnects.append((c, reason)),
                            broadcasts.append)
    request = Message.request("watchdog", mid=5)
    assert conn.reply(Message.reply("watchdog", "ok"), request)
    assert conn.inform(Message.inform("note", "a b"))
    conn.mass_inform(Message.inform("interface-changed"))
    conn.disconnect("bye")
    assert written == [(b"!watchdog[5] ok\n", False), (b"#note a\\_b\n", False)]
    assert broadcasts == [Message.inform("interface-changed")]
    assert disconnects == [(conn, "bye")]
    assert conn.address == "10.0.0.1:7147" and conn.socket is None
