"""SensorTransitionWaiter and wait_sensor (part of :mod:`katcp_compat.testutils`)."""

import queue
import time
from typing import Any, Iterator, List, Optional, Sequence


def suppress_queue_repeats(suppressed_queue: "queue.Queue[Any]", initial_value: Any,
                           read_time: Optional[float] = None) -> Iterator[Any]:
    """Yield the values read from a queue, leaving out runs of equal values.

    Parameters
    ----------
    suppressed_queue : queue.Queue
        Read (consumed) by the generator.
    initial_value : object
        A first value equal to this is left out too.
    read_time : float, optional
        Stop once this many seconds have passed since the first read and the
        queue is empty; None reads for ever.

    Yields
    ------
    value : object
        Each value that differs from the one before it.
    """
    deadline = None if read_time is None else time.monotonic() + read_time
    previous = initial_value
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            value = suppressed_queue.get(timeout=wait)
        except queue.Empty:
            return
        if value != previous:
            previous = value
            yield value


class SensorTransitionWaiter:
    """Wait for a sensor to go through a sequence of values.

    Create it before triggering the change; every update of the sensor is
    queued, so no transition is missed whatever the timing.

    Parameters
    ----------
    sensor : Sensor
        The sensor to watch.
    value_sequence : sequence or None
        Expected values in order; an item may be a callable test
        ``test(value) -> bool``. The first must match the current value.
        With None, :meth:`wait` cannot be used, but
        :meth:`get_received_values` can.

    Raises
    ------
    ValueError
        If the current value does not satisfy the first test.

    Attributes
    ----------
    received_values : list
        The values seen, starting with the value at creation.
    timed_out : bool
        Whether :meth:`wait` ran out of time.

    Notes
    -----
    :meth:`wait` moves along the sequence as katcp does: a test already
    satisfied by the latest value is passed at once; otherwise new values
    (runs of equal values count once) are read while they satisfy the
    current test, until one satisfies the next. A value satisfying neither
    fails the wait.
    """

    def __init__(self, sensor: Any, value_sequence: Optional[Sequence[Any]] = None) -> None:
        self.sensor = sensor
        self.desired_value_sequence = value_sequence
        self._torn_down = False
        self._done = False
        self.timed_out = False
        self._value_queue: "queue.Queue[Any]" = queue.Queue()
        self._current = self._get_current_sensor_value()
        if value_sequence and not self._test_value(self._current, value_sequence[0]):
            raise ValueError("Sensor value does not satisfy initial condition: %r"
                             % (self._current,))
        self.received_values: List[Any] = [self._current]
        self.sensor.attach(self)

    def update(self, sensor: Any, reading: Any = None) -> None:
        """Observer hook: queue the sensor's new value."""
        if reading is None:
            reading = sensor.read()
        self._value_queue.put(self._reading_value(reading))

    @staticmethod
    def _reading_value(reading: Any) -> Any:
        return reading[2]

    def _get_current_sensor_value(self) -> Any:
        return self.sensor.read()[2]

    @staticmethod
    def _test_value(value: Any, value_test: Any) -> bool:
        if callable(value_test):
            return bool(value_test(value))
        return value == value_test

    def _next_changed_value(self, deadline: Optional[float]) -> Any:
        """The next queued value that differs from the latest one.

        Raises
        ------
        queue.Empty
            When ``deadline`` passes first.
        """
        latest = self.received_values[-1] if self.received_values else self._current
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            value = self._value_queue.get(timeout=wait)
            if value != latest:
                return value

    def wait(self, timeout: Optional[float] = 5) -> bool:
        """Wait until the whole sequence has been seen.

        Parameters
        ----------
        timeout : float or None
            Seconds to wait; None waits for ever.

        Returns
        -------
        matched : bool
            False if the values went elsewhere or time ran out (then
            :attr:`timed_out` is True).

        Raises
        ------
        RuntimeError
            If no value sequence was given, or on a second call, or after
            :meth:`teardown`.
        """
        if self.desired_value_sequence is None:
            raise RuntimeError("Cannot wait without a value sequence")
        if self._done:
            raise RuntimeError("Transition already waited for; create a new "
                               "SensorTransitionWaiter")
        if self._torn_down:
            raise RuntimeError("Waiter has been torn down; create a new SensorTransitionWaiter")
        deadline = None if timeout is None else time.monotonic() + timeout
        tests = list(self.desired_value_sequence)
        try:
            for current_test, next_test in zip(tests, tests[1:]):
                if self._test_value(self.received_values[-1], next_test):
                    continue  # the latest value already satisfies this step
                while True:
                    value = self._next_changed_value(deadline)
                    self.received_values.append(value)
                    if self._test_value(value, next_test):
                        break
                    if not self._test_value(value, current_test):
                        return False
            return True
        except queue.Empty:
            self.timed_out = True
            return False
        finally:
            self._done = True
            self.teardown()

    def get_received_values(self, stop: bool = True, reset: bool = True) -> List[Any]:
        """Return the values seen so far.

        Parameters
        ----------
        stop : bool
            Detach from the sensor.
        reset : bool
            Start a fresh list afterwards.

        Returns
        -------
        values : list
        """
        while True:
            try:
                self.received_values.append(self._value_queue.get_nowait())
            except queue.Empty:
                break
        values = self.received_values
        if reset:
            self.received_values = []
        if stop:
            self.teardown()
        return values

    def teardown(self) -> None:
        """Detach from the sensor (idempotent)."""
        if not self._torn_down:
            self._torn_down = True
            self.sensor.detach(self)


class SensorTransitionStatusWaiter(SensorTransitionWaiter):
    """:class:`SensorTransitionWaiter` on ``(status, value)`` pairs."""

    @staticmethod
    def _reading_value(reading: Any) -> Any:
        return (reading[1], reading[2])

    def _get_current_sensor_value(self) -> Any:
        return tuple(self.sensor.read()[1:])


def wait_sensor(sensor: Any, value: Any, status: Optional[int] = None, timeout: float = 5) -> bool:
    """Wait for a sensor (updated by another thread) to take a value.

    Parameters
    ----------
    sensor : Sensor
        The sensor.
    value : object
        The value to wait for.
    status : int, optional
        Also require this status.
    timeout : float
        Seconds to wait.

    Returns
    -------
    reached : bool
    """
    target = value if status is None else (status, value)
    tests = (lambda current: True, target)
    cls = SensorTransitionWaiter if status is None else SensorTransitionStatusWaiter
    return cls(sensor, tests).wait(timeout=timeout)
