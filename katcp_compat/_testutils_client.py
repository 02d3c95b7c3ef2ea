"""BlockingTestClient and MessageRecorder (part of :mod:`katcp_compat.testutils`)."""

import re
import threading
import time
from typing import Any, Callable, Container, Dict, List, Optional, Sequence, Tuple

from ._text import to_str
from .client import BlockingClient
from .core import Message
from .sensor import Sensor
from .server import DeviceServer

#: Seconds between checks of a polled condition.
_POLL_PERIOD = 0.02


def _poll(timeout: float, period: float, predicate: Callable[..., bool], *args: Any,
          **kwargs: Any) -> bool:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        if predicate(*args, **kwargs):
            return True
        if time.monotonic() >= deadline:
            return False
        pause.wait(min(period, max(0.0, deadline - time.monotonic())))


def _with_value(msg: str, value: Any) -> str:
    # A custom assertion message may hold one %r for the value read.
    return msg % (value,) if "%r" in msg else msg


def _native(value: Any) -> Any:
    if isinstance(value, bytes):
        return to_str(value, "replace")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return value


def _natives(values: Sequence[Any]) -> List[Any]:
    return [_native(v) for v in values]


class MessageRecorder:
    """Records received messages that pass filters.

    Parameters
    ----------
    msg_types : container
        Message types to record (``Message.INFORM``, ...).
    whitelist : container
        Record only these names (empty: all names not blacklisted).
    regex_filter : str or None
        Record only messages whose string form matches.
    blacklist : container
        Names to ignore (the whitelist wins).
    """

    def __init__(self, msg_types: Container[int], whitelist: Container[str],
                 regex_filter: Optional[str], blacklist: Container[str]) -> None:
        self.msgs: List[Message] = []
        self.msg_types = msg_types
        self.whitelist = whitelist
        self.blacklist = blacklist
        self.regex_filter = re.compile(regex_filter) if regex_filter else None
        self._cond = threading.Condition()

    def get_msgs(self, min_number: int = 0, timeout: Optional[float] = 1) -> List[Message]:
        """Return (and forget) the messages recorded so far.

        Parameters
        ----------
        min_number : int
            Wait until at least this many are recorded.
        timeout : float, optional
            Longest wait in seconds.

        Returns
        -------
        msgs : list of Message
        """
        self.wait_number(min_number, timeout)
        with self._cond:
            msgs, self.msgs = self.msgs, []
        return msgs

    __call__ = get_msgs

    def wait_number(self, number: int, timeout: Optional[float] = 1) -> Optional[bool]:
        """Wait until ``number`` messages are recorded.

        Parameters
        ----------
        number : int
            Messages to wait for.
        timeout : float, optional
            Longest wait in seconds.

        Returns
        -------
        reached : True or None
        """
        with self._cond:
            return True if self._cond.wait_for(lambda: len(self.msgs) >= number, timeout) else None

    def append_msg(self, msg: Message) -> None:
        """Record ``msg`` if it passes the filters."""
        if msg.mtype not in self.msg_types or not self._record_predicate(msg):
            return
        with self._cond:
            self.msgs.append(msg)
            self._cond.notify_all()

    def _record_predicate(self, msg: Message) -> bool:
        if self.whitelist and msg.name not in self.whitelist:
            return False
        if self.regex_filter:
            return bool(self.regex_filter.match(str(msg)))
        return msg.name not in self.blacklist


class BlockingTestClient(BlockingClient):
    """A blocking client with assertions for tests.

    Parameters
    ----------
    test : unittest.TestCase
        Provides ``assertEqual`` and friends (and optionally ``sensor_lag``).
    *args, **kwargs
        As :class:`BlockingClient`.
    """

    def __init__(self, test: Any, *args: Any, **kwargs: Any) -> None:
        self.test = test
        self._message_recorders: Dict[int, Callable[[Message], None]] = {}
        super().__init__(*args, **kwargs)

    def raw_send(self, chunk: bytes) -> None:
        """Send raw bytes to the server."""
        self._io.write(chunk)

    def _sensor_lag(self) -> float:
        return getattr(self.test, "sensor_lag", 0)

    def handle_inform(self, msg: Message) -> None:
        """Pass informs to the message recorders, then handle them."""
        for append_msg in list(self._message_recorders.values()):
            append_msg(msg)
        super().handle_inform(msg)

    def handle_reply(self, msg: Message) -> None:
        """Pass replies to the message recorders, then handle them."""
        for append_msg in list(self._message_recorders.values()):
            append_msg(msg)
        super().handle_reply(msg)

    def message_recorder(self, whitelist: Sequence[str] = (), blacklist: Sequence[str] = (),
                         regex_filter: Optional[str] = None, informs: bool = True,
                         replies: bool = False) -> MessageRecorder:
        """Start recording received messages.

        Parameters
        ----------
        whitelist, blacklist : sequence of str
            Name filters (see :class:`MessageRecorder`).
        regex_filter : str, optional
            Regular expression filter.
        informs, replies : bool
            Which message types to record.

        Returns
        -------
        recorder : MessageRecorder
            Call it to get the messages recorded since the last call.
        """
        types = [t for t, wanted in ((Message.INFORM, informs), (Message.REPLY, replies)) if wanted]
        recorder = MessageRecorder(types, whitelist, regex_filter, blacklist)
        self._message_recorders[id(recorder)] = recorder.append_msg
        return recorder

    # -- sensors ---------------------------------------------------------------
    @staticmethod
    def expected_sensor_value_tuple(sensorname: str, value: Any, sensortype: type = str,
                                    places: int = 7) -> Tuple[str, Any, type, int]:
        """Normalise ``(name, value[, type[, places]])`` sensor expectations."""
        return (sensorname, value, sensortype, places)

    def get_sensor(self, sensorname: str, sensortype: type = str) -> Tuple[Any, str, float]:
        """Read a sensor with ``?sensor-value``.

        Parameters
        ----------
        sensorname : str
            The sensor.
        sensortype : type
            Converts the value (``bool`` via ``int``).

        Returns
        -------
        value : object
            The value, converted by ``sensortype``.
        status : str
        timestamp : float
        """
        reply, informs = self.blocking_request(Message.request("sensor-value", sensorname))
        self.test.assertTrue(reply.reply_ok(), "Could not read sensor '%s': %s"
                             % (sensorname, reply))
        self.test.assertEqual(len(informs), 1, "Expected one sensor value inform for '%s'."
                              % sensorname)
        timestamp, _num, _name, raw_status, raw_value = informs[0].arguments
        value: Any
        if sensortype == bool:
            value = bool(int(raw_value))
        elif sensortype == str:
            value = to_str(raw_value, "replace")
        else:
            value = sensortype(raw_value)
        status = raw_status.decode("ascii")
        self.test.assertIn(status, Sensor.STATUSES.values())
        return value, status, float(timestamp)

    def get_sensor_value(self, sensorname: str, sensortype: type = str) -> Any:
        """Return a sensor's value (see :meth:`get_sensor`)."""
        return self.get_sensor(sensorname, sensortype)[0]

    def get_sensor_status(self, sensorname: str) -> str:
        """Return a sensor's status name."""
        return self.get_sensor(sensorname)[1]

    def get_sensor_timestamp(self, sensorname: str) -> float:
        """Return a sensor's timestamp."""
        return self.get_sensor(sensorname)[2]

    def assert_sensor_equals(self, sensorname: str, expected: Any, sensortype: type = str,
                             msg: Optional[str] = None, places: int = 7,
                             status: Optional[str] = None) -> None:
        """Assert a sensor's value (and optionally status)."""
        got, got_status, _ = self.get_sensor(sensorname, sensortype)
        text = (_with_value(msg, got) if msg else
                "Value of sensor '%s' is %r. Expected %r." % (sensorname, got, expected))
        if sensortype == float:
            self.test.assertAlmostEqual(got, expected, places, text)
        else:
            self.test.assertEqual(got, expected, text)
        if status is not None:
            self.test.assertEqual(got_status, status, "Status of sensor '%s' is %r. Expected %r."
                                  % (sensorname, got_status, status))

    def assert_sensor_status_equals(self, sensorname: str, expected_status: str,
                                    msg: Optional[str] = None) -> None:
        """Assert a sensor's status."""
        got = self.get_sensor_status(sensorname)
        self.test.assertEqual(got, expected_status, _with_value(msg, got) if msg else
                              "Status of sensor '%s' is %r. Expected %r."
                              % (sensorname, got, expected_status))

    def assert_sensor_not_equal(self, sensorname: str, expected: Any, sensortype: type = str,
                                msg: Optional[str] = None, places: int = 7) -> None:
        """Assert a sensor's value differs from ``expected``."""
        got = self.get_sensor_value(sensorname, sensortype)
        text = (_with_value(msg, got) if msg else
                "Value of sensor '%s' is %r. Expected a different value." % (sensorname, got))
        if sensortype == float:
            self.test.assertNotAlmostEqual(got, expected, places, text)
        else:
            self.test.assertNotEqual(got, expected, text)

    def assert_sensors_equal(self, sensor_tuples: Sequence[tuple], msg: Optional[str] = None) -> None:
        """Assert several ``(name, value[, type[, places]])`` expectations."""
        for item in sensor_tuples:
            name, value, stype, places = self.expected_sensor_value_tuple(*item)
            self.assert_sensor_equals(name, value, stype, msg, places)

    def assert_sensors_not_equal(self, sensor_tuples: Sequence[tuple],
                                 msg: Optional[str] = None) -> None:
        """Assert several sensors differ from the given values."""
        for item in sensor_tuples:
            name, value, stype, places = self.expected_sensor_value_tuple(*item)
            self.assert_sensor_not_equal(name, value, stype, msg, places)

    def wait_condition(self, timeout: float, predicate: Callable[..., bool], *args: Any,
                       **kwargs: Any) -> bool:
        """Poll ``predicate(*args, **kwargs)`` until true or ``timeout`` passes.

        Returns
        -------
        ok : bool
        """
        return _poll(timeout, _POLL_PERIOD, predicate, *args, **kwargs)

    def wait_until_sensor_equals(self, timeout: float, sensorname: str, value: Any,
                                 sensortype: type = str, places: int = 7,
                                 pollperiod: float = 0.02) -> None:
        """Wait until a sensor has a value, else fail the test.

        Parameters
        ----------
        timeout : float
            Seconds to wait.
        sensorname : str
        value : object
            The expected value.
        sensortype : type, optional
            Converts the sensor's value before comparing.
        places : int, optional
            Decimal places compared for floats.
        pollperiod : float, optional
            Seconds between reads of the sensor.
        """
        def matches() -> bool:
            got = self.get_sensor_value(sensorname, sensortype)
            if sensortype == float:
                return round(abs(got - value), places) == 0
            return got == value
        self.test.assertTrue(_poll(timeout, pollperiod, matches),
                             "Sensor '%s' did not reach %r within %ss" % (sensorname, value, timeout))

    def wait_until_sensors_equal(self, timeout: float,
                                     sensor_tuples: Sequence[tuple], msg: Optional[str] = None) -> None:
        """Wait until several sensors reach their values, else fail the test."""
        expected = [self.expected_sensor_value_tuple(*t) for t in sensor_tuples]

        def all_equal() -> bool:
            try:
                self.assert_sensors_equal(expected, msg)
                return True
            except AssertionError:
                return False
        self.test.assertTrue(self.wait_condition(timeout, all_equal),
                             msg or "Sensors did not reach %r within %ss" % (expected, timeout))

    def test_sensor_list(self, expected_sensors: Sequence[tuple],
                         ignore_descriptions: bool = False) -> None:
        """Assert ``?sensor-list`` returns exactly these (name, description, units, type, params...)."""
        reply, informs = self.blocking_request(Message.request("sensor-list"))
        self.test.assertTrue(reply.reply_ok(), "?sensor-list failed: %s" % reply)

        def key(args: Sequence[Any]) -> tuple:
            args = _natives(args)
            return tuple(args[:1] + args[2:]) if ignore_descriptions else tuple(args)

        got = sorted(key(inform.arguments) for inform in informs)
        expected = sorted(key(item) for item in expected_sensors)
        self.test.assertEqual(got, expected)

    def test_help(self, expected_requests: Sequence[Any], full_descriptions: bool = False,
                  exclude_defaults: bool = True) -> None:
        """Assert ``?help`` lists these requests (names, or (name, description) pairs)."""
        reply, informs = self.blocking_request(Message.request("help"))
        self.test.assertTrue(reply.reply_ok(), "?help failed: %s" % reply)
        got = {_native(i.arguments[0]): _native(i.arguments[1]) for i in informs}
        defaults = set(DeviceServer._request_handlers) if exclude_defaults else set()
        names = [e if isinstance(e, str) else e[0] for e in expected_requests]
        self.test.assertEqual(sorted(set(got) - defaults), sorted(set(names) - defaults))
        for item in expected_requests:
            if not isinstance(item, str):
                name, description = item
                text = got[name] if full_descriptions else got[name].strip().split("\n")[0]
                self.test.assertEqual(text, description)

    def assert_request_succeeds(self, requestname: str, *params: Any, **kwargs: Any) -> List[str]:
        """Assert a request succeeds, optionally checking its reply and informs.

        Keyword options: ``args_echo``, ``args_equal``, ``args_in``,
        ``args_length``, ``informs_count``, ``informs_args_equal`` (as katcp).

        Returns
        -------
        args : list of str
            The reply arguments after ``ok``.
        """
        reply, informs = self.blocking_request(Message.request(requestname, *params))
        self.test.assertEqual(reply.name, requestname)
        error = _native(reply.arguments[1]) if len(reply.arguments) > 1 else "(no message)"
        self.test.assertTrue(reply.reply_ok(), "Expected request '%s' called with parameters %r "
                             "to succeed, but it failed with error '%s'."
                             % (requestname, params, error))
        args = _natives(reply.arguments[1:])
        args_equal = _natives(params) if kwargs.get("args_echo") else kwargs.get("args_equal")
        if args_equal is not None:
            self.test.assertEqual(args, _natives(args_equal))
        elif kwargs.get("args_in") is not None:
            self.test.assertIn(args, [_natives(a) for a in kwargs["args_in"]])
        elif kwargs.get("args_length") is not None:
            self.test.assertEqual(len(args), kwargs["args_length"])
        if kwargs.get("informs_count") is not None:
            self.test.assertEqual(len(informs), kwargs["informs_count"])
        if kwargs.get("informs_args_equal") is not None:
            self.test.assertEqual([_natives(i.arguments) for i in informs],
                                  [_natives(a) for a in kwargs["informs_args_equal"]])
        return args

    def assert_request_fails(self, requestname: str, *params: Any, **kwargs: Any) -> Tuple[str, Any]:
        """Assert a request fails; ``status_equals`` / ``error_equals`` check the reply.

        Returns
        -------
        status : str
            The reply's status.
        error : str or None
            The reply's error text, if it has one.
        """
        reply, _ = self.blocking_request(Message.request(requestname, *params))
        self.test.assertEqual(reply.name, requestname)
        self.test.assertFalse(reply.reply_ok(), "Expected request '%s' called with parameters %r "
                              "to fail, but it was successful." % (requestname, params))
        status = _native(reply.arguments[0])
        error = _native(reply.arguments[1]) if len(reply.arguments) > 1 else None
        if kwargs.get("status_equals") is not None:
            self.test.assertEqual(status, _native(kwargs["status_equals"]))
        if kwargs.get("error_equals") is not None:
            self.test.assertEqual(error, _native(kwargs["error_equals"]))
        return status, error

    def test_setter_request(self, requestname: str, sensorname: str, sensortype: type = str,
                            good: Sequence[Any] = (), bad: Sequence[Any] = (), places: int = 7,
                            args_echo: bool = False) -> None:
        """Check a request that sets one sensor to its argument.

        Parameters
        ----------
        requestname : str
        sensorname : str
        sensortype : type, optional
            Converts the sensor's value before comparing.
        good : sequence, optional
            Values the request must accept and the sensor then show.
        bad : sequence, optional
            Values the request must reject.
        places : int, optional
            Decimal places compared for floats.
        args_echo : bool, optional
            Also check that the reply echoes the value.
        """
        for value in good:
            self.assert_request_succeeds(requestname, value, args_echo=args_echo)
            self._wait_sensor_lag()
            self.assert_sensor_equals(sensorname, value, sensortype, self._setter_text(
                requestname, "parameter %r" % (value,), sensorname, value, sensortype, places),
                places)
        for value in bad:
            self.assert_request_fails(requestname, value)

    def test_multi_setter_request(self, requestname: str, good: Sequence[tuple] = (),
                                  bad: Sequence[tuple] = ()) -> None:
        """Check a request that changes several sensors.

        Parameters
        ----------
        requestname : str
        good : sequence of tuples, optional
            ``(params, expected_values[, options])``: ``expected_values`` are
            sensor tuples (see :meth:`expected_sensor_value_tuple`); options
            may hold ``"statuses"`` (``(name, status)`` pairs) and ``"delay"``
            (extra seconds before the sensors are read).
        bad : sequence of tuples, optional
            Parameter tuples the request must reject.
        """
        for case in good:
            params, expected_values = case[0], case[1]
            options = case[2] if len(case) > 2 else {}
            self.assert_request_succeeds(requestname, *params)
            self._wait_sensor_lag(options.get("delay", 0))
            for name, value, stype, places in (self.expected_sensor_value_tuple(*t)
                                               for t in expected_values):
                self.assert_sensor_equals(name, value, stype, self._setter_text(
                    requestname, "parameters %r" % (params,), name, value, stype, places),
                    places)
            for name, status in options.get("statuses", ()):
                self.assert_sensor_status_equals(name, status, (
                    "After request '%s' was called with parameters %r, status of sensor '%s' "
                    "is %%r. Expected %r." % (requestname, params, name, status)))
        for params in bad:
            self.assert_request_fails(requestname, *params)

    def _wait_sensor_lag(self, extra: float = 0.0) -> None:
        # The device may apply a change a little after replying (test.sensor_lag).
        lag = self._sensor_lag() + extra
        if lag > 0:
            time.sleep(lag)

    @staticmethod
    def _setter_text(requestname: str, called_with: str, sensorname: str, value: Any,
                     sensortype: type, places: int) -> str:
        return ("After request '%s' was called with %s, value of sensor '%s' is %%r. "
                "Expected %r%s." % (requestname, called_with, sensorname, value,
                                    " (within %d decimal places)" % places
                                    if sensortype == float else ""))
