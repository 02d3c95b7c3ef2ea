"""The TCP comm instances: reconnecting client, multi-client server, clean shutdown."""
import socket
import threading

import pytest

from protocompat.netutil import LOOPBACK, loopback_listener
from sockproto import (
    SID_EXECUTE_REQUEST, SID_EXECUTE_RESPONSE, SID_READ_REQUEST, SID_READ_RESPONSE,
    STATUS_AUTH_REQUIRED, STATUS_OKAY, pure_json_protocol,
)
from sockproto.tcp import tcp_client_stp, tcp_server_stp
from sockproto_testing import WAIT

SECRET = "tcp-secret"


@pytest.fixture
def server():
    comm = tcp_server_stp(LOOPBACK, 0)
    yield comm
    assert comm.close()


@pytest.fixture
def clients(server):
    made = []

    def make(**kwargs):
        comm = tcp_client_stp(LOOPBACK, server.port)
        made.append(comm)
        return pure_json_protocol(comm, **kwargs)

    yield make
    for comm in made:
        assert comm.close()


def test_server_reports_its_port(server):
    assert server.server_address == (LOOPBACK, server.port)
    assert server.port > 0


def test_raw_frames_travel_both_ways(server):
    client = tcp_client_stp(LOOPBACK, server.port)
    try:
        server.register_callback(lambda frame: server.send(b"echo " + frame))
        assert client.send(b"with :< and :> and ::", WAIT)
        assert client.receive(WAIT) == b"echo with :< and :> and ::"
    finally:
        client.close()


def test_client_reconnects_after_server_drops_it(server):
    client = tcp_client_stp(LOOPBACK, server.port)
    connects = []
    two = threading.Event()

    def on_connect():
        connects.append(1)
        if len(connects) == 2:
            two.set()

    try:
        client.register_connect_callback(on_connect)
        assert client.wait_connected(WAIT)
        assert server.wait_connected(WAIT)  # accepted on the server side too
        server.reconnect()  # closes every client connection
        assert two.wait(WAIT)
        assert client.is_connected()
    finally:
        client.close()


def test_client_connects_once_the_server_is_up():
    with loopback_listener() as probe:
        port = probe.getsockname()[1]
    client = tcp_client_stp(LOOPBACK, port)
    try:
        assert not client.is_connected()
        server = tcp_server_stp(LOOPBACK, port)
        try:
            assert client.wait_connected(WAIT)
        finally:
            server.close()
    finally:
        client.close()


def test_connect_callback_registered_late_is_called(server):
    client = tcp_client_stp(LOOPBACK, server.port)
    try:
        assert client.wait_connected(WAIT)
        called = threading.Event()
        client.register_connect_callback(called.set)
        assert called.wait(WAIT)
    finally:
        client.close()


def test_server_serves_many_clients_with_own_answers(server, clients):
    prot = pure_json_protocol(server)
    prot.register_callback(SID_READ_REQUEST, 0, lambda msg: (STATUS_OKAY, msg.get_data() * 10))
    many = [clients() for _ in range(5)]
    for i, client in enumerate(many):
        assert client.send(SID_READ_REQUEST, 0, i, timeout=WAIT)
    assert [c.receive(SID_READ_RESPONSE, 0, timeout=WAIT).get_data() for c in many] == \
        [0, 10, 20, 30, 40]


def test_authentification_state_is_per_connection(server, clients):
    prot = pure_json_protocol(server, secret=SECRET)
    prot.register_callback(SID_READ_REQUEST, 0, lambda msg: (STATUS_OKAY, "data"))
    trusted = clients(secret=SECRET)
    untrusted = clients()
    assert trusted.authentificate(timeout=WAIT)
    for client in (trusted, untrusted):
        client.send(SID_READ_REQUEST, 0, None, timeout=WAIT)
    assert trusted.receive(SID_READ_RESPONSE, 0, timeout=WAIT).get_status() == STATUS_OKAY
    assert untrusted.receive(SID_READ_RESPONSE, 0, timeout=WAIT).get_status() == STATUS_AUTH_REQUIRED


def test_channel_name_is_per_connection(server, clients):
    prot = pure_json_protocol(server)
    names = []
    prot.register_callback(SID_READ_REQUEST, 0, lambda msg: (STATUS_OKAY, prot.get_channel_name()))
    for name in ("first", "second"):
        client = clients(channel_name=name)
        client.send(SID_READ_REQUEST, 0, None, timeout=WAIT)
        names.append(client.receive(SID_READ_RESPONSE, 0, timeout=WAIT).get_data())
    assert names == ["first", "second"]


def test_send_outside_callback_goes_to_every_client(server, clients):
    prot = pure_json_protocol(server)
    many = [clients() for _ in range(3)]
    for client in many:
        assert client._wait_for(client.is_connected, WAIT)
    assert prot._wait_for(lambda: len(prot._peers) == 3, WAIT)
    assert prot.send(SID_EXECUTE_REQUEST, 1, "to all")
    for client in many:
        assert client.receive(SID_EXECUTE_REQUEST, 1, timeout=WAIT).get_data() == "to all"
    assert prot.receive(SID_EXECUTE_RESPONSE, 1, timeout=WAIT) is not None


def test_connection_state_is_dropped_when_client_leaves(server, clients):
    prot = pure_json_protocol(server)
    client = clients()
    assert prot._wait_for(lambda: len(prot._peers) == 1, WAIT)
    client._comm.close()
    assert prot._wait_for(lambda: not prot._peers, WAIT)
    assert not prot.is_connected()


def test_close_with_connected_clients_returns_true_and_frees_everything():
    before = set(threading.enumerate())
    server = tcp_server_stp(LOOPBACK, 0)
    client = tcp_client_stp(LOOPBACK, server.port)
    started = set(threading.enumerate()) - before
    assert client.wait_connected(WAIT)
    assert server.stop(WAIT) is True
    assert client.stop(WAIT) is True
    assert len(started) == 2 and not any(thread.is_alive() for thread in started)


def test_send_after_close_returns_false(server):
    client = tcp_client_stp(LOOPBACK, server.port)
    assert client.wait_connected(WAIT)
    client.close()
    assert client.send(b"late", timeout=0.05) is False


def test_server_on_used_port_raises_oserror():
    with loopback_listener() as busy:
        with pytest.raises(OSError):
            tcp_server_stp(LOOPBACK, busy.getsockname()[1])


def test_peer_closing_mid_frame_disconnects_cleanly(server):
    disconnected = threading.Event()
    server.register_disconnect_callback(disconnected.set)
    with socket.create_connection((LOOPBACK, server.port), timeout=WAIT) as sock:
        sock.sendall(b":<partial frame")
    assert disconnected.wait(WAIT)


def test_protocol_send_without_clients_returns_false_after_timeout(server):
    prot = pure_json_protocol(server)
    assert prot.send(SID_EXECUTE_REQUEST, 1, None, timeout=0.05) is False


def _ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback")
def test_ipv6_address_literals_work():
    server = tcp_server_stp("::1", 0)
    client = tcp_client_stp("::1", server.port)
    try:
        server.register_callback(lambda frame: server.send(frame))
        assert client.send(b"six", WAIT)
        assert client.receive(WAIT) == b"six"
    finally:
        client.close()
        server.close()
