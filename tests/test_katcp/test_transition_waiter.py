"""SensorTransitionWaiter and wait_sensor follow a sensor's values as katcp's do."""
import threading

import pytest

from katcp_compat import testutils as our_testutils
from katcp_compat.sensor import Sensor
from katcp_testutils_shim import import_katcp_testutils

WAIT = 5.0


def _implementations():
    yield pytest.param((our_testutils, Sensor), id="katcp_compat")
    try:
        import katcp
        their_testutils = import_katcp_testutils()
    except Exception as exc:
        yield pytest.param(None, id="katcp-0.9.3", marks=pytest.mark.skip(
            reason="katcp.testutils (the reference) cannot be imported here: %s" % (exc,)))
    else:
        yield pytest.param((their_testutils, katcp.Sensor), id="katcp-0.9.3",
                           marks=pytest.mark.interop)


@pytest.fixture(params=list(_implementations()))
def impl(request):
    """(testutils module, Sensor class) of katcp_compat, and of katcp 0.9.3."""
    return request.param


def _int_sensor(sensor_cls, value=0):
    sensor = sensor_cls.integer("s", "S.", "", [-100, 100])
    sensor.set_value(value)
    return sensor


def _set_later(sensor, *values):
    thread = threading.Thread(target=lambda: [sensor.set_value(v) for v in values])
    thread.start()
    return thread


def test_step_satisfied_by_the_latest_value_is_passed_at_once(impl):
    testutils, sensor_cls = impl
    sensor = _int_sensor(sensor_cls)
    waiter = testutils.SensorTransitionWaiter(
        sensor, [0, lambda x: x > 0, lambda x: x > 5])
    _set_later(sensor, 10).join(WAIT)
    assert waiter.wait(WAIT) is True


def test_step_satisfied_by_the_initial_value_is_passed_at_once(impl):
    testutils, sensor_cls = impl
    sensor = _int_sensor(sensor_cls, 3)
    waiter = testutils.SensorTransitionWaiter(sensor, [lambda x: x > 0, lambda x: x < 10, 20])
    _set_later(sensor, 20).join(WAIT)
    assert waiter.wait(WAIT) is True


def test_repeated_expected_values_count_once(impl):
    testutils, sensor_cls = impl
    sensor = _int_sensor(sensor_cls, 1)
    waiter = testutils.SensorTransitionWaiter(sensor, [1, 2, 2, 3])
    thread = _set_later(sensor, 2, 2, 3)
    assert waiter.wait(WAIT) is True
    thread.join(WAIT)


def test_value_outside_the_sequence_fails_the_wait(impl):
    testutils, sensor_cls = impl
    sensor = _int_sensor(sensor_cls, 1)
    waiter = testutils.SensorTransitionWaiter(sensor, [1, 2, 3])
    _set_later(sensor, 7).join(WAIT)
    assert waiter.wait(WAIT) is False
    assert waiter.received_values == [1, 7]


def test_time_running_out_is_reported(impl):
    testutils, sensor_cls = impl
    sensor = _int_sensor(sensor_cls, 1)
    waiter = testutils.SensorTransitionWaiter(sensor, [1, 2])
    assert waiter.wait(0.05) is False
    assert waiter.timed_out is True


def test_initial_value_must_satisfy_the_first_test(impl):
    testutils, sensor_cls = impl
    with pytest.raises(ValueError):
        testutils.SensorTransitionWaiter(_int_sensor(sensor_cls, 4), [1, 2])


def test_waiter_detaches_after_waiting(impl):
    testutils, sensor_cls = impl
    sensor = _int_sensor(sensor_cls, 1)
    waiter = testutils.SensorTransitionWaiter(sensor, [1, 2])
    _set_later(sensor, 2).join(WAIT)
    assert waiter.wait(WAIT)
    sensor.set_value(9)
    assert waiter.received_values == [1, 2]


def test_wait_sensor_returns_at_once_for_the_current_value(impl):
    testutils, sensor_cls = impl
    assert testutils.wait_sensor(_int_sensor(sensor_cls, 4), 4, timeout=0.05) is True


def test_wait_sensor_with_status(impl):
    testutils, sensor_cls = impl
    sensor = _int_sensor(sensor_cls, 1)
    thread = threading.Thread(target=sensor.set_value, args=(4, sensor_cls.WARN))
    thread.start()
    assert testutils.wait_sensor(sensor, 4, status=sensor_cls.WARN, timeout=WAIT) is True
    thread.join(WAIT)
