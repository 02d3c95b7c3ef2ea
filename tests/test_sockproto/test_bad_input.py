"""Bad frames are logged and dropped (or answered with a status); receiving goes on."""
import json
import logging
import socket
import struct
import zlib

import pytest

from protocompat.netutil import LOOPBACK
from sockproto import (
    SID_READ_REQUEST, SID_READ_RESPONSE, STATUS_CHECKSUM_ERROR, STATUS_OKAY,
    pure_json_protocol, struct_json_protocol,
)
from sockproto.codec import StpDecoder, encode_pure_frame, encode_struct_frame, stp_encode
from sockproto.tcp import tcp_server_stp
from sockproto_testing import WAIT, RawPeer


@pytest.fixture
def served(make_comms):
    """A server protocol answering READ 0 with "ok", and a raw peer talking to it."""
    client_comm, server_comm = make_comms()
    server = pure_json_protocol(server_comm)
    calls = []

    def answer(msg):
        calls.append(msg.get_data())
        return STATUS_OKAY, "ok"

    server.register_callback(SID_READ_REQUEST, 0, answer)
    return RawPeer(client_comm), server, calls


def _assert_still_serving(peer):
    peer.send(SID_READ_REQUEST, 0, "after")
    response = peer.receive_where(SID_READ_RESPONSE, 0)
    assert response is not None and response.get_data() == "ok"


def test_bad_checksum_request_is_answered_with_checksum_error(served):
    peer, _, calls = served
    frame = bytearray(encode_pure_frame(STATUS_OKAY, SID_READ_REQUEST, 0, "x"))
    frame[-1] ^= 0xFF
    peer.send_frame(bytes(frame))
    response = peer.receive_where(SID_READ_RESPONSE, 0)
    assert response.get_status() == STATUS_CHECKSUM_ERROR
    assert calls == []


def test_bad_checksum_message_is_not_buffered(served):
    peer, server, _ = served
    frame = bytearray(encode_pure_frame(STATUS_OKAY, SID_READ_RESPONSE, 5, "x"))
    frame[-2] ^= 0x01
    peer.send_frame(bytes(frame))
    _assert_still_serving(peer)
    assert server.receive(SID_READ_RESPONSE, 5, timeout=0.05) is None


@pytest.mark.parametrize("body", [
    b"not json at all",
    b"[1, 2, 3]",
    b'{"status": 0, "service_id": "10", "data_id": 0, "data": null}',
    b'{"status": 0, "data_id": 0}',
    b"\xff\xfe invalid utf-8",
    b"[" * 100000 + b"]" * 100000,
])
def test_malformed_frame_is_dropped_and_receiving_goes_on(served, body):
    peer, _, calls = served
    peer.send_frame(body + struct.pack(">I", zlib.crc32(body)))
    _assert_still_serving(peer)
    assert calls == ["after"]


@pytest.mark.parametrize("frame", [b"", b"abc", b"\x00\x00\x00"])
def test_frame_shorter_than_checksum_is_dropped(served, frame):
    peer, _, _ = served
    peer.send_frame(frame)
    _assert_still_serving(peer)


def test_struct_protocol_drops_bad_checksum_and_goes_on(make_comms):
    client_comm, server_comm = make_comms()
    server = struct_json_protocol(server_comm)
    server.register_callback(SID_READ_REQUEST, 0, lambda msg: (STATUS_OKAY, "ok"))
    frame = bytearray(encode_struct_frame(STATUS_OKAY, SID_READ_REQUEST, 0, "x"))
    frame[-1] ^= 0x55
    assert client_comm.send(bytes(frame), WAIT)
    assert client_comm.send(encode_struct_frame(STATUS_OKAY, SID_READ_REQUEST, 0, "y"), WAIT)
    from sockproto.codec import decode_struct_frame
    replies = [decode_struct_frame(client_comm.receive(WAIT)) for _ in range(2)]
    assert [r.get_status() for r in replies] == [STATUS_CHECKSUM_ERROR, STATUS_OKAY]


# -- stream level (real sockets) ---------------------------------------------------
@pytest.fixture
def tcp_served():
    """A TCP server protocol with a small frame limit, and a plain socket connected to it."""
    server_comm = tcp_server_stp(LOOPBACK, 0, max_frame_size=1024)
    sock = socket.create_connection((LOOPBACK, server_comm.port), timeout=WAIT)
    try:
        server = pure_json_protocol(server_comm)
        server.register_callback(SID_READ_REQUEST, 0, lambda msg: (STATUS_OKAY, msg.get_data()))
        yield sock
    finally:
        sock.close()
        assert server_comm.close()


def _request_reply(sock, data="ping"):
    """Send a valid request on the raw socket and return the decoded reply."""
    sock.sendall(stp_encode(encode_pure_frame(STATUS_OKAY, SID_READ_REQUEST, 0, data)))
    decoder = StpDecoder()
    while True:
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection"
        for frame in decoder.decode(chunk):
            msg = json.loads(frame[:-4])
            if msg["service_id"] == SID_READ_RESPONSE:
                return msg


def test_garbage_between_frames_is_skipped(tcp_served):
    tcp_served.sendall(b"garbage without frame start > < :: ")
    assert _request_reply(tcp_served)["data"] == "ping"


def test_frame_over_the_limit_is_dropped_and_next_frame_is_served(tcp_served):
    tcp_served.sendall(stp_encode(encode_pure_frame(STATUS_OKAY, SID_READ_REQUEST, 0, "x" * 5000)))
    assert _request_reply(tcp_served, "small")["data"] == "small"


def test_invalid_escape_drops_the_frame(tcp_served):
    tcp_served.sendall(b":<" + b'{"status": 0:x' + b":>")
    assert _request_reply(tcp_served)["data"] == "ping"


def test_frame_start_inside_frame_resyncs(tcp_served):
    tcp_served.sendall(b":<half a frame")
    assert _request_reply(tcp_served, "resynced")["data"] == "resynced"


def test_frame_split_over_many_writes_is_received(tcp_served):
    data = stp_encode(encode_pure_frame(STATUS_OKAY, SID_READ_REQUEST, 0, "a:b::c"))
    tcp_served.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data) - 1):
        tcp_served.send(data[i:i + 1])
    decoder = StpDecoder()
    tcp_served.sendall(data[-1:])
    frames = []
    while not frames:
        frames = decoder.decode(tcp_served.recv(65536))
    assert json.loads(frames[0][:-4])["data"] == "a:b::c"


# -- any frame content -------------------------------------------------------------
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


class _Failures(logging.Handler):
    """Collects log records that carry an exception (a handler that failed)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(scope="module", params=[None, "s"], ids=["open", "with-secret"])
def lone_peer(request):
    """A protocol peer on an in-memory comm pair, fed frames directly."""
    from sockproto.memory import comm_pair
    failures = _Failures()
    logger = logging.getLogger("sockproto")
    logger.addHandler(failures)
    client, server = comm_pair(connected=False)
    try:
        prot = pure_json_protocol(server, secret=request.param)
        prot.register_callback(None, None, lambda msg: (STATUS_OKAY, msg.get_data()))
        yield prot._peers[0], failures.records
    finally:
        logger.removeHandler(failures)
        client.close()
        server.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_any_frame_bytes_are_handled_without_failure(lone_peer, frame):
    peer, failures = lone_peer
    peer._on_frame(frame)
    assert failures == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["status", "service_id", "data_id", "data", "x"]),
                       st.none() | st.booleans() | st.integers() | st.text(max_size=5)
                       | st.lists(st.integers(), max_size=3)))
def test_any_json_object_with_valid_checksum_is_handled_without_failure(lone_peer, obj):
    peer, failures = lone_peer
    body = json.dumps(obj).encode()
    peer._on_frame(body + struct.pack(">I", zlib.crc32(body)))
    assert failures == []
