"""Sensor requests of DeviceServer: sensor-list, sensor-value, sensor-sampling."""

import pytest

from katcp_io_helpers import WAIT, BulkDevice, ExampleDevice, RawClient, V4Device, started


def _serve(cls):
    srv = started(cls("127.0.0.1", 0))
    raw = RawClient(srv.bind_address)
    raw.skip_greeting(2 if cls is V4Device else 3)
    return srv, raw


@pytest.fixture
def device():
    srv, raw = _serve(ExampleDevice)
    yield srv, raw
    raw.close()
    srv.stop(WAIT)


@pytest.fixture
def bulk_device():
    srv, raw = _serve(BulkDevice)
    yield srv, raw
    raw.close()
    srv.stop(WAIT)


def test_sensor_list_is_sorted_with_params(device):
    _srv, raw = device
    assert raw.request("?sensor-list") == [
        "#sensor-list a.bool A\\_boolean \\@ boolean",
        "#sensor-list a.disc Discrete \\@ discrete on off",
        "#sensor-list a.float A\\_float m float -1.5 1.5",
        "#sensor-list an.int An\\_integer count integer -5 5",
        "!sensor-list ok 4"]


def test_sensor_list_regex_filters_names(device):
    _srv, raw = device
    assert raw.request("?sensor-list /^a[.]/") == [
        "#sensor-list a.bool A\\_boolean \\@ boolean",
        "#sensor-list a.disc Discrete \\@ discrete on off",
        "#sensor-list a.float A\\_float m float -1.5 1.5",
        "!sensor-list ok 3"]


def test_sensor_list_regex_without_match_is_ok_zero(device):
    _srv, raw = device
    assert raw.request("?sensor-list /nothing/") == ["!sensor-list ok 0"]


def test_sensor_list_unknown_name_fails(device):
    _srv, raw = device
    assert raw.request("?sensor-list nope") == ["!sensor-list fail Unknown\\_sensor\\_name."]


def test_sensor_value_reports_reading(device):
    srv, raw = device
    srv.int_sensor.set(1234.5, srv.int_sensor.WARN, 3)
    assert raw.request("?sensor-value an.int") == [
        "#sensor-value 1234.500000 1 an.int warn 3", "!sensor-value ok 1"]


def test_sensor_value_unknown_name_fails(device):
    _srv, raw = device
    assert raw.request("?sensor-value nope") == ["!sensor-value fail Unknown\\_sensor\\_name."]


def test_sensor_value_v4_uses_milliseconds():
    srv, raw = _serve(V4Device)
    try:
        srv.int_sensor.set(1234.5, srv.int_sensor.NOMINAL, 3)
        assert raw.request("?sensor-value an.int") == [
            "#sensor-value 1234500 1 an.int nominal 3", "!sensor-value ok 1"]
    finally:
        raw.close()
        srv.stop(WAIT)


def test_sampling_query_defaults_to_none(device):
    _srv, raw = device
    assert raw.request("?sensor-sampling an.int") == ["!sensor-sampling ok an.int none"]


def test_event_sampling_sends_current_reading_before_reply(device):
    srv, raw = device
    srv.int_sensor.set(1000.0, srv.int_sensor.NOMINAL, 2)
    assert raw.request("?sensor-sampling an.int event") == [
        "#sensor-status 1000.000000 1 an.int nominal 2", "!sensor-sampling ok an.int event"]


def test_event_sampling_sends_changes(device):
    srv, raw = device
    raw.request("?sensor-sampling an.int event")
    srv.int_sensor.set(2000.0, srv.int_sensor.NOMINAL, 4)
    assert raw.readline() == "#sensor-status 2000.000000 1 an.int nominal 4"


def test_sampling_query_after_setting_echoes_params(device):
    _srv, raw = device
    raw.request("?sensor-sampling a.float period 0.5")
    assert raw.request("?sensor-sampling a.float") == ["!sensor-sampling ok a.float period 0.5"]


def test_period_sampling_repeats(device):
    srv, raw = device
    srv.float_sensor.set(3000.0, srv.float_sensor.NOMINAL, 0.25)
    raw.request("?sensor-sampling a.float period 0.01")
    assert raw.readline() == "#sensor-status 3000.000000 1 a.float nominal 0.25"


def test_sampling_unknown_sensor_fails(device):
    _srv, raw = device
    assert raw.request("?sensor-sampling nope event") == [
        "!sensor-sampling fail Unknown\\_sensor\\_name:\\_nope."]


def test_sampling_unknown_strategy_fails(device):
    _srv, raw = device
    assert raw.request("?sensor-sampling an.int bogus") == [
        "!sensor-sampling fail Unknown\\_strategy\\_name:\\_bogus."]


def test_sampling_comma_list_without_bulk_flag_is_an_unknown_name(device):
    _srv, raw = device
    assert raw.request("?sensor-sampling an.int,a.float event") == [
        "!sensor-sampling fail Unknown\\_sensor\\_name:\\_an.int,a.float."]


def test_bulk_sampling_sets_every_listed_sensor(bulk_device):
    srv, raw = bulk_device
    lines = raw.request("?sensor-sampling an.int,a.float event")
    assert lines[-1] == "!sensor-sampling ok an.int,a.float event"
    assert sorted(line.split()[3] for line in lines[:-1]) == ["a.float", "an.int"]
    assert raw.request("?sensor-sampling a.float") == ["!sensor-sampling ok a.float event"]


def test_bulk_sampling_cannot_query_many(bulk_device):
    _srv, raw = bulk_device
    assert raw.request("?sensor-sampling an.int,a.float") == [
        "!sensor-sampling fail Cannot\\_query\\_multiple\\_sensors."]


def test_sampling_clear_stops_updates(device):
    srv, raw = device
    raw.request("?sensor-sampling an.int event")
    assert raw.request("?sensor-sampling-clear") == ["!sensor-sampling-clear ok"]
    srv.int_sensor.set_value(1)
    assert raw.request("?sensor-sampling an.int") == ["!sensor-sampling ok an.int none"]


def test_strategies_are_dropped_on_disconnect():
    import threading

    gone = threading.Event()

    class Watched(ExampleDevice):
        def on_client_disconnect(self, client_conn, msg, connection_valid):
            super().on_client_disconnect(client_conn, msg, connection_valid)
            gone.set()

    srv, raw = _serve(Watched)
    try:
        raw.request("?sensor-sampling an.int event")
        assert srv.int_sensor._observers
        raw.close()
        assert gone.wait(WAIT)
        assert srv._strategies == {}
        assert not srv.int_sensor._observers
    finally:
        srv.stop(WAIT)


def test_remove_sensor_forgets_it(device):
    srv, raw = device
    srv.remove_sensor("an.int")
    assert not srv.has_sensor("an.int")
    assert raw.request("?sensor-value an.int") == ["!sensor-value fail Unknown\\_sensor\\_name."]


def test_remove_sensor_stops_its_sampling(device):
    srv, raw = device
    raw.request("?sensor-sampling an.int auto")
    raw.request("?sensor-sampling a.bool auto")
    srv.remove_sensor(srv.int_sensor)
    srv.int_sensor.set(1.0, srv.int_sensor.NOMINAL, 3)
    srv.bool_sensor.set(2.0, srv.bool_sensor.NOMINAL, True)
    assert raw.readline() == "#sensor-status 2.000000 1 a.bool nominal 1"


def test_get_sensor_unknown_raises(device):
    srv, _raw = device
    with pytest.raises(ValueError):
        srv.get_sensor("nope")


def test_burst_of_updates_arrives_complete_and_in_order(device):
    srv, raw = device
    raw.request("?sensor-sampling an.int auto")
    for value in range(1, 2001):
        srv.int_sensor.set(float(value), srv.int_sensor.NOMINAL, value)
    lines = [raw.readline() for _ in range(2000)]
    assert lines == ["#sensor-status %d.000000 1 an.int nominal %d" % (v, v)
                     for v in range(1, 2001)]


class _EveryType(ExampleDevice):
    """One sensor of every KATCP type, some with values that need escaping."""

    def setup_sensors(self):
        from katcp_compat.sensor import Sensor
        self.every = [
            Sensor.integer("t.int", "", "", [-9, 9]), Sensor.float("t.float", "", ""),
            Sensor.boolean("t.bool", "", ""), Sensor.lru("t.lru", "", ""),
            Sensor.discrete("t.disc", "", "", ["a b", "c"]), Sensor.string("t.str", "", ""),
            Sensor.string("t.empty", "", ""), Sensor.timestamp("t.time", ""),
            Sensor.address("t.addr", "", "")]
        for sensor in self.every:
            self.add_sensor(sensor)


class _EveryTypeV4(_EveryType):
    PROTOCOL_INFO = V4Device.PROTOCOL_INFO


@pytest.mark.parametrize("cls, fmt", [(_EveryType, "v5"), (_EveryTypeV4, "v4")])
def test_sensor_status_informs_of_every_type_are_what_format_inform_makes(cls, fmt):
    from katcp_compat.sampling import format_inform_v4, format_inform_v5
    format_inform = format_inform_v5 if fmt == "v5" else format_inform_v4
    srv = started(cls("127.0.0.1", 0))
    raw = RawClient(srv.bind_address)
    values = {"t.int": -3, "t.float": 1e-05, "t.bool": True, "t.lru": 1, "t.disc": "a b",
              "t.str": "tab\tand space \\ é", "t.empty": "", "t.time": 1234.5,
              "t.addr": ("::1", 7147)}
    try:
        raw.skip_greeting(2 if fmt == "v4" else 3)
        for sensor in srv.every:
            sensor.set(1000.25, sensor.WARN, values[sensor.name])
            first = bytes(format_inform(sensor, *sensor.read())).decode("utf-8")
            assert raw.request("?sensor-sampling %s auto" % sensor.name)[0] == first
            sensor.set_value(values[sensor.name], sensor.ERROR, 2000.5)
            assert raw.readline() == bytes(format_inform(sensor, *sensor.read())).decode("utf-8")
    finally:
        raw.close()
        srv.stop(WAIT)
