"""Sensor formatting and parsing cross-checked against katcp 0.9.3."""
import pytest

from katcp_compat.sensor import Sensor

katcp = pytest.importorskip("katcp")

pytestmark = pytest.mark.interop

TS = 1700000000.123456

CASES = [
    ("integer", dict(params=[-5, 5]), 3, [b"-2", b"4"]),
    ("float", dict(params=[-1.5, 1.5]), 1e-05, [b"0.25", b"-1e-07"]),
    ("boolean", {}, True, [b"0", b"1"]),
    ("lru", {}, 1, [b"nominal", b"error"]),
    ("discrete", dict(params=["on", "off"]), "off", [b"on"]),
    ("string", {}, "hello world", [b"x y", b""]),
    ("timestamp", {}, 12.5, [b"1.000000", b"1700000000.5"]),
    ("address", {}, ("::1", 80), [b"1.2.3.4:5", b"[fe80::1]:22", b"host"]),
]


def _pair(kind, kwargs):
    ours = getattr(Sensor, kind)("a.sensor", "A sensor", **kwargs)
    theirs = getattr(katcp.Sensor, kind)("a.sensor", "A sensor", **kwargs)
    return ours, theirs


@pytest.mark.parametrize("kind, kwargs, value, wire_values", CASES)
@pytest.mark.parametrize("major", [4, 5])
def test_formatted_reading_matches_original(kind, kwargs, value, wire_values, major):
    ours, theirs = _pair(kind, kwargs)
    ours.set_value(value, Sensor.WARN, TS)
    theirs.set_value(value, Sensor.WARN, TS)
    assert ours.read_formatted(major) == theirs.read_formatted(major)
    assert ours.formatted_params == theirs.formatted_params
    assert ours.description == theirs.description
    assert ours.stype == theirs.stype
    for wire in wire_values:
        assert ours.parse_value(wire, major) == theirs.parse_value(wire, major)


@pytest.mark.parametrize("kind, kwargs, value, wire_values", CASES)
def test_unset_value_matches_original(kind, kwargs, value, wire_values):
    ours, theirs = _pair(kind, kwargs)
    assert ours.read()[1:] == theirs.read()[1:]


def test_parse_params_matches_original():
    for stype, params in [(Sensor.FLOAT, [b"-1.5", b"2"]), (Sensor.INTEGER, [b"1", b"9"]),
                          (Sensor.DISCRETE, [b"a", b"b"])]:
        assert Sensor.parse_params(stype, params) == katcp.Sensor.parse_params(stype, params)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False), st.integers(-2 ** 40, 2 ** 40),
       st.floats(min_value=0, max_value=4e9, allow_nan=False), st.sampled_from([4, 5]))
def test_numeric_readings_format_like_original(fvalue, ivalue, ts, major):
    for kind, value in (("float", fvalue), ("integer", ivalue), ("timestamp", ts)):
        ours = getattr(Sensor, kind)("s")
        theirs = getattr(katcp.Sensor, kind)("s")
        ours.set(ts, Sensor.NOMINAL, value)
        theirs.set(ts, Sensor.NOMINAL, value)
        assert ours.read_formatted(major) == theirs.read_formatted(major)
