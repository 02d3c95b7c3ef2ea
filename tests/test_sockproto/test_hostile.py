"""Hostile peers over loopback: what they send stays confined, bounded and released.

Each test talks to a real TCP server through a plain socket that sends what a
broken or hostile peer sends, and shows that a well-behaved client of the
same server is still served. Where memory is the point, it is measured with
tracemalloc.
"""
import gc
import logging
import resource
import selectors
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from contextlib import contextmanager

import pytest

from protocompat.netutil import LOOPBACK, loopback_listener
from sockproto import (
    DID_CHANNEL_NAME, SID_CHANNEL_NAME_REQUEST, SID_CHANNEL_NAME_RESPONSE, SID_READ_REQUEST,
    SID_READ_RESPONSE, SID_WRITE_REQUEST, STATUS_AUTH_REQUIRED, STATUS_OKAY, protocol,
    pure_json_protocol,
)
from sockproto.codec import StpDecoder, decode_pure_frame, encode_pure_frame, stp_encode
from sockproto.tcp import tcp_client_stp, tcp_server_stp
from sockproto_testing import WAIT

SECRET = "hostile-test-secret"
MIB = 1024 * 1024
# Memory that may stay allocated besides what a test expects (decoder buffers,
# interpreter caches, the healthy client's traffic).
SLACK = 4 * MIB


class RawPeer:
    """A plain TCP socket that sends and reads pure_json_protocol frames."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(WAIT)
        self._decoder = StpDecoder()
        self._frames = []

    @classmethod
    def connect(cls, port):
        return cls(socket.create_connection((LOOPBACK, port), timeout=WAIT))

    def send(self, service_id, data_id, data, status=STATUS_OKAY):
        self.sock.sendall(stp_encode(encode_pure_frame(status, service_id, data_id, data)))

    def receive(self):
        """The next message from the other side (fails the test if none comes)."""
        while not self._frames:
            chunk = self.sock.recv(65536)
            assert chunk, "the other side closed the connection"
            self._frames.extend(self._decoder.decode(chunk))
        return decode_pure_frame(self._frames.pop(0))

    def receive_where(self, service_id, data_id):
        while True:
            msg = self.receive()
            if (msg.get_service_id(), msg.get_data_id()) == (service_id, data_id):
                return msg

    def sync(self):
        """Return once the other side has handled everything sent before.

        Frames of one connection are handled in order: the answer to a
        channel-name request (open to anyone) comes after all of them.
        """
        self.send(SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, None)
        return self.receive_where(SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME)

    def close(self):
        self.sock.close()


@contextmanager
def traced_memory():
    """Yield a function giving the bytes allocated (and still held) since the start."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]

        def grown():
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - start

        yield grown
    finally:
        tracemalloc.stop()


@pytest.fixture
def make_server():
    """Factory of (server comm, server protocol, a healthy client protocol); all closed afterwards."""
    comms = []
    raw_peers = []

    def make(secret=None, **tcp_options):
        server_comm = tcp_server_stp(LOOPBACK, 0, rx_log_lvl=logging.DEBUG, **tcp_options)
        comms.append(server_comm)
        server = pure_json_protocol(server_comm, secret=secret)
        server.register_callback(SID_READ_REQUEST, 0, lambda msg: (STATUS_OKAY, "healthy"))
        client_comm = tcp_client_stp(LOOPBACK, server_comm.port, rx_log_lvl=logging.DEBUG)
        comms.append(client_comm)
        client = pure_json_protocol(client_comm, secret=secret)
        assert client_comm.wait_connected(WAIT)
        if secret is not None:
            assert client.authentificate(WAIT)
        return server_comm, server, client

    def raw(port):
        """A raw peer whose connection the server has accepted and set up."""
        peer = RawPeer.connect(port)
        raw_peers.append(peer)
        peer.sync()
        return peer

    make.raw = raw
    yield make
    for peer in raw_peers:
        peer.close()
    for comm in reversed(comms):
        assert comm.close()


def assert_still_serving(client):
    """The healthy client's request is answered by the server's callback."""
    assert client.send(SID_READ_REQUEST, 0, None, timeout=WAIT)
    response = client.receive(SID_READ_RESPONSE, 0, timeout=WAIT)
    assert response is not None and response.get_data() == "healthy"


def wait_for_disconnects(server_comm, count):
    """A function that waits (bounded) until ``count`` connections of ``server_comm`` have closed."""
    closed = threading.Semaphore(0)
    server_comm.register_disconnect_callback(closed.release)

    def wait():
        return all(closed.acquire(timeout=WAIT) for _ in range(count))

    return wait


# -- untrusted connections ------------------------------------------------------------
def test_untrusted_auth_required_status_on_odd_service_ids_reaches_no_callback(make_server, caplog):
    server_comm, server, client = make_server(secret=SECRET)
    calls = []
    for service_id in (41, SID_READ_RESPONSE):
        server.register_callback(service_id, None, lambda msg: calls.append(msg.get_data()))
    hostile = make_server.raw(server_comm.port)
    with caplog.at_level(logging.WARNING, logger="sockproto.protocol"):
        for service_id in (41, SID_READ_RESPONSE):
            hostile.send(service_id, 5, "injected", status=STATUS_AUTH_REQUIRED)
        hostile.sync()
    assert calls == []
    assert sum("from an untrusted peer dropped" in r.getMessage() for r in caplog.records) == 2
    assert_still_serving(client)


def test_untrusted_fake_read_response_is_not_buffered(make_server):
    server_comm, server, client = make_server(secret=SECRET)
    hostile = make_server.raw(server_comm.port)
    for status in (STATUS_AUTH_REQUIRED, STATUS_OKAY):
        hostile.send(SID_READ_RESPONSE, 7, "fake", status=status)
    hostile.sync()
    assert server.receive(SID_READ_RESPONSE, 7, timeout=0) is None
    assert_still_serving(client)


@pytest.fixture
def hostile_server():
    """A plain listening socket; yields (accept, port), closes what it accepted."""
    listener = loopback_listener()
    accepted = []

    def accept():
        listener.settimeout(WAIT)
        sock, _ = listener.accept()
        peer = RawPeer(sock)
        accepted.append(peer)
        return peer

    try:
        yield accept, listener.getsockname()[1]
    finally:
        for peer in accepted:
            peer.close()
        listener.close()


def test_untrusted_server_gets_one_refusal_per_request_through(hostile_server):
    accept, port = hostile_server
    comm = tcp_client_stp(LOOPBACK, port)
    try:
        client = pure_json_protocol(comm, secret=SECRET)
        server = accept()
        assert client.send(SID_READ_REQUEST, 1, None, timeout=WAIT)
        server.receive_where(SID_READ_REQUEST, 1)
        for data_id, data in ((1, None), (1, None), (1, "injected"), (2, None)):
            server.send(SID_READ_RESPONSE, data_id, data, status=STATUS_AUTH_REQUIRED)
        server.send(SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, None)  # answered after the above
        server.receive_where(SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME)
        refusal = client.receive(SID_READ_RESPONSE, 1, timeout=0)
        assert (refusal.get_status(), refusal.get_data()) == (STATUS_AUTH_REQUIRED, None)
        assert client.receive(SID_READ_RESPONSE, 1, timeout=0) is None
        assert client.receive(SID_READ_RESPONSE, 2, timeout=0) is None
    finally:
        assert comm.close()


# -- the receive buffer -------------------------------------------------------------------
def test_messages_buffered_for_one_connection_stay_within_its_share(make_server):
    server_comm, server, client = make_server()
    hostile = make_server.raw(server_comm.port)
    frames = 2 * protocol.MAX_BUFFERED_BYTES_PER_CONNECTION // MIB
    with traced_memory() as grown:
        for data_id in range(frames):
            hostile.send(SID_READ_RESPONSE, data_id, "x" * MIB)
        hostile.sync()
        assert grown() < protocol.MAX_BUFFERED_BYTES_PER_CONNECTION + SLACK
    kept = sum(server.receive(SID_READ_RESPONSE, data_id, timeout=0) is not None
               for data_id in range(frames))
    assert 0 < kept <= protocol.MAX_BUFFERED_BYTES_PER_CONNECTION // MIB
    assert_still_serving(client)


def test_messages_buffered_for_a_closed_connection_are_released(make_server):
    server_comm, server, client = make_server()
    closed = wait_for_disconnects(server_comm, 1)
    frames = 16
    with traced_memory() as grown:
        hostile = make_server.raw(server_comm.port)
        for data_id in range(frames):
            hostile.send(SID_READ_RESPONSE, data_id, "x" * MIB)
        hostile.sync()
        assert grown() > frames * MIB  # kept while the connection is open
        hostile.close()
        assert closed()
        assert grown() < SLACK
    assert all(server.receive(SID_READ_RESPONSE, data_id, timeout=0) is None
               for data_id in range(frames))
    assert_still_serving(client)


def test_messages_buffered_over_all_connections_stay_within_the_total(make_server, monkeypatch):
    monkeypatch.setattr(protocol, "MAX_BUFFERED_BYTES_PER_CONNECTION", 2 * MIB)
    monkeypatch.setattr(protocol, "MAX_BUFFERED_BYTES", 3 * MIB)
    server_comm, server, client = make_server()
    hostiles = [make_server.raw(server_comm.port) for _ in range(4)]
    with traced_memory() as grown:
        for number, hostile in enumerate(hostiles):
            for data_id in range(8):
                hostile.send(SID_READ_RESPONSE, 100 * number + data_id, "x" * (MIB // 4))
        for hostile in hostiles:
            hostile.sync()
        assert grown() < 3 * MIB + SLACK
    assert_still_serving(client)


def test_a_flood_of_one_pair_of_ids_keeps_other_connections_messages(make_server):
    server_comm, server, client = make_server()
    assert client.send(SID_WRITE_REQUEST, 1, "from the healthy client", timeout=WAIT)
    assert client.receive(SID_WRITE_REQUEST + 1, 1, timeout=WAIT) is not None  # buffered by now
    hostile = make_server.raw(server_comm.port)
    for _ in range(protocol.MAX_BUFFERED_MESSAGES + 10):
        hostile.send(SID_WRITE_REQUEST, 1, "flood")
    hostile.sync()
    assert server.receive(SID_WRITE_REQUEST, 1, timeout=0).get_data() == "from the healthy client"
    assert_still_serving(client)


# -- channel names -----------------------------------------------------------------------
def test_channel_names_chosen_by_a_peer_create_no_loggers(make_server):
    server_comm, server, client = make_server()
    hostile = make_server.raw(server_comm.port)
    names, batch = 3000, 100  # answers read per batch: the server's send queue stays small
    loggers_before = len(logging.Logger.manager.loggerDict)
    with traced_memory() as grown:
        for first in range(0, names, batch):
            for number in range(first, first + batch):
                hostile.send(SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, "peer-name-%d" % number)
            for number in range(first, first + batch):
                assert hostile.receive_where(SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME).get_data() \
                    == "peer-name-%d" % number
        assert len(logging.Logger.manager.loggerDict) == loggers_before
        assert grown() < 256 * 1024
    assert_still_serving(client)


# -- deep nesting --------------------------------------------------------------------------
def _frame_nested(data_id, depth):
    """A valid pure frame (READ response) whose data nests ``depth`` arrays."""
    body = b'{"status": 0, "service_id": 11, "data_id": %d, "data": %s}' % (
        data_id, b"[" * depth + b"]" * depth)
    return stp_encode(body + struct.pack(">I", zlib.crc32(body)))


def test_data_nested_one_level_beyond_the_limit_is_dropped(make_server, caplog):
    server_comm, server, client = make_server()
    hostile = make_server.raw(server_comm.port)
    with caplog.at_level(logging.WARNING, logger="sockproto.protocol"):
        hostile.sock.sendall(_frame_nested(1, protocol.MAX_JSON_DEPTH)
                             + _frame_nested(2, protocol.MAX_JSON_DEPTH + 1))
        hostile.sync()
    assert server.receive(SID_READ_RESPONSE, 1, timeout=0) is not None
    assert server.receive(SID_READ_RESPONSE, 2, timeout=0) is None
    assert any("nested deeper than" in r.getMessage() for r in caplog.records)
    assert_still_serving(client)


# -- connections ---------------------------------------------------------------------------
def test_idle_connections_hold_no_receive_buffer_and_free_everything_when_closed(make_server):
    server_comm, server, client = make_server()
    count = 100
    closed = wait_for_disconnects(server_comm, count)
    with traced_memory() as grown:
        hostiles = [make_server.raw(server_comm.port) for _ in range(count)]  # each has been read from
        assert grown() < count * 32 * 1024
        for hostile in hostiles:
            hostile.close()
        assert closed()
        assert grown() < SLACK
    assert_still_serving(client)


def test_a_peer_that_does_not_read_is_closed_once_its_unsent_data_passes_the_bound(make_server, caplog):
    max_output = MIB
    server_comm, server, client = make_server(max_output=max_output)
    server.register_callback(SID_READ_REQUEST, 9, lambda msg: (STATUS_OKAY, "x" * (64 * 1024)))
    closed = wait_for_disconnects(server_comm, 1)
    hostile = make_server.raw(server_comm.port)
    hostile.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with caplog.at_level(logging.WARNING, logger="sockproto.tcp"):
        with traced_memory() as grown:
            for _ in range(300):  # 20 MB of answers that are never read
                try:
                    hostile.send(SID_READ_REQUEST, 9, None)
                except OSError:
                    break  # closed by the server already
            assert closed()
            assert grown() < max_output + SLACK
    assert any("unsent" in record.getMessage() for record in caplog.records)
    assert_still_serving(client)


# The kernel waits this long before it sends a dropped SYN again.
SYN_RETRY_DELAY = 1.0
# tcpi_total_retrans in Linux's struct tcp_info.
_TCP_INFO_TOTAL_RETRANS = 100


def _retransmissions(sock):
    """Segments the kernel sent again on ``sock`` (Linux), or None where it does not tell."""
    if not hasattr(socket, "TCP_INFO"):
        return None
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_TOTAL_RETRANS + 4)
    return struct.unpack_from("I", info, _TCP_INFO_TOTAL_RETRANS)[0]


@pytest.fixture
def descriptors():
    """Room for ``count`` more open descriptors, or a skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def need(count):
        wanted = count + 256
        if soft != resource.RLIM_INFINITY and soft < wanted:
            if hard != resource.RLIM_INFINITY and hard < wanted:
                pytest.skip("the descriptor limit (%d) is too low for %d sockets" % (hard, count))
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    yield need
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_thousand_clients_connecting_at_once_connect_without_a_syn_retry(make_server, descriptors):
    count = 1000
    descriptors(2 * count)
    server_comm, server, client = make_server()
    accepted = threading.Semaphore(0)
    server_comm.register_connect_callback(accepted.release)
    selector = selectors.DefaultSelector()
    socks, slowest = [], 0.0
    try:
        started = {}
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setblocking(False)
            started[sock] = time.monotonic()
            sock.connect_ex((LOOPBACK, server_comm.port))
            selector.register(sock, selectors.EVENT_WRITE)
        deadline = time.monotonic() + WAIT
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                selector.unregister(key.fileobj)
                slowest = max(slowest, time.monotonic() - started[key.fileobj])
                assert key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        assert not selector.get_map(), "%d clients not connected" % len(selector.get_map())
        assert all(accepted.acquire(timeout=WAIT) for _ in range(count))
        retransmitted = [_retransmissions(sock) for sock in socks]
        if None in retransmitted:
            assert slowest < SYN_RETRY_DELAY
        else:
            assert sum(retransmitted) == 0, "a SYN was sent again: the listen backlog overflowed"
    finally:
        selector.close()
        for sock in socks:
            sock.close()
    assert_still_serving(client)
