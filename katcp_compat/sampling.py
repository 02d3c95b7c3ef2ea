"""Sensor sampling strategies, timed by the timers of a loop.

A strategy watches one sensor for one client and calls
``inform_callback(sensor, reading)`` whenever a ``#sensor-status`` inform is
due. :func:`format_inform_v5` (or :func:`format_inform_v4`) turns that into
the message to send.

Strategies (``?sensor-sampling`` names):

===================== ============================ =============================================
name                  params                       sends
===================== ============================ =============================================
``none``                                           nothing
``auto``                                           on every ``set()`` of the sensor
``period``            period (s)                   the current reading every period
``event``                                          when value or status changes
``differential``      difference                   when the value moves by more than difference,
                                                   or the status changes (integer, float,
                                                   timestamp sensors)
``event-rate``        shortest longest (s)         like event, at most once per shortest, and at
                                                   least once per longest
``differential-rate`` difference shortest longest  differential with the same rate limits
===================== ============================ =============================================

Threads and how a server uses this module
-----------------------------------------
* A strategy's timed work runs on a timer source given as ``reactor=``:
  anything with ``time()`` and ``call_at(when, callback)``. A device server
  passes its own I/O loop (a :class:`~protocompat.netutil.SelectorLoop`), so
  sampling needs no thread of its own. katcp 0.5's :class:`SampleReactor` is
  such a loop too.
* For ``?sensor-sampling name strategy params...`` create the strategy with
  ``SampleStrategy.get_strategy(strategy, callback, sensor, *params,
  reactor=loop)`` (a ValueError means a bad name or bad parameters),
  call ``strategy.start()`` and only then send the reply: ``start()``
  sends the first inform synchronously, so it goes out before the reply, as
  the protocol requires. :meth:`SampleReactor.add_strategy` does both steps
  (katcp 0.5 style). Replace a strategy by cancelling the old one first.
* ``strategy.cancel()`` (or ``reactor.remove_strategy(strategy)``) detaches
  it; when ``cancel()`` returns the callback is not running and will not be
  called again. Cancel all of a client's strategies when it disconnects.
* ``inform_callback(sensor, reading)`` is called with the strategy's lock
  held, either on the thread that called ``sensor.set()``/``set_value()``
  (auto, event, differential and the rate strategies when a change may be
  sent at once), on the thread that called ``start()`` (the first inform), or
  on the loop of the timer source (periods, held-back changes, longest-period
  repeats). It must be quick and must not block: queue the message for the
  connection (``format_inform_v5(sensor, reading)``). Exceptions it raises
  are logged and dropped.
* Without a ``reactor`` keyword a strategy runs on the foundation's shared
  timer thread (:func:`protocompat.netutil.call_later_shared`), which exists
  only while a timer is pending (for scripts; servers pass their loop).
"""

import logging
import math
import os
import threading
from typing import Any, Callable, List, Optional, Sequence, Tuple

from protocompat.netutil import TimerHandle

from ._timers import SHARED_TIMERS, SampleReactor
from .core import Message, Reading
from .sensor import Sensor

__all__ = [
    "SampleStrategy", "SampleNone", "SampleAuto", "SamplePeriod", "SampleEvent",
    "SampleDifferential", "SampleEventRate", "SampleDifferentialRate", "SampleReactor",
    "format_inform_v4", "format_inform_v5",
]

log = logging.getLogger("katcp_compat.sampling")

#: A period so long that it never ends (seconds; about the age of the universe).
AGE_OF_UNIVERSE = 4.32329886e17
_EVENT_LONGEST = 1e99  # ``event`` is event-rate(0, _EVENT_LONGEST)


def format_inform_v4(sensor: Sensor, *reading: Any) -> Message:
    """Build a KATCP v4 ``#sensor-status`` inform (timestamps in ms).

    Parameters
    ----------
    sensor : Sensor
    *reading
        ``timestamp, status, value``.

    Returns
    -------
    msg : Message
    """
    timestamp, status, value = sensor.format_reading(reading, 4)
    return Message.inform("sensor-status", timestamp, "1", sensor.name, status, value)


def format_inform_v5(sensor: Sensor, *reading: Any) -> Message:
    """Build a KATCP v5 ``#sensor-status`` inform.

    Parameters
    ----------
    sensor : Sensor
    *reading
        ``timestamp, status, value``: either three values or one :class:`~katcp_compat.core.Reading`.

    Returns
    -------
    msg : Message
        ``#sensor-status <timestamp> 1 <name> <status> <value>``.
    """
    if len(reading) == 1:
        reading = tuple(reading[0])
    timestamp, status, value = sensor.format_reading(reading, 5)
    return Message.inform("sensor-status", timestamp, "1", sensor.name, status, value)


# --------------------------------------------------------------------------- strategies

class SampleStrategy:
    """Base class of the sampling strategies.

    Parameters
    ----------
    inform_callback : callable
        ``inform_callback(sensor, reading)``; see the module notes for the
        thread it runs on.
    sensor : Sensor
        The sensor to sample.
    *params : objects
        Strategy parameters (bytes or str as received, or numbers).
    reactor : object, optional (keyword)
        The timer source: anything with ``time()`` and ``call_at(when,
        callback)`` (a :class:`~protocompat.netutil.SelectorLoop`, a
        :class:`SampleReactor`, a server's ``ioloop``); the shared timer
        thread when omitted.
    ioloop : object, optional (keyword)
        Accepted for compatibility and ignored.
    """

    NONE, AUTO, PERIOD, EVENT, DIFFERENTIAL, EVENT_RATE, DIFFERENTIAL_RATE = range(7)
    SAMPLING_LOOKUP = {
        NONE: b"none",
        AUTO: b"auto",
        PERIOD: b"period",
        EVENT: b"event",
        DIFFERENTIAL: b"differential",
        EVENT_RATE: b"event-rate",
        DIFFERENTIAL_RATE: b"differential-rate",
    }
    SAMPLING_LOOKUP_REV = {v: k for k, v in SAMPLING_LOOKUP.items()}
    #: True if the strategy observes the sensor's updates.
    OBSERVE_UPDATES = False

    def __init__(self, inform_callback: Callable[[Sensor, Reading], Any], sensor: Sensor,
                 *params: Any, **kwargs: Any) -> None:
        self._inform_callback = inform_callback
        self._sensor = sensor
        self._params = params
        reactor = kwargs.get("reactor")
        self.reactor: Any = SHARED_TIMERS if reactor is None else reactor
        self.ioloop = kwargs.get("ioloop")
        self._lock = threading.RLock()
        self._cancelled = False

    def _time(self) -> float:
        """The clock of the timer source."""
        return self.reactor.time()

    def _call_at(self, when: float, callback: Callable[[], Any]) -> TimerHandle:
        """Run ``callback`` at ``when`` on the timer source."""
        return self.reactor.call_at(when, callback)

    @classmethod
    def get_strategy(cls, strategyName: Any, inform_callback: Callable[[Sensor, Reading], Any],
                     sensor: Sensor, *params: Any, **kwargs: Any) -> "SampleStrategy":
        """Create a strategy by name.

        Parameters
        ----------
        strategyName : str or bytes
            ``none``, ``auto``, ``period``, ``event``, ``differential``,
            ``event-rate`` or ``differential-rate``.
        inform_callback : callable
            ``inform_callback(sensor, reading)``.
        sensor : Sensor
        *params : objects
            Strategy parameters.
        **kwargs
            ``reactor``, the timer source (and the ignored ``ioloop``).

        Returns
        -------
        strategy : SampleStrategy

        Raises
        ------
        ValueError
            For an unknown name or bad parameters.
        """
        if isinstance(strategyName, str):
            strategyName = strategyName.encode("ascii", "replace")
        if strategyName not in cls.SAMPLING_LOOKUP_REV:
            raise ValueError("Unknown sampling strategy '%s'. Known strategies are %s."
                             % (strategyName, list(cls.SAMPLING_LOOKUP.values())))
        strategy_class = _STRATEGY_CLASSES[cls.SAMPLING_LOOKUP_REV[strategyName]]
        return strategy_class(inform_callback, sensor, *params, **kwargs)

    # ------------------------------------------------------------------ API

    def update(self, sensor: Sensor, reading: Optional[Reading] = None) -> None:
        """Observer hook: called by the sensor on every ``set()``.

        Parameters
        ----------
        sensor : Sensor
        reading : Reading, optional
            The new reading (the current one when omitted).
        """

    def get_sampling(self) -> int:
        """Return the strategy constant (:attr:`NONE` ...).

        Returns
        -------
        strategy : int
        """
        raise NotImplementedError

    def get_sampling_formatted(self) -> Tuple[bytes, List[bytes]]:
        """Return the strategy name and parameters as sent by the client.

        Returns
        -------
        strategy_name : bytes
        params : list of bytes
        """
        params = [p if isinstance(p, bytes) else str(p).encode("ascii", "replace")
                  for p in self._params]
        return self.SAMPLING_LOOKUP[self.get_sampling()], params

    def attach(self) -> None:
        """Observe the sensor and pass its current reading to :meth:`update`."""
        sensor = self._sensor
        sensor.attach(self)
        self.update(sensor, sensor.read())

    def detach(self) -> None:
        """Stop observing the sensor."""
        self._sensor.detach(self)

    def start(self) -> None:
        """Start sampling; sends the first inform (if any) before returning."""
        if self.OBSERVE_UPDATES:
            self.attach()

    def cancel(self) -> None:
        """Stop sampling; afterwards the callback is not called again."""
        if self.OBSERVE_UPDATES:
            self.detach()
        with self._lock:
            self._cancelled = True
            self.cancel_timeouts()

    def cancel_timeouts(self) -> None:
        """Cancel pending timed calls (subclasses with timers override)."""

    def inform(self, reading: Reading) -> None:
        """Pass a reading to the callback, logging any exception it raises.

        Parameters
        ----------
        reading : Reading
        """
        try:
            self._inform_callback(self._sensor, reading)
        except Exception:
            log.exception("Unhandled exception trying to send %r for sensor %r of type %r",
                          reading, self._sensor.name, self._sensor.type)


class SampleNone(SampleStrategy):
    """Never sends anything."""

    def __init__(self, inform_callback: Callable[..., Any], sensor: Sensor, *params: Any,
                 **kwargs: Any) -> None:
        super().__init__(inform_callback, sensor, *params, **kwargs)
        if params:
            raise ValueError("The 'none' strategy takes no parameters.")

    def start(self) -> None:
        """Do nothing."""

    def get_sampling(self) -> int:
        return SampleStrategy.NONE


class SampleAuto(SampleStrategy):
    """Sends the reading on every ``set()`` of the sensor, changed or not."""

    OBSERVE_UPDATES = True

    def __init__(self, inform_callback: Callable[..., Any], sensor: Sensor, *params: Any,
                 **kwargs: Any) -> None:
        super().__init__(inform_callback, sensor, *params, **kwargs)
        if params:
            raise ValueError("The 'auto' strategy takes no parameters.")

    def update(self, sensor: Sensor, reading: Optional[Reading] = None) -> None:
        with self._lock:
            if not self._cancelled:
                self.inform(sensor.read() if reading is None else reading)

    def get_sampling(self) -> int:
        return SampleStrategy.AUTO


class SampleDifferential(SampleStrategy):
    """Sends when the value moves by more than a threshold or the status changes."""

    OBSERVE_UPDATES = True

    def __init__(self, inform_callback: Callable[..., Any], sensor: Sensor, *params: Any,
                 **kwargs: Any) -> None:
        super().__init__(inform_callback, sensor, *params, **kwargs)
        if len(params) != 1:
            raise ValueError("The 'differential' strategy takes one parameter.")
        stype = sensor._sensor_type
        if stype not in (Sensor.INTEGER, Sensor.FLOAT, Sensor.TIMESTAMP):
            raise ValueError("The 'differential' strategy is only valid for "
                             "float, integer and timestamp sensors.")
        if stype == Sensor.INTEGER:
            self._threshold: float = int(params[0])
            if self._threshold <= 0:
                raise ValueError("The diff amount must be a positive integer.")
        elif stype == Sensor.FLOAT:
            self._threshold = float(params[0])
            if self._threshold <= 0:
                raise ValueError("The diff amount must be a positive float.")
        else:
            self._threshold = float(params[0])
            if self._threshold <= 0:
                raise ValueError("The diff amount must be a positive number of seconds.")
        self._lastStatus: Optional[int] = None
        self._lastValue: Any = None

    def update(self, sensor: Sensor, reading: Optional[Reading] = None) -> None:
        reading = sensor.read() if reading is None else reading
        _, status, value = reading
        with self._lock:
            if self._cancelled:
                return
            if status != self._lastStatus or abs(value - self._lastValue) > self._threshold:
                self._lastStatus = status
                self._lastValue = value
                self.inform(reading)

    def get_sampling(self) -> int:
        return SampleStrategy.DIFFERENTIAL


class SamplePeriod(SampleStrategy):
    """Sends the current reading every ``period`` seconds."""

    def __init__(self, inform_callback: Callable[..., Any], sensor: Sensor, *params: Any,
                 **kwargs: Any) -> None:
        super().__init__(inform_callback, sensor, *params, **kwargs)
        if len(params) != 1:
            raise ValueError("The 'period' strategy takes one parameter. "
                             "Parameters passed: %r, in pid : %s" % (params, os.getpid()))
        period = float(params[0])
        if not period > 0 or math.isinf(period):
            raise ValueError("The period must be a positive float in seconds. "
                             "Parameters passed: %r, in pid : %s" % (params, os.getpid()))
        self._period = period
        self._handle: Optional[TimerHandle] = None
        self.next_time = 0.0

    def start(self) -> None:
        """Send the reading now and then every period."""
        with self._lock:
            if self._cancelled:
                return
            self.next_time = self._time()
            self._run_once()

    def _run_once(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            now = self._time()
            self.inform(self._sensor.read())
            self.next_time += self._period
            if self.next_time < now:
                self.next_time = now + self._period
            self._handle = self._call_at(self.next_time, self._run_once)

    def cancel_timeouts(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def get_sampling(self) -> int:
        return SampleStrategy.PERIOD


class SampleEventRate(SampleStrategy):
    """Sends changes at most once per ``shortest`` and at least once per ``longest`` s."""

    OBSERVE_UPDATES = True

    def __init__(self, inform_callback: Callable[..., Any], sensor: Sensor, *params: Any,
                 **kwargs: Any) -> None:
        super().__init__(inform_callback, sensor, *params, **kwargs)
        if len(params) != 2:
            raise ValueError("The 'event-rate' strategy takes two parameters.")
        shortest, longest = float(params[0]), float(params[1])
        if not 0 <= shortest <= longest:
            raise ValueError("The shortest and longest periods must satisfy "
                             "0 <= shortest_period <= longest_period")
        self._shortest_period = shortest
        self._longest_period = longest
        self._not_before = 0.0
        self._not_after = AGE_OF_UNIVERSE
        self._last_reading_sent: Tuple[Any, Any, Any] = (None, None, None)
        self._short_handle: Optional[TimerHandle] = None
        self._periodic_handle: Optional[TimerHandle] = None

    def _now(self) -> float:
        return self._time()

    def inform(self, reading: Reading) -> None:
        super().inform(reading)
        now = self._now()
        self._not_before = now + self._shortest_period
        self._not_after = now + self._longest_period
        self._last_reading_sent = tuple(reading)

    def start(self) -> None:
        """Send the current reading and arrange the longest-period repeats."""
        super().start()
        with self._lock:
            if not self._cancelled and self._longest_period < AGE_OF_UNIVERSE:
                self._periodic_handle = self._call_at(self._not_after, self._periodic)

    def _periodic(self) -> None:
        with self._lock:
            self._periodic_handle = None
            if self._cancelled or self._not_after >= AGE_OF_UNIVERSE:
                return
            if self._now() >= self._not_after:
                self.inform(self._sensor.read())
            self._periodic_handle = self._call_at(self._not_after, self._periodic)

    def _short_timeout(self) -> None:
        with self._lock:
            self._short_handle = None
            if self._cancelled:
                return
            reading = self._sensor.read()
            if self._sensor_changed(reading):
                self.inform(reading)

    def _sensor_changed(self, reading: Sequence[Any]) -> bool:
        _, status, value = reading
        _, last_status, last_value = self._last_reading_sent
        return status != last_status or value != last_value

    def update(self, sensor: Sensor, reading: Optional[Reading] = None) -> None:
        reading = sensor.read() if reading is None else reading
        with self._lock:
            if self._cancelled or not self._sensor_changed(reading):
                return
            if self._now() < self._not_before:
                if self._short_handle is None:
                    self._short_handle = self._call_at(self._not_before,
                                                              self._short_timeout)
            else:
                self.inform(reading)

    def cancel_timeouts(self) -> None:
        for handle in (self._short_handle, self._periodic_handle):
            if handle is not None:
                handle.cancel()
        self._short_handle = self._periodic_handle = None

    def get_sampling(self) -> int:
        return SampleStrategy.EVENT_RATE


class SampleEvent(SampleEventRate):
    """Sends whenever the value or status changes (unchanged sets are dropped)."""

    def __init__(self, inform_callback: Callable[..., Any], sensor: Sensor, *params: Any,
                 **kwargs: Any) -> None:
        if params:
            raise ValueError("The 'event' strategy takes no parameters.")
        super().__init__(inform_callback, sensor, 0, _EVENT_LONGEST, **kwargs)
        self._params = params

    def get_sampling(self) -> int:
        return SampleStrategy.EVENT


class SampleDifferentialRate(SampleEventRate):
    """Differential with the rate limits of event-rate (integer and float sensors)."""

    def __init__(self, inform_callback: Callable[..., Any], sensor: Sensor, *params: Any,
                 **kwargs: Any) -> None:
        if len(params) != 3:
            raise ValueError("The 'differential-rate' strategy takes three parameters.")
        super().__init__(inform_callback, sensor, *params[1:], **kwargs)
        self._params = params
        if sensor.stype == "integer":
            difference: float = int(params[0])
        elif sensor.stype == "float":
            difference = float(params[0])
        else:
            raise ValueError("The differential-rate strategy can only be "
                             "defined for integer or float sensors")
        self.difference = difference
        self._last_reading_sent = (None, None, None)

    def _sensor_changed(self, reading: Sequence[Any]) -> bool:
        _, status, value = reading
        _, last_status, last_value = self._last_reading_sent
        return (status != last_status or last_value is None
                or abs(value - last_value) > self.difference)

    def get_sampling(self) -> int:
        return SampleStrategy.DIFFERENTIAL_RATE


_STRATEGY_CLASSES = {
    SampleStrategy.NONE: SampleNone,
    SampleStrategy.AUTO: SampleAuto,
    SampleStrategy.PERIOD: SamplePeriod,
    SampleStrategy.EVENT: SampleEvent,
    SampleStrategy.DIFFERENTIAL: SampleDifferential,
    SampleStrategy.EVENT_RATE: SampleEventRate,
    SampleStrategy.DIFFERENTIAL_RATE: SampleDifferentialRate,
}
