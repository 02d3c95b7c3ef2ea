"""Test helpers (katcp ``katcp.testutils``), without tornado.

Clients and servers for tests (:class:`BlockingTestClient`,
:class:`DeviceTestServer`), assertion mixins, waiting helpers and mocks of
request objects. katcp 0.9.3's tornado-only helpers
``TimewarpAsyncTestCase``, ``AsyncDeviceTestServer`` and ``AsyncWaitingMock``
can be imported, but the tests that use them skip (see
:data:`TORNADO_ONLY_REASON`); ``call_in_ioloop``, ``wait_sensor_async``,
``TimewarpAsyncTestCaseTimeAdvancer``, ``AtomicIaddCallback``,
``DeviceTestServerWithTimeoutHints`` and ``list_to_native_strings`` do not
exist here.
"""

import concurrent.futures
import functools
import logging
import re
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence
from unittest import mock

from . import _server_base
from ._connection import ClientConnection
from ._testutils_client import BlockingTestClient, MessageRecorder
from ._testutils_server import DeviceTestSensor, DeviceTestServer
from ._testutils_mock import WaitingMock
from ._testutils_tornado import (TORNADO_ONLY_REASON, AsyncDeviceTestServer, AsyncWaitingMock,
                                 TimewarpAsyncTestCase)
from ._testutils_waiters import (SensorTransitionStatusWaiter, SensorTransitionWaiter,
                                 suppress_queue_repeats, wait_sensor)
from .core import Message
from .sensor import Sensor
# Also importable from here, as from katcp.testutils.
from .core import AsyncEvent, AsyncReply, FailReply, ProtocolFlags  # noqa: F401
from .kattypes import (Bool, Discrete, Float, Int, Str, concurrent_reply,  # noqa: F401
                       request, request_timeout_hint, return_reply)
from .server import DeviceServer  # noqa: F401

__all__ = [
    "BlockingTestClient", "DeviceTestServer", "DeviceTestSensor", "TestLogHandler",
    "TestUtilMixin", "SensorComparisonMixin", "WaitingMock", "mock_req", "handle_mock_req",
    "start_thread_with_cleanup", "wait_sensor", "SensorTransitionWaiter", "counting_callback",
    "MessageRecorder", "ClientConnectionTest", "add_mid_to_msg_str",
    "SensorTransitionStatusWaiter", "suppress_queue_repeats", "TORNADO_ONLY_REASON",
    "TimewarpAsyncTestCase", "AsyncDeviceTestServer", "AsyncWaitingMock",
]

log = logging.getLogger("katcp_compat.testutils")


def add_mid_to_msg_str(msg_str: str, mid: Any) -> str:
    """Insert ``[mid]`` after the name of a message string (if mid is not None).

    Parameters
    ----------
    msg_str : str
        ``?name args...``.
    mid : object
        The message id, or None.

    Returns
    -------
    msg_str : str
    """
    if mid is None:
        return msg_str
    parts = msg_str.split(" ", 1)
    parts[0] = "%s[%s]" % (parts[0], mid)
    return " ".join(parts)


class ClientConnectionTest:
    """A stand-in client connection that records what is sent to it."""

    def __init__(self) -> None:
        self.messages: List[Message] = []
        self.mass_informs: List[Message] = []

    def inform(self, msg: Message) -> None:
        """Record an inform."""
        self.messages.append(msg)

    def mass_inform(self, msg: Message) -> None:
        """Record a mass inform."""
        self.mass_informs.append(msg)

    def reply(self, msg: Message, req_msg: Message) -> None:
        """Record a reply."""
        self.messages.append(msg)

    @property
    def informs(self) -> List[Message]:
        """The recorded informs."""
        return [m for m in self.messages if m.mtype == Message.INFORM]

    @property
    def replies(self) -> List[Message]:
        """The recorded replies."""
        return [m for m in self.messages if m.mtype == Message.REPLY]


class TestLogHandler(logging.Handler):
    """A logging handler that remembers the records it receives."""

    __test__ = False  # not a test case, whatever its name

    def __init__(self) -> None:
        super().__init__()
        self._records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Remember a record."""
        self._records.append(record)

    def clear(self) -> None:
        """Forget all records."""
        self._records = []


class TestUtilMixin:
    """Assertions on lists of messages, for :class:`unittest.TestCase` classes."""

    # Provided by the unittest.TestCase the mixin is used with.
    assertEqual: Callable[..., None]
    assertTrue: Callable[..., None]

    def _assert_msgs_length(self, actual_msgs: Sequence[Message], expected_number: int) -> None:
        num_msgs = len(actual_msgs)
        if num_msgs < expected_number:
            self.assertEqual(num_msgs, expected_number, "Too few messages received.")
        elif num_msgs > expected_number:
            self.assertEqual(num_msgs, expected_number, "Too many messages received.")

    def _assert_msgs_equal(self, actual_msgs: Sequence[Message], expected_msgs: Sequence[str],
                           mid: Any = None) -> None:
        for msg, msg_str in zip(actual_msgs, expected_msgs):
            self.assertEqual(str(msg), add_mid_to_msg_str(msg_str, mid))
        self._assert_msgs_length(actual_msgs, len(expected_msgs))

    def _assert_msgs_match(self, actual_msgs: Sequence[Message], expected: Sequence[str]) -> None:
        for msg, pattern in zip(actual_msgs, expected):
            self.assertTrue(re.match(pattern, str(msg)),
                            "Message did match pattern %r: %s" % (pattern, msg))
        self._assert_msgs_length(actual_msgs, len(expected))

    def _assert_msgs_like(self, actual_msgs: Sequence[Message], expected: Sequence[tuple],
                          mid: Any = None) -> None:
        for msg, (prefix, suffix) in zip(actual_msgs, expected):
            text = str(msg)
            prefix = add_mid_to_msg_str(prefix, mid)
            if prefix and not text.startswith(prefix):
                self.assertEqual(text, prefix,
                                 msg="Message '%s' does not start with '%s'." % (text, prefix))
            if suffix and not text.endswith(suffix):
                self.assertEqual(text, suffix,
                                 msg="Message '%s' does not end with '%s'." % (text, suffix))
        self._assert_msgs_length(actual_msgs, len(expected))


class SensorComparisonMixin:
    """Assertions on :class:`Sensor` objects, for :class:`unittest.TestCase` classes."""

    # Provided by the unittest.TestCase the mixin is used with.
    assertEqual: Callable[..., None]
    assertTrue: Callable[..., None]

    key_fns = dict(
        name=lambda s: s.name,
        status=lambda s: s.status(),
        type=lambda s: s.SENSOR_TYPE_LOOKUP[s.stype],
        value=lambda s: s.value(),
        timestamp=lambda s: s.read()[0],
        description=lambda s: s.description,
        units=lambda s: s.units,
        params=lambda s: s.params,
    )

    def _get_sensor_description(self, sensor: Sensor, desired_keys: Optional[Sequence[str]] = None,
                                ignore_keys: Sequence[str] = ()) -> Dict[str, Any]:
        keys = set(self.key_fns) if desired_keys is None else set(desired_keys)
        keys -= set(ignore_keys)
        unknown = keys - set(self.key_fns)
        if unknown:
            raise KeyError("Unknown sensor key: %s" % sorted(unknown)[0])
        return {key: self.key_fns[key](sensor) for key in keys}

    def assert_sensor_equal(self, actual_sensor: Sensor, desired_sensor: Sensor,
                            ignore_attributes: Sequence[str] = ()) -> None:
        """Assert two sensors are equal, optionally ignoring some attributes.

        Parameters
        ----------
        actual_sensor, desired_sensor : Sensor
            The sensors to compare.
        ignore_attributes : sequence of str
            Keys of :attr:`key_fns` to leave out.
        """
        self.assertEqual(self._get_sensor_description(actual_sensor, ignore_keys=ignore_attributes),
                         self._get_sensor_description(desired_sensor,
                                                      ignore_keys=ignore_attributes))

    def assert_sensor_equal_description(self, actual_sensor: Sensor,
                                        desired_description: Dict[str, Any]) -> None:
        """Assert a sensor matches a dict of expected attributes (see :attr:`key_fns`).

        Parameters
        ----------
        actual_sensor : Sensor
            The sensor.
        desired_description : dict
            Expected values of some attributes.
        """
        description = dict(desired_description)
        description.setdefault("name", actual_sensor.name)
        self.assert_sensors_equal_description([actual_sensor], [description])

    def assert_sensors_equal_description(self, actual_sensors: Sequence[Sensor],
                                         desired_description: Sequence[Dict[str, Any]]) -> None:
        """Assert sensors (matched by name) match their descriptions.

        Parameters
        ----------
        actual_sensors : sequence of Sensor
            The sensors.
        desired_description : sequence of dict
            One description (with a ``name``) per sensor.
        """
        actual = {s.name: s for s in actual_sensors}
        desired = {d["name"]: d for d in desired_description}
        self.assertEqual(sorted(actual), sorted(desired))
        actual_desc = {name: self._get_sensor_description(actual[name], list(info))
                       for name, info in desired.items()}
        self.maxDiff = None
        self.assertEqual(actual_desc, desired)

    def assert_sensors_value_conditions(self, actual_sensors: Sequence[Sensor],
                                        value_tests: Dict[str, Callable[[Any], Any]]) -> None:
        """Run ``value_tests[name](value)`` for each named sensor.

        Parameters
        ----------
        actual_sensors : sequence of Sensor
            The sensors.
        value_tests : dict
            Sensor name to a callable that raises AssertionError on failure.
        """
        actual = {s.name: s for s in actual_sensors}
        self.assertTrue(all(name in actual for name in value_tests))
        for name, test in value_tests.items():
            test(actual[name].value())


def counting_callback(event: Optional[threading.Event] = None,
                      number_of_calls: int = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a callback so that ``event`` is set after ``number_of_calls`` calls.

    The wrapped callback gains ``done`` (the event), ``wait(timeout)``,
    ``assert_wait(timeout=1)``, ``get_no_calls()`` and ``reset()``.

    Parameters
    ----------
    event : threading.Event, optional
        The event to set (a new one by default).
    number_of_calls : int
        Calls needed (> 0).

    Returns
    -------
    decorator : callable
    """
    if event is None:
        event = threading.Event()
    assert number_of_calls > 0

    def decorator(original: Callable[..., Any]) -> Callable[..., Any]:
        calls = [0]
        lock = threading.Lock()

        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            with lock:
                calls[0] += 1
                if calls[0] >= number_of_calls:
                    event.set()
            return result

        def assert_wait(timeout: float = 1) -> bool:
            done = event.wait(timeout)
            assert event.is_set()
            return done

        def reset() -> None:
            with lock:
                calls[0] = 0
                event.clear()

        wrapped.get_no_calls = lambda: calls[0]  # type: ignore[attr-defined]
        wrapped.done = event  # type: ignore[attr-defined]
        wrapped.wait = event.wait  # type: ignore[attr-defined]
        wrapped.assert_wait = assert_wait  # type: ignore[attr-defined]
        wrapped.reset = reset  # type: ignore[attr-defined]
        return wrapped

    return decorator


def start_thread_with_cleanup(test_instance: Any, thread_object: Any, timeout: float = 1,
                              start_timeout: Optional[float] = None) -> None:
    """Start a server/client/thread and register its stop and join as test cleanups.

    Parameters
    ----------
    test_instance : unittest.TestCase
        Receives ``addCleanup`` calls.
    thread_object : object
        Has ``start()``, ``stop()`` and ``join(timeout=...)``.
    timeout : float
        Join timeout.
    start_timeout : float, optional
        Passed as ``start(timeout=...)`` when given.
    """
    test_instance.addCleanup(thread_object.join, timeout=timeout)
    test_instance.addCleanup(thread_object.stop)
    if start_timeout is not None:
        thread_object.start(timeout=start_timeout)
    else:
        thread_object.start()


def mock_req(req_name: str, *args: Any, **kwargs: Any) -> WaitingMock:
    """Create a mock request connection (``req``) for calling handlers directly.

    Parameters
    ----------
    req_name : str
        Request name.
    *args
        Request arguments.
    server : DeviceServerBase, optional (keyword)
        Build a real :class:`ClientConnection` for this server (with a mock
        stream). Not together with ``client_conn``.
    client_conn : object, optional (keyword)
        The connection to use (default: a :class:`WaitingMock`).
    sock : object, optional (keyword)
        The mock stream/socket for the ``server`` connection.

    Returns
    -------
    req : WaitingMock
        With ``msg``, ``client_connection``, ``reply_msg``, ``inform_msgs``
        and ``reply_and_inform_msgs_future`` (a concurrent Future resolved
        with ``(reply_msg, inform_msgs)`` on ``req.reply``); ``make_reply``
        returns a real reply Message.

    Raises
    ------
    TypeError
        For conflicting keywords.
    """
    server = kwargs.get("server")
    client_conn = kwargs.get("client_conn")
    sock = kwargs.get("sock")
    if server and client_conn:
        raise TypeError("Specify either server or client_conn, not both")
    if client_conn and sock:
        raise TypeError("Specify either client_conn or sock, not both")
    if server:
        stream = sock or WaitingMock()
        client_conn = ClientConnection(lambda data, defer: stream.write(data), "mock:0",
                                       lambda conn, reason: stream.close(), server.mass_inform)
    if not client_conn:
        client_conn = WaitingMock()
    req = WaitingMock()
    req.reply_msg = None
    req.inform_msgs = []
    req.client_connection = client_conn
    req.msg = Message.request(req_name, *args)
    req.make_reply.side_effect = lambda *a: Message.reply_to_request(req.msg, *a)
    req.reply_and_inform_msgs_future = concurrent.futures.Future()

    def reply_side_effect(*a: Any) -> None:
        req.reply_msg = Message.reply_to_request(req.msg, *a)
        req.reply_and_inform_msgs_future.set_result((req.reply_msg, req.inform_msgs))

    req.reply.side_effect = reply_side_effect
    req.inform.side_effect = lambda *a: req.inform_msgs.append(Message.reply_inform(req.msg, *a))
    return req


def handle_mock_req(dev: Any, req: WaitingMock) -> "concurrent.futures.Future[Any]":
    """Let a (not necessarily started) device server handle a :func:`mock_req`.

    Parameters
    ----------
    dev : DeviceServer
        The server.
    req : WaitingMock
        From :func:`mock_req`.

    Returns
    -------
    future : concurrent.futures.Future
        Resolves with ``(reply_msg, inform_msgs)``.
    """
    client_connection = req.client_connection
    client_connection.reply.side_effect = lambda rep_msg, _orig: req.reply(*rep_msg.arguments)
    with mock.patch.object(_server_base, "ClientRequestConnection", return_value=req):
        dev.handle_request(req.client_connection, req.msg)
    return req.reply_and_inform_msgs_future

