"""katcp_compat server and clients against the real katcp 0.9.3, both ways."""

import queue
import threading

import pytest

katcp = pytest.importorskip("katcp")

from katcp_compat import BlockingClient, CallbackClient, Message  # noqa: E402
from katcp_io_helpers import WAIT, ExampleDevice, started  # noqa: E402

pytestmark = pytest.mark.interop

ESCAPED_ARGS = ["a b", "line\nbreak", "", "back\\slash", "caf\u00e9", "tab\tand\rcr", "\x1b\0"]


def _encoded(args):
    return [a.encode("utf-8") for a in args]


# --------------------------------------------------------------------------- real peers

class TheirDevice(katcp.DeviceServer):
    """A device built on the real katcp."""

    VERSION_INFO = ("their-dev", 1, 2)
    BUILD_INFO = ("their-build", 3, 4, "")

    def setup_sensors(self):
        self.int_sensor = katcp.Sensor.integer("an.int", "An integer", "count", [-5, 5])
        self.add_sensor(self.int_sensor)

    def request_echo(self, req, msg):
        """Reply ok with the arguments."""
        return req.make_reply("ok", *msg.arguments)

    def request_raise_fail(self, req, msg):
        """Always fails."""
        raise katcp.FailReply("it failed")

    def request_two_informs(self, req, msg):
        """Two informs then ok."""
        req.inform("first")
        req.inform("second")
        return req.make_reply("ok", "2")


class TheirStatusClient(katcp.CallbackClient):
    """Collects #sensor-status informs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.statuses = queue.Queue()

    def inform_sensor_status(self, msg):
        """Record it."""
        self.statuses.put(msg)


class OurStatusClient(CallbackClient):
    """Collects #sensor-status informs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.statuses = queue.Queue()

    def inform_sensor_status(self, msg):
        """Record it."""
        self.statuses.put(msg)


def _stop_theirs(obj):
    try:
        obj.stop()
    except RuntimeError:
        pass  # katcp closes a client's ioloop itself once it stops reconnecting
    obj.join(timeout=WAIT)


# --------------------------------------------------------------------------- our server, their clients

@pytest.fixture(scope="module")
def our_server():
    srv = started(ExampleDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


@pytest.fixture(scope="module")
def their_client(our_server):
    client = TheirStatusClient(*our_server.bind_address)
    client.start(timeout=WAIT)
    assert client.wait_protocol(WAIT)
    yield client
    _stop_theirs(client)


def _theirs(client, *args, **kwargs):
    return client.blocking_request(katcp.Message.request(*args), timeout=WAIT, **kwargs)


def test_their_client_detects_our_protocol(their_client):
    assert str(their_client.protocol_flags) == "5.0-IM"


def test_their_client_gets_message_ids(their_client):
    reply, _ = _theirs(their_client, "watchdog")
    assert str(reply).startswith("!watchdog[")
    reply, _ = _theirs(their_client, "watchdog", use_mid=False)
    assert str(reply) == "!watchdog ok"


def test_their_client_escapes_round_trip(their_client):
    reply, _ = _theirs(their_client, "echo", *ESCAPED_ARGS)
    assert reply.arguments == [b"ok"] + _encoded(ESCAPED_ARGS)


@pytest.mark.parametrize("request_args, reply_start", [
    (("help",), [b"ok"]),
    (("help", "watchdog"), [b"ok", b"1"]),
    (("log-level",), [b"ok", b"warn"]),
    (("client-list",), [b"ok"]),
    (("sensor-list", "/^a/"), [b"ok", b"4"]),
    (("sensor-value", "an.int"), [b"ok", b"1"]),
    (("sensor-sampling", "a.disc"), [b"ok", b"a.disc", b"none"]),
    (("sensor-sampling-clear",), [b"ok"]),
    (("version-list",), [b"ok", b"3"]),
    (("restart",), [b"fail"]),
    (("raise-fail",), [b"fail", b"it failed"]),
    (("no-such-request",), [b"invalid", b"Unknown request."]),
])
def test_their_client_standard_requests(their_client, request_args, reply_start):
    reply, _ = _theirs(their_client, *request_args)
    assert reply.arguments[:len(reply_start)] == reply_start


def test_their_client_informs_with_mid(their_client):
    reply, informs = _theirs(their_client, "two-informs")
    assert reply.arguments == [b"ok", b"2"]
    assert [i.arguments for i in informs] == [[b"first"], [b"second"]]
    assert all(i.mid == reply.mid for i in informs)


def test_their_client_receives_sampled_sensor(our_server, their_client):
    reply, _ = _theirs(their_client, "sensor-sampling", "an.int", "event")
    assert reply.arguments == [b"ok", b"an.int", b"event"]
    first = their_client.statuses.get(timeout=WAIT)
    assert first.arguments[2] == b"an.int"
    our_server.int_sensor.set_value(4)
    while True:
        status = their_client.statuses.get(timeout=WAIT)
        if status.arguments[4] == b"4":
            break
    assert status.arguments[3] == b"nominal"
    _theirs(their_client, "sensor-sampling-clear")


def test_their_callback_client_callbacks():
    srv = started(ExampleDevice("127.0.0.1", 0))  # its own server: stop() closes every socket
    client = katcp.CallbackClient(*srv.bind_address)
    client.start(timeout=WAIT)
    try:
        assert client.wait_protocol(WAIT)
        got = queue.Queue()
        client.callback_request(katcp.Message.request("two-informs"), reply_cb=got.put,
                                inform_cb=got.put)
        assert [got.get(timeout=WAIT).mtype for _ in range(3)] == [
            katcp.Message.INFORM, katcp.Message.INFORM, katcp.Message.REPLY]
    finally:
        _stop_theirs(client)
        srv.stop(WAIT)


def test_their_client_sees_our_shutdown():
    lost = threading.Event()

    class Watcher(katcp.BlockingClient):
        def notify_connected(self, connected):
            if not connected:
                lost.set()

    srv = started(ExampleDevice("127.0.0.1", 0))
    client = Watcher(*srv.bind_address)
    client.start(timeout=WAIT)
    try:
        assert client.wait_connected(WAIT)
        srv.stop(WAIT)
        assert lost.wait(WAIT)
    finally:
        _stop_theirs(client)
        srv.stop(WAIT)


# --------------------------------------------------------------------------- their server, our clients

@pytest.fixture(scope="module")
def their_server():
    srv = TheirDevice("127.0.0.1", 0)
    srv.start(timeout=WAIT)
    yield srv
    _stop_theirs(srv)


@pytest.fixture(scope="module")
def our_client(their_server):
    client = OurStatusClient(*their_server.bind_address)
    client.start(timeout=WAIT)
    assert client.wait_protocol(WAIT)
    yield client
    client.stop(WAIT)
    client.join(WAIT)


def _ours(client, *args, **kwargs):
    return client.blocking_request(Message.request(*args), timeout=WAIT, **kwargs)


def test_our_client_detects_their_protocol(our_client):
    assert str(our_client.protocol_flags) == "5.0-IM"
    our_client.blocking_request(Message.request("watchdog"))  # the greeting precedes any reply
    assert our_client.versions["katcp-library"] == ("katcp-python-0.9.3",)


def test_our_client_uses_their_message_ids(our_client):
    reply, _ = _ours(our_client, "watchdog")
    assert str(reply).startswith("!watchdog[")
    reply, _ = _ours(our_client, "watchdog", use_mid=False)
    assert str(reply) == "!watchdog ok"


def test_our_client_escapes_round_trip(our_client):
    reply, _ = _ours(our_client, "echo", *ESCAPED_ARGS)
    assert reply.arguments == [b"ok"] + _encoded(ESCAPED_ARGS)


@pytest.mark.parametrize("request_args, reply_start", [
    (("help",), [b"ok"]),
    (("help", "watchdog"), [b"ok", b"1"]),
    (("log-level",), [b"ok", b"warn"]),
    (("client-list",), [b"ok"]),
    (("sensor-list", "/an/"), [b"ok", b"1"]),
    (("sensor-value", "an.int"), [b"ok", b"1"]),
    (("sensor-sampling", "an.int"), [b"ok", b"an.int", b"none"]),
    (("sensor-sampling-clear",), [b"ok"]),
    (("version-list",), [b"ok", b"3"]),
    (("restart",), [b"fail"]),
    (("raise-fail",), [b"fail", b"it failed"]),
    (("no-such-request",), [b"invalid", b"Unknown request."]),
])
def test_our_client_standard_requests(our_client, request_args, reply_start):
    reply, _ = _ours(our_client, *request_args)
    assert reply.arguments[:len(reply_start)] == reply_start


def test_our_client_informs_with_mid(our_client):
    reply, informs = _ours(our_client, "two-informs")
    assert reply.arguments == [b"ok", b"2"]
    assert [i.arguments for i in informs] == [[b"first"], [b"second"]]


def test_our_client_receives_their_sampled_sensor(their_server, our_client):
    reply, _ = _ours(our_client, "sensor-sampling", "an.int", "event")
    assert reply.arguments == [b"ok", b"an.int", b"event"]
    assert our_client.statuses.get(timeout=WAIT).arguments[2] == b"an.int"
    their_server.ioloop.add_callback(their_server.int_sensor.set_value, 3)
    while True:
        status = our_client.statuses.get(timeout=WAIT)
        if status.arguments[4] == b"3":
            break
    _ours(our_client, "sensor-sampling-clear")


def test_our_future_request_against_their_server(our_client):
    reply, informs = our_client.future_request(Message.request("two-informs")).result(WAIT)
    assert reply.reply_ok() and len(informs) == 2


def test_our_client_sees_their_shutdown():
    srv = TheirDevice("127.0.0.1", 0)
    srv.start(timeout=WAIT)
    client = BlockingClient(*srv.bind_address, auto_reconnect=False)
    client.start(timeout=WAIT)
    disconnect = threading.Event()
    try:
        assert client.wait_protocol(WAIT)
        srv.stop()
        srv.join(timeout=WAIT)
        assert client.wait_disconnected(WAIT)
        reply, _ = _ours(client, "watchdog")
        assert reply.arguments[0] == b"fail"
        disconnect.set()
    finally:
        client.stop(WAIT)
        _stop_theirs(srv)
    assert disconnect.is_set()


def test_their_client_halts_our_server():
    srv = started(ExampleDevice("127.0.0.1", 0))
    client = katcp.BlockingClient(*srv.bind_address)
    client.start(timeout=WAIT)
    try:
        assert client.wait_protocol(WAIT)
        reply, _ = _theirs(client, "halt")
        assert reply.arguments == [b"ok"]
        srv.join(WAIT)
        assert not srv.running()
    finally:
        _stop_theirs(client)
        srv.stop(WAIT)


def test_our_client_halts_their_server():
    srv = TheirDevice("127.0.0.1", 0)
    srv.start(timeout=WAIT)
    client = BlockingClient(*srv.bind_address)
    client.start(timeout=WAIT)
    try:
        assert client.wait_protocol(WAIT)
        reply, _ = _ours(client, "halt")
        assert reply.arguments == [b"ok"]
        srv.join(timeout=WAIT)
        assert not srv.running()
    finally:
        client.stop(WAIT)
        _stop_theirs(srv)


def test_package_exports_every_name_katcp_exports():
    import katcp_compat

    import __future__

    future_names = set(__future__.all_feature_names)
    exported_by_katcp = {name for name in dir(katcp) if not name.startswith("_")
                         and not isinstance(getattr(katcp, name), type(katcp))
                         and name not in future_names}
    exported_by_katcp.add("__version__")
    assert "DeviceServer" in exported_by_katcp
    missing = [name for name in sorted(exported_by_katcp) if not hasattr(katcp_compat, name)]
    assert missing == []


STRATEGIES = [("auto",), ("period", "0.5"), ("event",), ("differential", "2"),
              ("event-rate", "0.1", "1.5"), ("differential-rate", "2", "0.1", "1.5"), ("none",)]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=[s[0] for s in STRATEGIES])
def test_their_client_sets_every_strategy_on_our_server(their_client, strategy):
    reply, _ = _theirs(their_client, "sensor-sampling", "an.int", *strategy)
    assert reply.arguments == [b"ok", b"an.int"] + [a.encode() for a in strategy]
    _theirs(their_client, "sensor-sampling-clear")


@pytest.mark.parametrize("strategy", STRATEGIES, ids=[s[0] for s in STRATEGIES])
def test_our_client_sets_every_strategy_on_their_server(our_client, strategy):
    reply, _ = _ours(our_client, "sensor-sampling", "an.int", *strategy)
    assert reply.arguments == [b"ok", b"an.int"] + [a.encode() for a in strategy]
    _ours(our_client, "sensor-sampling-clear")


def test_same_reply_from_both_servers_for_bad_sampling(their_client, our_client):
    for args in (("sensor-sampling", "nope", "event"), ("sensor-sampling", "an.int", "bogus")):
        ours, _ = _theirs(their_client, *args)
        theirs, _ = _ours(our_client, *args)
        assert ours.arguments == theirs.arguments


@pytest.mark.parametrize("request_args", [
    ("watchdog",), ("log-level",), ("log-level", "nonsense"), ("no-such-request",),
    ("sensor-list", "an.int"), ("sensor-list", "nope"), ("sensor-value", "/nothing/"),
    ("sensor-sampling", "an.int"), ("help", "nope"), ("restart",), ("raise-fail",),
    ("sensor-sampling-clear",)])
def test_same_reply_and_informs_from_both_servers(their_client, our_client, request_args):
    from_ours = _theirs(their_client, *request_args, use_mid=False)
    from_theirs = _ours(our_client, *request_args, use_mid=False)
    assert [str(m) for m in from_ours[1] + [from_ours[0]]] == [
        str(m) for m in from_theirs[1] + [from_theirs[0]]]
