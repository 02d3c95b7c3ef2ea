"""Sampling strategies and the timer sources they run on."""
import heapq
import logging
import threading

import pytest

from katcp_compat.core import Reading
from katcp_compat.sampling import (SampleAuto, SampleDifferential, SampleDifferentialRate,
                                   SampleEvent, SampleEventRate, SampleNone, SamplePeriod,
                                   SampleReactor, SampleStrategy, format_inform_v4,
                                   format_inform_v5)
from katcp_compat.sensor import Sensor
from protocompat.netutil import SelectorLoop, TimerHandle

WAIT = 5.0


class ManualClock:
    """A timer source whose clock only moves when the test says so.

    Any object with ``time()`` and ``call_at(when, callback)`` may time a
    strategy; this one runs the due calls in ``advance``.
    """

    def __init__(self):
        self.now = 1000.0
        self._heap = []

    def time(self):
        return self.now

    def call_at(self, when, callback, *args):
        handle = TimerHandle(when, callback, args)
        heapq.heappush(self._heap, handle)
        return handle

    def advance(self, seconds):
        self.now += seconds
        while self._heap and self._heap[0].when <= self.now:
            handle = heapq.heappop(self._heap)
            if not handle.cancelled:
                handle.callback(*handle.args)


class Collector:
    def __init__(self, count=1):
        self.readings = []
        self.threads = []
        self._count = count
        self.enough = threading.Event()

    def __call__(self, sensor, reading):
        self.readings.append(reading)
        self.threads.append(threading.current_thread())
        if len(self.readings) >= self._count:
            self.enough.set()

    @property
    def values(self):
        return [r.value for r in self.readings]


@pytest.fixture
def loop():
    """A selector loop, as a device server's I/O loop times its strategies."""
    lp = SelectorLoop(name="test-sampling-loop")
    lp.start()
    yield lp
    assert lp.stop(WAIT)


@pytest.fixture
def reactor():
    r = SampleReactor()
    r.start()
    yield r
    assert r.stop(WAIT)


@pytest.fixture
def manual():
    return ManualClock()


@pytest.fixture
def int_sensor():
    sensor = Sensor.integer("an.int", params=[-100, 100])
    sensor.set(1.0, Sensor.NOMINAL, 0)
    return sensor


def make(name, sensor, reactor, *params, count=1):
    got = Collector(count)
    strategy = SampleStrategy.get_strategy(name, got, sensor, *params, reactor=reactor)
    return strategy, got


# ---------------------------------------------------------------- factory

def test_get_strategy_creates_each_class_by_name(int_sensor, manual):
    for name, cls, params in [("none", SampleNone, ()), ("auto", SampleAuto, ()),
                              ("period", SamplePeriod, ("1",)), ("event", SampleEvent, ()),
                              ("differential", SampleDifferential, ("2",)),
                              ("event-rate", SampleEventRate, ("1", "2")),
                              (b"differential-rate", SampleDifferentialRate, ("1", "1", "2"))]:
        strategy = SampleStrategy.get_strategy(name, print, int_sensor, *params, reactor=manual)
        assert type(strategy) is cls


def test_unknown_strategy_name_is_a_value_error(int_sensor):
    with pytest.raises(ValueError, match="Unknown sampling strategy 'b'bogus''"):
        SampleStrategy.get_strategy("bogus", print, int_sensor)


@pytest.mark.parametrize("name, params, text", [
    ("none", ("1",), "The 'none' strategy takes no parameters."),
    ("auto", ("1",), "The 'auto' strategy takes no parameters."),
    ("event", ("1",), "The 'event' strategy takes no parameters."),
    ("period", (), "The 'period' strategy takes one parameter."),
    ("period", ("-1",), "The period must be a positive float in seconds."),
    ("differential", (), "The 'differential' strategy takes one parameter."),
    ("differential", ("0",), "The diff amount must be a positive integer."),
    ("event-rate", ("1",), "The 'event-rate' strategy takes two parameters."),
    ("event-rate", ("2", "1"), "must satisfy 0 <= shortest_period <= longest_period"),
    ("differential-rate", ("1", "2"), "The 'differential-rate' strategy takes three parameters."),
])
def test_bad_parameters_are_value_errors(int_sensor, manual, name, params, text):
    with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(".", r"\.")):
        SampleStrategy.get_strategy(name, print, int_sensor, *params, reactor=manual)


def test_differential_needs_a_numeric_sensor(manual):
    with pytest.raises(ValueError, match="only valid for float, integer and timestamp"):
        SampleStrategy.get_strategy("differential", print, Sensor.string("s"), "1",
                                    reactor=manual)


def test_sampling_formatted_echoes_parameters_as_sent(int_sensor, manual):
    strategy, _ = make("period", int_sensor, manual, b"0.1")
    assert strategy.get_sampling() == SampleStrategy.PERIOD
    assert strategy.get_sampling_formatted() == (b"period", [b"0.1"])
    event, _ = make("event", int_sensor, manual)
    assert event.get_sampling_formatted() == (b"event", [])


# ---------------------------------------------------------------- behaviour (manual clock)

def test_none_sends_nothing(int_sensor, manual):
    strategy, got = make("none", int_sensor, manual)
    strategy.start()
    int_sensor.set_value(5)
    assert got.readings == []


def test_auto_sends_current_reading_then_every_set_even_unchanged(int_sensor, manual):
    strategy, got = make("auto", int_sensor, manual)
    strategy.start()
    int_sensor.set_value(0)
    int_sensor.set_value(0)
    assert got.values == [0, 0, 0]


def test_event_sends_only_changes_of_value_or_status(int_sensor, manual):
    strategy, got = make("event", int_sensor, manual)
    strategy.start()
    int_sensor.set_value(0)              # same value and status as the first inform
    int_sensor.set_value(0)              # unchanged
    int_sensor.set_value(2)              # value changes
    int_sensor.set_value(2, Sensor.WARN)  # status changes
    assert [(r.status, r.value) for r in got.readings] == [
        (Sensor.NOMINAL, 0), (Sensor.NOMINAL, 2), (Sensor.WARN, 2)]


def test_differential_sends_when_change_exceeds_threshold(int_sensor, manual):
    strategy, got = make("differential", int_sensor, manual, "5")
    strategy.start()
    for value in (3, 5, 6, 12, 8, 20):
        int_sensor.set_value(value)
    assert got.values == [0, 6, 12, 20]


def test_period_sends_current_reading_every_period(int_sensor, manual):
    strategy, got = make("period", int_sensor, manual, "2")
    strategy.start()
    assert got.values == [0]
    int_sensor.set_value(7)
    manual.advance(1.0)
    assert got.values == [0]
    manual.advance(1.0)
    manual.advance(2.0)
    assert got.values == [0, 7, 7]


def test_event_rate_holds_back_changes_until_shortest_period(int_sensor, manual):
    strategy, got = make("event-rate", int_sensor, manual, "1", "10")
    strategy.start()
    int_sensor.set_value(1)
    int_sensor.set_value(2)
    assert got.values == [0]
    manual.advance(1.0)
    assert got.values == [0, 2]


def test_event_rate_repeats_unchanged_reading_after_longest_period(int_sensor, manual):
    strategy, got = make("event-rate", int_sensor, manual, "0", "3")
    strategy.start()
    manual.advance(3.0)
    manual.advance(3.0)
    assert got.values == [0, 0, 0]


def test_event_rate_change_restarts_longest_period(int_sensor, manual):
    strategy, got = make("event-rate", int_sensor, manual, "0", "3")
    strategy.start()
    manual.advance(2.0)
    int_sensor.set_value(4)
    manual.advance(2.0)
    assert got.values == [0, 4]
    manual.advance(1.0)
    assert got.values == [0, 4, 4]


def test_differential_rate_combines_threshold_and_rate(int_sensor, manual):
    strategy, got = make("differential-rate", int_sensor, manual, "5", "1", "100")
    strategy.start()
    int_sensor.set_value(3)       # below threshold
    int_sensor.set_value(9)       # above, but within shortest: held back
    assert got.values == [0]
    manual.advance(1.0)
    assert got.values == [0, 9]


def test_cancel_stops_updates_and_timers(int_sensor, manual):
    strategy, got = make("event-rate", int_sensor, manual, "1", "2")
    strategy.start()
    int_sensor.set_value(3)
    strategy.cancel()
    int_sensor.set_value(4)
    manual.advance(10.0)
    assert got.values == [0]


def test_callback_exception_is_logged_not_raised(int_sensor, manual, caplog):
    def bad(sensor, reading):
        raise RuntimeError("callback broke")

    strategy = SampleStrategy.get_strategy("auto", bad, int_sensor, reactor=manual)
    with caplog.at_level(logging.ERROR, logger="katcp_compat.sampling"):
        strategy.start()
        int_sensor.set_value(1)
    assert "callback broke" in caplog.text


def test_format_informs_v5_and_v4():
    sensor = Sensor.integer("a.b")
    reading = Reading(1234.5, Sensor.NOMINAL, 3)
    assert bytes(format_inform_v5(sensor, reading)) == b"#sensor-status 1234.500000 1 a.b nominal 3"
    assert bytes(format_inform_v5(sensor, *reading)) == bytes(format_inform_v5(sensor, reading))
    assert bytes(format_inform_v4(sensor, *reading)) == b"#sensor-status 1234500 1 a.b nominal 3"


# ---------------------------------------------------------------- real loops

def test_period_informs_come_from_the_loop_thread(int_sensor, loop):
    strategy, got = make("period", int_sensor, loop, "0.02", count=4)
    strategy.start()
    assert got.enough.wait(WAIT)
    strategy.cancel()
    assert got.threads[0] is threading.current_thread()
    assert all(t is loop.thread for t in got.threads[1:4])


def test_no_inform_after_cancel_returns(int_sensor, loop):
    strategy, got = make("period", int_sensor, loop, "0.01", count=3)
    strategy.start()
    assert got.enough.wait(WAIT)
    strategy.cancel()
    count = len(got.readings)
    marker = threading.Event()
    loop.call_later(0.05, marker.set)
    assert marker.wait(WAIT)
    assert len(got.readings) == count


def test_many_strategies_share_one_loop_and_start_no_thread(loop):
    before = threading.active_count()
    sensors = [Sensor.float("s%d" % i) for i in range(50)]
    collectors = []
    strategies = []
    for sensor in sensors:
        strategy, got = make("period", sensor, loop, "0.01", count=2)
        strategy.start()
        strategies.append(strategy)
        collectors.append(got)
    assert all(c.enough.wait(WAIT) for c in collectors)
    assert threading.active_count() <= before
    for strategy in strategies:
        strategy.cancel()


def test_strategy_without_timer_source_runs_on_the_shared_timer_thread_which_then_ends(
        int_sensor):
    got = Collector(3)
    strategy = SampleStrategy.get_strategy("period", got, int_sensor, "0.01")
    strategy.start()
    assert got.enough.wait(WAIT)
    strategy.cancel()
    shared = got.threads[1]
    assert shared is not threading.current_thread() and shared.name == "protocompat-timers"
    shared.join(WAIT)
    assert not shared.is_alive()


# ---------------------------------------------------------------- katcp 0.5's SampleReactor

def test_sample_reactor_runs_the_timers_of_strategies_added_to_it_on_its_thread(int_sensor,
                                                                              reactor):
    got = Collector(3)
    strategy = SampleStrategy.get_strategy("period", got, int_sensor, "0.01")
    reactor.add_strategy(strategy)
    assert got.enough.wait(WAIT)
    reactor.remove_strategy(strategy)
    assert strategy.reactor is reactor
    assert all(t is reactor.thread for t in got.threads[1:3])


def test_sample_reactor_add_and_remove_strategy_katcp05_style(int_sensor, reactor):
    got = Collector(2)
    strategy = SampleStrategy.get_strategy("auto", got, int_sensor)
    reactor.add_strategy(strategy)
    int_sensor.set_value(9)
    reactor.remove_strategy(strategy)
    int_sensor.set_value(10)
    assert got.values == [0, 9]


def test_sample_reactor_stop_ends_its_thread_within_timeout():
    r = SampleReactor()
    r.setDaemon(True)
    r.start()
    assert r.isAlive() and r.is_alive()
    r.call_later(3600, print)
    assert r.stop(WAIT)
    r.join(WAIT)
    assert not r.is_alive()


def test_stop_of_never_started_reactor_returns_true():
    assert SampleReactor().stop(0.1)
