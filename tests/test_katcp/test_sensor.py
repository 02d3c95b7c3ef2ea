"""Sensor types, readings, formatting and observers."""
import warnings

import pytest

from katcp_compat.core import KatcpSyntaxError, Reading
from katcp_compat.sensor import Sensor

TS = 1234567890.5


class Recorder:
    def __init__(self):
        self.calls = []

    def update(self, sensor, reading):
        self.calls.append((sensor, reading))


def test_type_and_status_constants_match_original():
    assert (Sensor.INTEGER, Sensor.FLOAT, Sensor.BOOLEAN, Sensor.LRU, Sensor.DISCRETE,
            Sensor.STRING, Sensor.TIMESTAMP, Sensor.ADDRESS) == tuple(range(8))
    assert [Sensor.STATUSES[i] for i in range(7)] == [
        "unknown", "nominal", "warn", "error", "failure", "unreachable", "inactive"]
    assert Sensor.STATUS_NAMES_RAW[b"warn"] == Sensor.WARN


@pytest.mark.parametrize("factory, default", [
    (lambda: Sensor.integer("s"), 0),
    (lambda: Sensor.float("s"), 0.0),
    (lambda: Sensor.boolean("s"), False),
    (lambda: Sensor.lru("s"), Sensor.LRU_NOMINAL),
    (lambda: Sensor.discrete("s", params=["on", "off"]), "on"),
    (lambda: Sensor.string("s"), ""),
    (lambda: Sensor.timestamp("s"), 0.0),
    (lambda: Sensor.address("s"), ("0.0.0.0", None)),
])
def test_unset_sensor_has_type_default_and_unknown_status(factory, default):
    sensor = factory()
    assert sensor.value() == default
    assert sensor.status() == Sensor.UNKNOWN


def test_integer_default_moves_into_range():
    assert Sensor.integer("s", params=[3, 5]).value() == 3


def test_explicit_default_and_initial_status_are_used():
    sensor = Sensor.float("s", default=2.5, initial_status=Sensor.WARN)
    assert sensor.read()[1:] == (Sensor.WARN, 2.5)


def test_shortcut_python_types_select_sensor_type():
    assert Sensor(int, "s").stype == "integer"
    assert Sensor(bool, "s").stype == "boolean"


@pytest.mark.parametrize("factory, value, wire", [
    (lambda: Sensor.integer("s"), -7, b"-7"),
    (lambda: Sensor.float("s"), 1e-05, b"1e-05"),
    (lambda: Sensor.boolean("s"), True, b"1"),
    (lambda: Sensor.lru("s"), Sensor.LRU_ERROR, b"error"),
    (lambda: Sensor.discrete("s", params=["on", "off"]), "off", b"off"),
    (lambda: Sensor.string("s"), "a b", b"a b"),
    (lambda: Sensor.timestamp("s"), 1.25, b"1.250000"),
    (lambda: Sensor.address("s"), ("10.0.0.1", 80), b"10.0.0.1:80"),
    (lambda: Sensor.address("s"), ("::1", 7), b"[::1]:7"),
])
def test_v5_value_format(factory, value, wire):
    sensor = factory()
    sensor.set_value(value, timestamp=TS)
    assert sensor.read_formatted() == (b"1234567890.500000", b"nominal", wire)
    assert sensor.parse_value(wire) == value


def test_v4_timestamps_are_milliseconds():
    sensor = Sensor.timestamp("s")
    sensor.set(TS, Sensor.NOMINAL, 1.5)
    assert sensor.read_formatted(major=4) == (b"1234567890500", b"nominal", b"1500")


def test_set_value_checks_discrete_values():
    sensor = Sensor.discrete("s", params=["on", "off"])
    with pytest.raises(ValueError, match="is not one of"):
        sensor.set_value("maybe")


def test_integer_range_is_advertised_not_enforced():
    sensor = Sensor.integer("s", params=[-5, 5])
    sensor.set_value(99)
    assert sensor.value() == 99
    assert sensor.formatted_params == [b"-5", b"5"]


def test_set_value_uses_current_time_and_nominal_by_default():
    sensor = Sensor.integer("s")
    sensor.set_value(3)
    ts, status, value = sensor.read()
    assert status == Sensor.NOMINAL and value == 3 and ts > TS


def test_set_formatted_parses_wire_values():
    sensor = Sensor.float("s")
    sensor.set_formatted(b"12.5", b"warn", b"0.25")
    assert sensor.read() == Reading(12.5, Sensor.WARN, 0.25)


def test_parse_value_reports_bad_values():
    with pytest.raises(ValueError, match="Could not parse value"):
        Sensor.integer("s").parse_value(b"x")


def test_default_description_names_type_and_units():
    assert Sensor.integer("s", unit="m").description == "Integer sensor 's' in unit m"
    assert Sensor.boolean("b").description == "Boolean sensor 'b' with no unit"


def test_timestamp_sensor_rejects_units():
    with pytest.raises(ValueError):
        Sensor.timestamp("t", unit="s")


def test_parse_type_and_params():
    assert Sensor.parse_type("discrete") == Sensor.DISCRETE
    assert Sensor.parse_type(b"float") == Sensor.FLOAT
    assert Sensor.parse_params(Sensor.FLOAT, [b"-1.5", b"1.5"]) == [-1.5, 1.5]
    assert Sensor.parse_params(Sensor.DISCRETE, [b"on", b"off"]) == ["on", "off"]
    with pytest.raises(KatcpSyntaxError, match="Invalid sensor type string"):
        Sensor.parse_type("bogus")


def test_observer_gets_sensor_and_reading_on_every_set():
    sensor = Sensor.integer("s")
    rec = Recorder()
    sensor.attach(rec)
    sensor.set(1.0, Sensor.NOMINAL, 4)
    sensor.set(2.0, Sensor.NOMINAL, 4)
    assert rec.calls == [(sensor, Reading(1.0, Sensor.NOMINAL, 4)),
                         (sensor, Reading(2.0, Sensor.NOMINAL, 4))]


def test_detached_observer_is_not_called_and_detach_twice_is_harmless():
    sensor = Sensor.integer("s")
    rec = Recorder()
    sensor.attach(rec)
    sensor.detach(rec)
    sensor.detach(rec)
    sensor.set_value(1)
    assert rec.calls == []


def test_katcp05_observer_with_sensor_only_update_is_supported():
    seen = []

    class Old:
        def update(self, sensor):
            seen.append(sensor.value())

    sensor = Sensor.integer("s")
    sensor.attach(Old())
    sensor.set_value(8)
    sensor.notify()
    assert seen == [8, 8]


def test_deprecated_reading_attributes_warn():
    sensor = Sensor.integer("s", default=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sensor._value == 3
    assert caught and issubclass(caught[0].category, DeprecationWarning)
