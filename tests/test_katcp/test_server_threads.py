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


class _BlockingDevice(ExampleDevice):
    """?block holds the handler thread until the test releases it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def request_block(self, req, msg):
        """Hold the handler thread."""
        self.entered.set()
        self.release.wait(WAIT)
        return req.make_reply("ok")


def _client_count(raw):
    return int(raw.request("?client-list")[-1].split()[-1])


def test_a_lost_client_is_forgotten_at_once_while_a_handler_blocks():
    srv = started(_BlockingDevice("127.0.0.1", 0))
    blocker, watcher, leaver = (RawClient(srv.bind_address) for _ in range(3))
    try:
        for raw in (blocker, watcher, leaver):
            raw.skip_greeting()
        assert _client_count(watcher) == 3
        blocker.send(b"?block\n")
        assert srv.entered.wait(WAIT)
        leaver.close()  # the standard disconnect hook needs no handler thread
        deadline = time.monotonic() + WAIT
        while _client_count(watcher) != 2 and time.monotonic() < deadline:
            pass
        assert _client_count(watcher) == 2
    finally:
        srv.release.set()
        for raw in (blocker, watcher):
            raw.close()
        srv.stop(WAIT)
        srv.join(WAIT)


def test_an_overriding_disconnect_hook_runs_on_the_handler_thread_after_the_clients_requests():
    calls = []

    class Recording(_BlockingDevice):
        def on_client_disconnect(self, client_conn, msg, connection_valid):
            calls.append(("disconnect", threading.current_thread().name))
            super().on_client_disconnect(client_conn, msg, connection_valid)

        def request_block(self, req, msg):
            """Hold the handler thread."""
            reply = super().request_block(req, msg)
            calls.append(("block", threading.current_thread().name))
            return reply

    srv = started(Recording("127.0.0.1", 0))
    raw = RawClient(srv.bind_address)
    try:
        raw.skip_greeting()
        raw.send(b"?block\n")
        assert srv.entered.wait(WAIT)
        raw.close()
        srv.release.set()
        srv.sync_with_ioloop(WAIT)  # the handler thread has run what was queued
        deadline = time.monotonic() + WAIT
        while len(calls) < 2 and time.monotonic() < deadline:
            srv.sync_with_ioloop(WAIT)
        assert calls == [("block", "katcp-server-handler"),
                         ("disconnect", "katcp-server-handler")]
    finally:
        srv.release.set()
        srv.stop(WAIT)
        srv.join(WAIT)
