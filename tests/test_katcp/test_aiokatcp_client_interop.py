"""Our DeviceServer driven by aiokatcp's Client and SensorWatcher."""
import asyncio
import threading
import time

import pytest

aiokatcp = pytest.importorskip("aiokatcp", reason="aiokatcp (a second real KATCP peer) "
                               "is not installed")

from aiokatcp_support import ESCAPED_ARGS, MEGABYTE, WAIT, LoopThread  # noqa: E402

from katcp_compat.sensor import Sensor  # noqa: E402
from katcp_io_helpers import ExampleDevice, started  # noqa: E402

pytestmark = pytest.mark.interop


class EveryTypeDevice(ExampleDevice):
    """The example device plus the sensor types it lacks."""

    def setup_sensors(self):
        super().setup_sensors()
        self.string_sensor = Sensor.string("a.string", "A string", "", default="hi there")
        self.timestamp_sensor = Sensor.timestamp("a.timestamp", "A time", "",
                                                 default=1700000000.5)
        self.address_sensor = Sensor.address("an.address", "An address", "",
                                             default=("127.0.0.1", 7147))
        for sensor in (self.string_sensor, self.timestamp_sensor, self.address_sensor):
            self.add_sensor(sensor)
        self.int_sensor.set_value(3)
        for sensor in self.get_sensors():
            sensor.set_value(sensor.value(), Sensor.NOMINAL)


@pytest.fixture(scope="module")
def loop():
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="module")
def device():
    srv = started(EveryTypeDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


@pytest.fixture(autouse=True)
def device_forgets_the_tests_clients(request):
    """After each test, wait until the device has closed its end of the test's own clients.

    It does so on its I/O thread once a client has gone, a moment after the
    client's close returns; the leak check that follows would see it open.
    The module's shared client stays connected.
    """
    if "device" not in request.fixturenames:
        yield
        return
    device = request.getfixturevalue("device")
    before = len(device.get_sockets())
    yield
    deadline = time.monotonic() + WAIT
    while len(device.get_sockets()) > before and time.monotonic() < deadline:
        turn = threading.Event()
        device.ioloop.add_callback(turn.set)  # one turn of the device's I/O loop
        turn.wait(WAIT)


async def _connect(address):
    return await asyncio.wait_for(aiokatcp.Client.connect(*address), WAIT)


async def _close(client):
    client.close()
    await asyncio.wait_for(client.wait_closed(), WAIT)


@pytest.fixture(scope="module")
def client(loop, device):
    c = loop.run(_connect(device.bind_address))
    yield c
    loop.run(_close(c))


def _request(loop, client, *args):
    return loop.run(asyncio.wait_for(client.request(*args), WAIT))


def test_request_with_informs(loop, client):
    reply, informs = _request(loop, client, "two-informs")
    assert reply == [b"2"]
    assert [i.arguments for i in informs] == [[b"first"], [b"second"]]
    assert all(i.mid is not None for i in informs)


def test_typed_request(loop, client):
    reply, _ = _request(loop, client, "double", 21)
    assert reply == [b"42"]


def test_fail_reply_raises_in_aiokatcp(loop, client):
    with pytest.raises(aiokatcp.FailReply, match="it failed"):
        _request(loop, client, "raise-fail")


def test_unknown_request_is_invalid_in_aiokatcp(loop, client):
    with pytest.raises(aiokatcp.InvalidReply):
        _request(loop, client, "no-such-request")


def test_escapes_and_unicode_round_trip(loop, client):
    reply, _ = _request(loop, client, "echo", *ESCAPED_ARGS)
    assert reply == [a.encode("utf-8") for a in ESCAPED_ARGS]


def test_megabyte_argument_round_trips(loop, client):
    big = bytes(range(256)) * (MEGABYTE // 256)
    reply, _ = _request(loop, client, "echo", big)
    assert reply == [big]


def test_concurrent_requests_get_their_own_replies(loop, client):
    async def many():
        tags = ["c%d" % n for n in range(100)]
        replies = await asyncio.gather(*(client.request("echo", tag) for tag in tags))
        return tags, [reply for reply, _informs in replies]

    tags, replies = loop.run(many())
    assert replies == [[tag.encode()] for tag in tags]


@pytest.mark.parametrize("name, sensor_type, value", [
    ("an.int", int, 3),
    ("a.float", float, 0.0),
    ("a.bool", bool, False),
    ("a.string", bytes, b"hi there"),
    ("a.timestamp", aiokatcp.Timestamp, 1700000000.5),
])
def test_sensor_reading_of_each_type(loop, client, name, sensor_type, value):
    got = loop.run(asyncio.wait_for(client.sensor_value(name, sensor_type), WAIT))
    assert got == value


def test_address_sensor_reads_as_an_address(loop, client):
    got = loop.run(asyncio.wait_for(client.sensor_value("an.address", aiokatcp.Address), WAIT))
    assert (str(got.host), got.port) == ("127.0.0.1", 7147)


def test_period_sampling_sends_repeated_status_informs(loop, client):
    async def sample():
        seen = asyncio.Queue()

        def on_status(timestamp, count, name, status, value):
            if name == b"a.float":
                seen.put_nowait(value)

        client.add_inform_callback("sensor-status", on_status)
        try:
            await client.request("sensor-sampling", "a.float", "period", 0.02)
            values = [await asyncio.wait_for(seen.get(), WAIT) for _ in range(3)]
        finally:
            await client.request("sensor-sampling", "a.float", "none")
            client.remove_inform_callback("sensor-status", on_status)
        return values

    assert loop.run(sample(), WAIT * 2) == [b"0.0"] * 3


def test_sensor_watcher_mirrors_every_type_and_follows_changes(loop, device):
    async def watch():
        client = await _connect(device.bind_address)
        try:
            watcher = aiokatcp.SensorWatcher(client)
            client.add_sensor_watcher(watcher)
            await asyncio.wait_for(watcher.synced.wait(), WAIT)
            mirrored = {name: s.value for name, s in watcher.sensors.items()}
            changed = asyncio.Event()
            watcher.sensors["an.int"].attach(
                lambda sensor, reading: reading.value == 4 and changed.set())
            device.int_sensor.set_value(4)  # thread-safe and non-blocking
            await asyncio.wait_for(changed.wait(), WAIT)
            return mirrored
        finally:
            await _close(client)

    try:
        mirrored = loop.run(watch(), WAIT * 2)
    finally:
        device.int_sensor.set_value(3)
    assert mirrored["an.int"] == 3
    assert mirrored["a.float"] == 0.0
    assert mirrored["a.bool"] is False
    assert mirrored["a.string"] == b"hi there"
    assert mirrored["a.timestamp"] == 1700000000.5
    assert mirrored["a.disc"].value == b"on"
    assert (str(mirrored["an.address"].host), mirrored["an.address"].port) == ("127.0.0.1", 7147)


def test_aiokatcp_client_reconnects_when_the_device_comes_back(loop):
    srv = started(EveryTypeDevice("127.0.0.1", 0))
    host, port = srv.bind_address
    client = loop.run(_connect((host, port)))
    try:
        srv.stop(WAIT)
        loop.run(asyncio.wait_for(client.wait_disconnected(), WAIT))
        srv = started(EveryTypeDevice(host, port))
        loop.run(asyncio.wait_for(client.wait_connected(), WAIT))
        reply, _ = _request(loop, client, "double", 5)
        assert reply == [b"10"]
    finally:
        loop.run(_close(client))
        srv.stop(WAIT)
