"""The in-memory comm pair and the comm-instance behaviour shared with TCP."""
import threading

import pytest

from sockproto import SID_READ_RESPONSE, pure_json_protocol, protocol
from sockproto.memory import comm_pair
from sockproto_testing import WAIT


@pytest.fixture
def pair():
    client, server = comm_pair()
    yield client, server
    assert client.close() and server.close()


def test_pair_has_client_and_server_side(pair):
    client, server = pair
    assert client.IS_CLIENT is True and server.IS_CLIENT is False


def test_frames_travel_both_ways(pair):
    client, server = pair
    assert client.send(b"to server") and server.send(b"to client")
    assert server.receive(WAIT) == b"to server"
    assert client.receive(WAIT) == b"to client"


def test_disconnect_calls_disconnect_callbacks_on_both_sides(pair):
    events = [threading.Event(), threading.Event()]
    for comm, event in zip(pair, events):
        comm.register_disconnect_callback(event.set)
    pair[0].disconnect()
    assert all(event.wait(WAIT) for event in events)
    assert not pair[0].is_connected() and not pair[1].is_connected()
    assert pair[0].send(b"lost", timeout=0.01) is False


def test_reconnect_calls_connect_callbacks_again(pair):
    client, _ = pair
    connects = []
    twice = threading.Event()

    def on_connect():
        connects.append(1)
        if len(connects) == 2:
            twice.set()

    client.register_connect_callback(on_connect)  # called once: already connected
    client.reconnect()
    assert twice.wait(WAIT)


def test_frames_held_before_callback_are_delivered_in_order(pair):
    client, server = pair
    for i in range(5):
        client.send(b"%d" % i)
    got = []
    done = threading.Event()

    def on_frame(frame):
        got.append(frame)
        if len(got) == 6:
            done.set()

    server.register_callback(on_frame)
    client.send(b"5")
    assert done.wait(WAIT)
    assert got == [b"%d" % i for i in range(6)]


def test_raising_callback_does_not_stop_delivery(pair):
    client, server = pair
    got = threading.Event()

    def on_frame(frame):
        if frame == b"bad":
            raise ValueError("bad frame")
        got.set()

    server.register_callback(on_frame)
    client.send(b"bad")
    client.send(b"good")
    assert got.wait(WAIT)


def test_receive_buffer_drops_oldest_over_the_limit(pair, monkeypatch):
    monkeypatch.setattr(protocol, "MAX_BUFFERED_MESSAGES", 3)
    client, server = (pure_json_protocol(comm) for comm in pair)
    for i in range(5):
        server.send(SID_READ_RESPONSE, 0, i)
    server.send(SID_READ_RESPONSE, 1, "last")
    assert client.receive(SID_READ_RESPONSE, 1, timeout=WAIT).get_data() == "last"
    assert [client.receive(SID_READ_RESPONSE, 0, timeout=0).get_data() for _ in range(3)] == [2, 3, 4]
    assert client.receive(SID_READ_RESPONSE, 0, timeout=0) is None


def test_close_ends_the_dispatch_threads():
    before = set(threading.enumerate())
    client, server = comm_pair()
    started = set(threading.enumerate()) - before
    assert len(started) == 2
    assert client.close(WAIT) and server.close(WAIT)
    assert not any(thread.is_alive() for thread in started)
    assert client.send(b"x", timeout=0.01) is False


def test_frames_without_receiver_are_bounded_in_bytes_oldest_dropped_first(pair, monkeypatch):
    client, server = pair
    monkeypatch.setattr(server, "MAX_PENDING_BYTES", 2048)
    for data in (b"a" * 1000, b"b" * 1000, b"c" * 1000):
        assert client.send(data)
    assert client.send(b"last")
    # A connect callback registered now runs on the dispatch thread after those frames.
    delivered = threading.Event()
    server.register_connect_callback(delivered.set)
    assert delivered.wait(WAIT)
    assert [server.receive(0) for _ in range(4)] == [b"b" * 1000, b"c" * 1000, b"last", None]
