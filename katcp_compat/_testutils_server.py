"""DeviceTestServer and DeviceTestSensor (part of :mod:`katcp_compat.testutils`)."""

import concurrent.futures
import queue
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._timers import SHARED_TIMERS
from .core import AsyncReply, FailReply, Message
from .kattypes import Bool, Float, Int, Str, request, request_timeout_hint, return_reply
from .sensor import Sensor
from .server import DeviceServer


class DeviceTestSensor(Sensor):
    """A sensor created with a reading already set.

    Parameters
    ----------
    sensor_type : int
        A sensor type constant.
    name, description, units : str
        As :class:`Sensor`.
    params : list
        Type parameters.
    timestamp, status, value
        The initial reading.
    """

    def __init__(self, sensor_type: int, name: str, description: str, units: str,
                 params: Optional[list], timestamp: float, status: int, value: Any) -> None:
        super().__init__(sensor_type, name, description, units, params)
        self.set(timestamp, status, value)


class DeviceTestServer(DeviceServer):
    """A device server with test sensors and requests.

    Sensors: ``an.int``, ``a.discrete``, ``a.float``, ``a.floatwithzero``.
    Extra requests: ``new-command``, ``raise-exception``, ``raise-fail``,
    ``slow-command`` (replies after ``arg`` seconds, or when cancelled),
    ``cancel-slow-command``, ``decorated``, ``decorated-return-exception``.
    Every message received is kept in :attr:`messages`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per-instance copies, so tests may add or remove handlers.
        self._request_handlers = dict(self._request_handlers)
        self._inform_handlers = dict(self._inform_handlers)
        self._reply_handlers = dict(self._reply_handlers)
        self._msgs: List[Message] = []
        self._msgs_lock = threading.Lock()
        # (count, future) of until_messages calls not resolved yet.
        self._msgs_waiters: List[Tuple[int, "concurrent.futures.Future[List[Message]]"]] = []
        #: Set to a message to make ``?sensor-list`` / ``?help`` fail with it.
        self.break_sensor_list: Any = False
        self.break_help: Any = False
        self.restart_queue: "queue.Queue[Any]" = queue.Queue()
        self.set_restart_queue(self.restart_queue)
        # Per connection: the timer of its running slow command, and what ends it.
        self._slow_commands: Dict[Any, Tuple[Any, Callable[[], None]]] = {}

    @property
    def request_names(self) -> List[str]:
        """Names of the requests the server handles."""
        return list(self._request_handlers)

    @property
    def sensor_names(self) -> List[str]:
        """Names of the server's sensors."""
        return list(self._sensors)

    def setup_sensors(self) -> None:
        """Add the test sensors."""
        self.restarted = False
        self.add_sensor(DeviceTestSensor(Sensor.INTEGER, "an.int", "An Integer.", "count",
                                         [-5, 5], timestamp=12345, status=Sensor.NOMINAL,
                                         value=3))
        self.add_sensor(DeviceTestSensor(Sensor.DISCRETE, "a.discrete", "A Discrete.", "",
                                         ["one", "two", "three"], timestamp=12345,
                                         status=Sensor.NOMINAL, value="one"))
        self.add_sensor(DeviceTestSensor(Sensor.FLOAT, "a.float", "A Float.", "",
                                         [-123.4, 123.4], timestamp=12345,
                                         status=Sensor.NOMINAL, value=12))
        self.add_sensor(DeviceTestSensor(Sensor.FLOAT, "a.floatwithzero", "A Float with zero.",
                                         "", [-123.0, 123.0], timestamp=12345,
                                         status=Sensor.NOMINAL, value=12))

    def request_new_command(self, req: Any, msg: Message) -> Message:
        """A new command."""
        return Message.reply(msg.name, "ok", "param1", "param2")

    def request_raise_exception(self, req: Any, msg: Message) -> Message:
        """A handler which raises an exception."""
        raise Exception("An exception occurred!")

    def request_raise_fail(self, req: Any, msg: Message) -> Message:
        """A handler which raises a FailReply."""
        raise FailReply("There was a problem with your request.")

    @request_timeout_hint(99)
    def request_slow_command(self, req: Any, msg: Message) -> None:
        """A slow command: replies after msg.arguments[0] seconds.

        Other requests are handled meanwhile; ?cancel-slow-command makes it
        reply at once.
        """
        conn = req.client_connection
        if conn in self._slow_commands:
            raise FailReply("A slow command is already running for this connection")
        wait_time = float(msg.arguments[0])

        def finish() -> None:
            if self._slow_commands.pop(conn, None) is not None:  # once, whoever comes first
                req.reply("ok")

        timers = self.ioloop if self.ioloop is not None else SHARED_TIMERS  # not started yet
        timer = timers.call_later(wait_time, finish)
        self._slow_commands[conn] = (timer, finish)
        raise AsyncReply()

    def _finish_slow_command(self, conn: Any) -> None:
        entry = self._slow_commands.get(conn)
        if entry is not None:
            timer, finish = entry
            timer.cancel()
            finish()

    def request_cancel_slow_command(self, req: Any, msg: Message) -> Message:
        """Cancel a slow command, which then replies at once."""
        self._finish_slow_command(req.client_connection)
        return req.make_reply("ok")

    @request(Str(), Float(), Int(), Bool())
    @return_reply(Str(), Float(), Int(), Bool())
    def request_decorated(self, req: Any, _string: str, _float: float, _int: int,
                          do_raise: bool) -> tuple:
        """Decorated handler: returns its parameters, or raises if asked."""
        if do_raise:
            raise Exception("An exception occurred!")
        req.inform("_string", str(type(_string)))
        req.inform("_float", str(type(_float)))
        req.inform("_int", str(type(_int)))
        req.inform("do_raise", str(type(do_raise)))
        return "ok", _string, _float, _int, do_raise

    @return_reply()
    def request_decorated_return_exception(self, req: Any, msg: Message) -> tuple:
        """Decorated handler: returns fail with an exception object."""
        try:
            raise Exception("An exception occurred!")
        except Exception as exc:
            return "fail", exc

    def request_help(self, req: Any, msg: Message) -> Message:
        if self.break_help:
            return req.make_reply("fail", self.break_help)
        return super().request_help(req, msg)

    request_help.__doc__ = DeviceServer.request_help.__doc__

    def request_sensor_list(self, req: Any, msg: Message) -> Message:
        if self.break_sensor_list:
            return req.make_reply("fail", self.break_sensor_list)
        return super().request_sensor_list(req, msg)

    request_sensor_list.__doc__ = DeviceServer.request_sensor_list.__doc__

    def handle_message(self, client_conn: Any, msg: Message) -> None:
        """Record the message, then handle it as usual."""
        with self._msgs_lock:
            self._msgs.append(msg)
            count = len(self._msgs)
            due = [fut for cnt, fut in self._msgs_waiters if cnt <= count]
            self._msgs_waiters = [(cnt, fut) for cnt, fut in self._msgs_waiters if cnt > count]
        for fut in due:
            fut.set_result(self._msgs)
        super().handle_message(client_conn, msg)

    @property
    def messages(self) -> List[Message]:
        """Every message received so far."""
        return self._msgs

    def until_messages(self, cnt: int) -> "concurrent.futures.Future[List[Message]]":
        """A Future resolved with :attr:`messages` once ``cnt`` have arrived
        (or the server stops, or is not running).

        Parameters
        ----------
        cnt : int
            Number of messages to wait for.

        Returns
        -------
        future : concurrent.futures.Future
        """
        fut: "concurrent.futures.Future[List[Message]]" = concurrent.futures.Future()
        with self._msgs_lock:
            waiting = len(self._msgs) < cnt and self.running()
            if waiting:
                self._msgs_waiters.append((cnt, fut))
        if not waiting:
            fut.set_result(self._msgs)
        return fut

    def stop(self, timeout: Optional[float] = 1.0) -> bool:
        """Stop the server; running slow commands reply first."""
        for conn in list(self._slow_commands):
            self._finish_slow_command(conn)
        stopped = super().stop(timeout)
        with self._msgs_lock:
            waiters, self._msgs_waiters = self._msgs_waiters, []
        for _cnt, fut in waiters:
            fut.set_result(self._msgs)
        return stopped
