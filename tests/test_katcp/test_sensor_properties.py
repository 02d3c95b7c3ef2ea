"""Property tests: sensor readings survive formatting and parsing."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from katcp_compat.sensor import Sensor

SETTINGS = settings(max_examples=100, deadline=None)
statuses = st.sampled_from(sorted(Sensor.STATUSES))
timestamps = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def _round_trip(sensor, value, status, ts, major=5):
    sensor.set(ts, status, value)
    raw_ts, raw_status, raw_value = sensor.read_formatted(major)
    copy = Sensor(sensor._sensor_type, sensor.name, params=sensor.params)
    copy.set_formatted(raw_ts, raw_status, raw_value, major)
    return copy.read()


@SETTINGS
@given(st.integers(-2 ** 63, 2 ** 63), statuses, timestamps)
def test_integer_reading_round_trips(value, status, ts):
    got = _round_trip(Sensor.integer("s"), value, status, ts)
    assert (got.status, got.value) == (status, value)
    assert abs(got.timestamp - ts) <= 1e-6 * max(1.0, ts) + 1e-6


@SETTINGS
@given(st.floats(allow_nan=False), statuses, timestamps)
def test_float_value_round_trips_exactly(value, status, ts):
    got = _round_trip(Sensor.float("s"), value, status, ts)
    assert got.value == value or (math.isinf(value) and got.value == value)


@SETTINGS
@given(st.text(max_size=50), statuses)
def test_string_value_round_trips(value, status):
    assert _round_trip(Sensor.string("s"), value, status, 1.0).value == value


@SETTINGS
@given(st.sampled_from(["a", "b", "c-d"]), statuses)
def test_discrete_value_round_trips(value, status):
    sensor = Sensor.discrete("s", params=["a", "b", "c-d"])
    assert _round_trip(sensor, value, status, 1.0).value == value


@SETTINGS
@given(st.one_of(st.ip_addresses().map(str), st.from_regex(r"\A[a-z][a-z0-9.-]{0,20}\Z")),
       st.one_of(st.none(), st.integers(0, 65535)))
def test_address_value_round_trips(host, port):
    assert _round_trip(Sensor.address("s"), (host, port), Sensor.NOMINAL, 1.0).value == (host, port)


@SETTINGS
@given(st.integers(0, 4 * 10 ** 12))
def test_v4_timestamp_value_round_trips_within_a_millisecond(ms):
    # v4 formatting truncates to whole milliseconds, as the original does.
    got = _round_trip(Sensor.timestamp("s"), ms / 1000.0, Sensor.NOMINAL, 1.0, major=4)
    assert ms - round(got.value * 1000) in (0, 1)
