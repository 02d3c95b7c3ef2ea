"""katcp 0.5 (threaded API) code shapes that keep working beside the 0.9.3 API."""
import socket
import threading
import time

import pytest

import katcp_compat
from katcp_compat.core import KatcpVersionError, Message
from katcp_compat.kattypes import Int, Str, inform, request, return_reply, unpack_message
from katcp_compat.server import ClientConnection, ClientConnectionTCP, DeviceServer
from katcp_io_helpers import IMPLEMENTATIONS, WAIT, ExampleDevice, RawClient, V4Device, started


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request):
    """katcp_compat, and katcp 0.9.3 where it has the behaviour under test."""
    return request.param


class SockStyleDevice(DeviceServer):
    """Handlers written as for katcp 0.5, with a ``sock`` first parameter."""

    def setup_sensors(self):
        self.informs_seen = []
        self.inform_arrived = threading.Event()

    @request(Int(), Int())
    @return_reply(Int())
    def request_add(self, sock, a, b):
        """Add two integers."""
        return ("ok", a + b)

    @request(Str())
    def request_shout(self, sock, text):
        """Reply with the text in capitals, through the 0.5 reply call."""
        return Message.reply("shout", "ok", text.upper())

    @inform(Int())
    def inform_tick(self, sock, count):
        """Record a tick from a client."""
        self.informs_seen.append((sock, count))
        self.inform_arrived.set()

    @inform(Str(), include_msg=True)
    def inform_note(self, sock, msg, text):
        """Record a note with its message."""
        self.informs_seen.append((msg.name, text))
        self.inform_arrived.set()


@pytest.fixture
def sock_device():
    srv = started(SockStyleDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


@pytest.fixture
def server():
    srv = started(ExampleDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


def _client(srv, **kwargs):
    client = katcp_compat.BlockingClient(*srv.bind_address, **kwargs)
    client.start(timeout=WAIT)
    return client


def _stop(client):
    client.stop()
    client.join(WAIT)


# --------------------------------------------------------------------------- decorators

def test_request_handler_with_sock_parameter_unpacks_arguments(sock_device):
    client = _client(sock_device)
    try:
        reply, _ = client.blocking_request(Message.request("add", 2, 40), timeout=WAIT)
        assert reply.arguments == [b"ok", b"42"]
        reply, _ = client.blocking_request(Message.request("shout", "hi"), timeout=WAIT)
        assert reply.arguments == [b"ok", b"HI"]
    finally:
        _stop(client)


def test_server_inform_handler_with_sock_parameter_receives_the_connection(sock_device):
    raw = RawClient(sock_device.bind_address)
    try:
        raw.send("#tick 7")
        assert sock_device.inform_arrived.wait(WAIT)
        conn, count = sock_device.informs_seen[0]
        assert count == 7
        assert isinstance(conn, ClientConnection)
    finally:
        raw.close()


def test_server_inform_handler_with_sock_and_message(sock_device):
    raw = RawClient(sock_device.bind_address)
    try:
        raw.send("#note hello")
        assert sock_device.inform_arrived.wait(WAIT)
        assert sock_device.informs_seen == [("note", "hello")]
    finally:
        raw.close()


def test_request_decorator_accepts_req_and_sock_names_alike(impl):
    kattypes = impl.kattypes
    seen = []

    def request_req(self, req, value):
        """Take req."""
        seen.append((req, value))

    def request_sock(self, sock, value):
        """Take sock."""
        seen.append((sock, value))

    msg = impl.Message.request("x", "5")
    kattypes.request(kattypes.Int())(request_req)(None, "ctx", msg)
    kattypes.request(kattypes.Int())(request_sock)(None, "ctx", msg)
    assert seen == [("ctx", 5), ("ctx", 5)]


def test_client_inform_handler_without_sock_gets_only_the_values(impl):
    kattypes = impl.kattypes
    seen = []

    def inform_x(self, value):
        """Take the value."""
        seen.append(value)

    kattypes.inform(kattypes.Int())(inform_x)(None, impl.Message.inform("x", "3"))
    assert seen == [3]


def test_unpack_message_never_takes_a_request_context():
    seen = []

    @unpack_message(Str())
    def reply_x(self, req):  # a value that happens to be named req
        """Take the status."""
        seen.append(req)

    reply_x(None, Message.reply("x", "ok"))
    assert seen == ["ok"]


# --------------------------------------------------------------------------- ClientConnectionTCP

class TcpRecordingDevice(ExampleDevice):
    """A 0.5-style server that watches its socket-level send calls."""

    def setup_sensors(self):
        super().setup_sensors()
        self.tcp_calls = []

    def tcp_inform(self, sock, msg):
        self.tcp_calls.append(("inform", sock, str(msg)))
        super().tcp_inform(sock, msg)

    def tcp_reply(self, sock, reply, orig_req):
        self.tcp_calls.append(("reply", sock, str(reply)))
        super().tcp_reply(sock, reply, orig_req)

    def tcp_reply_inform(self, sock, inform_msg, orig_req):
        self.tcp_calls.append(("reply_inform", sock, str(inform_msg)))
        super().tcp_reply_inform(sock, inform_msg, orig_req)


def test_client_connection_tcp_sends_through_the_servers_tcp_methods():
    srv = started(TcpRecordingDevice("127.0.0.1", 0))
    raw = RawClient(srv.bind_address)
    try:
        raw.skip_greeting()
        deadline = time.monotonic() + WAIT
        while not srv.get_sockets() and time.monotonic() < deadline:
            time.sleep(0.01)
        sock = srv.get_sockets()[0]
        conn = ClientConnectionTCP(srv, sock)
        request_msg = Message.request("job", mid=4)
        conn.inform(Message.inform("hello", "there"))
        conn.reply_inform(Message.inform("job", "part"), request_msg)
        conn.reply(Message.reply("job", "ok"), request_msg)
        assert [raw.readline() for _ in range(3)] == [
            "#hello there", "#job[4] part", "!job[4] ok"]
        assert [(kind, s) for kind, s, _ in srv.tcp_calls] == [
            ("inform", sock), ("reply_inform", sock), ("reply", sock)]
    finally:
        raw.close()
        srv.stop(WAIT)


# --------------------------------------------------------------------------- private members 0.5 code uses

def test_server_sock_gives_the_listening_port(server):
    assert server._sock.getsockname()[1] == server.bind_address[1]


def test_server_sock_is_none_before_start():
    assert ExampleDevice("127.0.0.1", 0)._sock is None


def test_server_send_message_reaches_the_client_on_that_socket(server):
    raw = RawClient(server.bind_address)
    try:
        raw.skip_greeting()
        deadline = time.monotonic() + WAIT
        while not server.get_sockets() and time.monotonic() < deadline:
            time.sleep(0.01)
        server._send_message(server.get_sockets()[0], Message.inform("direct", "x y"))
        assert raw.readline() == "#direct x\\_y"
    finally:
        raw.close()


def test_client_sock_is_the_connected_socket(server):
    client = _client(server)
    try:
        assert client.wait_connected(WAIT)
        assert client._sock.getpeername()[1] == server.bind_address[1]
    finally:
        _stop(client)
    assert client._sock is None


def test_client_events_have_the_isset_spelling(impl, server):
    client = impl.BlockingClient(*server.bind_address)
    client.start(timeout=WAIT)
    try:
        assert client.wait_protocol(WAIT)
        assert client._received_protocol_info.isSet() is True
        assert client._connected.isSet() is True
    finally:
        client.stop()
        client.join(WAIT)


# --------------------------------------------------------------------------- start(timeout)

def test_start_with_timeout_returns_connected(server):
    client = katcp_compat.BlockingClient(*server.bind_address)
    client.start(timeout=WAIT)
    try:
        assert client.is_connected()
        reply, _ = client.blocking_request(Message.request("watchdog"), timeout=WAIT)
        assert reply.reply_ok()
    finally:
        _stop(client)


def _unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_start_with_timeout_does_not_raise_without_a_device(impl):
    client = impl.BlockingClient("127.0.0.1", _unused_port())
    started_at = time.monotonic()
    client.start(timeout=0.3)
    try:
        assert time.monotonic() - started_at < WAIT
        assert not client.is_connected()
    finally:
        client.stop()
        client.join(WAIT)


# --------------------------------------------------------------------------- ids to a server without them

@pytest.fixture
def v4_server():
    srv = started(V4Device("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


@pytest.fixture
def v4_client(impl, v4_server):
    client = impl.BlockingClient(*v4_server.bind_address)
    client.start(timeout=WAIT)
    assert client.wait_protocol(WAIT)
    yield impl, client
    client.stop()
    client.join(WAIT)


def test_request_with_an_id_to_a_server_without_ids_raises(v4_client):
    impl, client = v4_client
    with pytest.raises(impl.core.KatcpVersionError, match="Message IDs not supported"):
        client.request(impl.Message.request("watchdog", mid=7))
    with pytest.raises(impl.core.KatcpVersionError):
        client.request(impl.Message.request("watchdog"), use_mid=True)


def test_blocking_request_with_an_id_to_a_server_without_ids_fails(v4_client):
    impl, client = v4_client
    reply, informs = client.blocking_request(impl.Message.request("watchdog", mid=7),
                                             timeout=WAIT)
    assert reply.arguments == [b"fail", b"Message IDs not supported by server"]
    assert reply.mid == b"7"
    assert informs == []


def test_version_error_is_ours():
    assert issubclass(KatcpVersionError, katcp_compat.KatcpClientError)
