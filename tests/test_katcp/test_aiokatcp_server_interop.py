"""Our BlockingClient and CallbackClient driving aiokatcp's DeviceServer."""
import queue
import threading

import pytest

aiokatcp = pytest.importorskip("aiokatcp", reason="aiokatcp (a second real KATCP peer) "
                               "is not installed")

from aiokatcp_support import ESCAPED_ARGS, MEGABYTE, WAIT, AioDevice, LoopThread  # noqa: E402

from katcp_compat import BlockingClient, CallbackClient, Message  # noqa: E402
from katcp_compat.sensor import Sensor  # noqa: E402

pytestmark = pytest.mark.interop


class StatusClient(CallbackClient):
    """Collects #sensor-status informs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.statuses = queue.Queue()

    def inform_sensor_status(self, msg):
        """Record it."""
        self.statuses.put(msg)


def _start_device(loop, port=0):
    async def start():
        device = AioDevice("127.0.0.1", port)
        await device.start()
        return device
    return loop.run(start())


def _stop_device(loop, device):
    loop.run(device.stop())


@pytest.fixture(scope="module")
def loop():
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="module")
def device(loop):
    dev = _start_device(loop)
    yield dev
    _stop_device(loop, dev)


def _address(loop, device):
    return loop.call(lambda: device.sockets[0].getsockname()[:2])


@pytest.fixture(scope="module")
def client(loop, device):
    c = StatusClient(*_address(loop, device), timeout=WAIT)
    c.start(timeout=WAIT)
    assert c.wait_protocol(WAIT)
    yield c
    c.stop()
    c.join(WAIT)


def _request(client, *args, **kwargs):
    return client.blocking_request(Message.request(*args), timeout=WAIT, **kwargs)


def test_protocol_is_detected_from_aiokatcp(client):
    flags = client.protocol_flags
    assert (flags.major, flags.minor) == (5, 1)
    assert flags.message_ids and flags.multi_client


def test_request_with_informs_carries_message_ids(client):
    reply, informs = _request(client, "two-informs")
    assert reply.arguments == [b"ok", b"2"]
    assert [i.arguments for i in informs] == [[b"first"], [b"second"]]
    assert reply.mid is not None and {i.mid for i in informs} == {reply.mid}


def test_request_without_ids_is_answered(client):
    reply, _ = _request(client, "double", 21, use_mid=False)
    assert str(reply) == "!double ok 42"


def test_fail_and_invalid_replies(client):
    reply, _ = _request(client, "raise-fail")
    assert reply.arguments == [b"fail", b"it failed"]
    reply, _ = _request(client, "no-such-request")
    assert reply.arguments[0] == b"invalid"
    reply, _ = _request(client, "double", "x")
    assert reply.arguments[0] == b"fail"


def test_escapes_and_unicode_round_trip(client):
    reply, _ = _request(client, "echo", *ESCAPED_ARGS)
    assert reply.arguments == [b"ok"] + [a.encode("utf-8") for a in ESCAPED_ARGS]


def test_megabyte_argument_round_trips(client):
    big = bytes(range(256)) * (MEGABYTE // 256)
    reply, _ = _request(client, "echo", big)
    assert reply.arguments == [b"ok", big]


@pytest.mark.parametrize("name, wire_value, sensor_type, value", [
    ("an.int", b"3", Sensor.INTEGER, 3),
    ("a.float", b"1.5", Sensor.FLOAT, 1.5),
    ("a.bool", b"1", Sensor.BOOLEAN, True),
    ("a.string", b"hello world", Sensor.STRING, "hello world"),
    ("a.timestamp", b"1700000000.25", Sensor.TIMESTAMP, 1700000000.25),
    ("an.address", b"127.0.0.1:7147", Sensor.ADDRESS, ("127.0.0.1", 7147)),
    ("a.discrete", b"green", Sensor.DISCRETE, "green"),
])
def test_sensor_of_each_type_reads_and_parses(client, name, wire_value, sensor_type, value):
    reply, informs = _request(client, "sensor-value", name)
    assert reply.arguments == [b"ok", b"1"]
    _timestamp, count, sensor_name, status, got = informs[0].arguments
    assert (count, sensor_name, status, got) == (b"1", name.encode(), b"nominal", wire_value)
    _reply, listed = _request(client, "sensor-list", name)
    params = listed[0].arguments[4:]
    ours = Sensor(sensor_type, name, "", "", Sensor.parse_params(sensor_type, params) or None)
    assert ours.parse_value(got) == value


def _next_status(client, name, timeout=WAIT):
    while True:
        msg = client.statuses.get(timeout=timeout)
        if msg.arguments[2] == name.encode():
            return msg


def _set_sensor(loop, device, name, value):
    loop.call(lambda: device.sensors[name].set_value(value))


def test_event_strategy_reports_changes(loop, device, client):
    reply, _ = _request(client, "sensor-sampling", "an.int", "event")
    assert reply.arguments == [b"ok", b"an.int", b"event"]
    try:
        assert _next_status(client, "an.int").arguments[4] == b"3"
        _set_sensor(loop, device, "an.int", 8)
        assert _next_status(client, "an.int").arguments[4] == b"8"
    finally:
        _request(client, "sensor-sampling", "an.int", "none")
        _set_sensor(loop, device, "an.int", 3)


def test_period_strategy_reports_repeatedly(client):
    reply, _ = _request(client, "sensor-sampling", "a.float", "period", "0.02")
    assert reply.arguments == [b"ok", b"a.float", b"period", b"0.02"]
    try:
        for _ in range(3):
            assert _next_status(client, "a.float").arguments[4] == b"1.5"
    finally:
        _request(client, "sensor-sampling", "a.float", "none")


def test_differential_strategy_skips_small_changes(loop, device, client):
    reply, _ = _request(client, "sensor-sampling", "an.int", "differential", "5")
    assert reply.arguments[0] == b"ok"
    try:
        assert _next_status(client, "an.int").arguments[4] == b"3"
        _set_sensor(loop, device, "an.int", 4)
        _set_sensor(loop, device, "an.int", 20)
        assert _next_status(client, "an.int").arguments[4] == b"20"
    finally:
        _request(client, "sensor-sampling", "an.int", "none")
        _set_sensor(loop, device, "an.int", 3)


def test_concurrent_requests_from_threads_get_their_own_replies(client):
    wrong, errors = [], []

    def worker(n):
        try:
            for i in range(10):
                tag = "t%d-%d" % (n, i)
                reply, _ = _request(client, "echo", tag)
                if reply.arguments != [b"ok", tag.encode()]:
                    wrong.append((tag, str(reply)))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 4)
    assert errors == [] and wrong == []


def test_callback_request_runs_callbacks_with_aiokatcp(client):
    done = threading.Event()
    got = []

    def on_reply(msg):
        got.append(msg)
        done.set()

    client.callback_request(Message.request("double", 5), reply_cb=on_reply)
    assert done.wait(WAIT)
    assert got[0].arguments == [b"ok", b"10"]


def test_device_going_away_and_coming_back_is_reconnected(loop):
    device = _start_device(loop)
    host, port = _address(loop, device)
    c = BlockingClient(host, port, timeout=WAIT)
    c.auto_reconnect_delay = 0.05
    c.start(timeout=WAIT)
    try:
        assert c.is_connected()
        _stop_device(loop, device)
        assert c.wait_disconnected(WAIT)
        reply, _ = c.blocking_request(Message.request("watchdog"), timeout=WAIT)
        assert reply.arguments[0] == b"fail"
        device = _start_device(loop, port)
        assert c.wait_connected(WAIT)
        assert c.wait_protocol(WAIT)
        reply, _ = c.blocking_request(Message.request("double", 4), timeout=WAIT)
        assert reply.arguments == [b"ok", b"8"]
    finally:
        c.stop()
        c.join(WAIT)
        _stop_device(loop, device)
