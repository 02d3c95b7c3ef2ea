"""The sensor requests of DeviceServer: sensor-list, sensor-value and sampling."""

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._codec import escape_argument
from ._connection import ClientConnection
from .core import (MS_TO_SEC_FAC, SEC_TO_MS_FAC, SEC_TS_KATCP_MAJOR, FailReply, Message,
                   ProtocolFlags)
from ._text import to_str
from .sampling import SampleNone, SampleStrategy

_BULK_SEPARATOR = b","
_SENSOR_STATUS = b"#sensor-status "


def _sensor_status_line(sensor: Any, reading: Any, major: int) -> bytes:
    """The ``#sensor-status`` line of a reading: the bytes of
    :func:`~katcp_compat.sampling.format_inform_v5` (or ``_v4``) and an
    end-of-line, made without a Message (sampling's hot path)."""
    timestamp, status, value = sensor.format_reading(reading, major)
    return b"".join((_SENSOR_STATUS, escape_argument(timestamp), b" 1 ",
                     escape_argument(sensor.name.encode("utf-8")), b" ",
                     escape_argument(status), b" ", escape_argument(value), b"\n"))


def construct_name_filter(pattern: Optional[str]) -> Tuple[bool, Callable[[str], bool]]:
    """Return ``(exact, match)`` for a sensor name or ``/regex/`` pattern.

    Parameters
    ----------
    pattern : str or None
        None matches every name; ``/re/`` searches names with the regular
        expression; anything else must equal the name.

    Returns
    -------
    exact : bool
        Whether an empty result counts as an unknown name.
    match : callable
        ``match(name) -> bool``.
    """
    if pattern is None:
        return False, lambda name: True
    if len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/"):
        name_re = re.compile(pattern[1:-1])
        return False, lambda name: name_re.search(name) is not None
    return True, lambda name: name == pattern


class SensorRequestsMixin:
    """``?sensor-list``, ``?sensor-value``, ``?sensor-sampling`` (also bulk) and
    ``?sensor-sampling-clear`` (mixed into :class:`~katcp_compat.server.DeviceServer`)."""

    # What the server these requests are mixed into provides.
    PROTOCOL_INFO: ProtocolFlags
    _sensors: Dict[str, Any]
    _state_lock: Any
    _strategies: Dict[ClientConnection, Dict[Any, Any]]
    _timers: Callable[[], Any]
    clear_strategies: Callable[..., None]

    def _sorted_sensors(self, msg: Message) -> Tuple[bool, List[Tuple[str, Any]]]:
        pattern = to_str(msg.arguments[0], "replace") if msg.arguments else None
        exact, name_filter = construct_name_filter(pattern)
        with self._state_lock:
            items = sorted(self._sensors.items())
        return exact, [(name, sensor) for name, sensor in items if name_filter(name)]

    def request_sensor_list(self, req: Any, msg: Message) -> Message:
        r"""Request the list of sensors.

        Parameters
        ----------
        name : str, optional
            Sensor to describe (default: all). A name between slashes is a
            regular expression searched in the sensor names.

        Informs
        -------
        name : str
            The sensor's name.
        description : str
            Its description.
        units : str
            Its units.
        type : str
            Its type.
        params : list of str, optional
            Type parameters: minimum and maximum for integer and float,
            the values for discrete.

        Returns
        -------
        success : {'ok', 'fail'}
            Whether sending the sensor list succeeded.
        informs : int
            Number of ``#sensor-list`` informs sent.

        Examples
        --------
        ::

            ?sensor-list
            #sensor-list psu.voltage PSU\_voltage. V float 0.0 5.0
            #sensor-list cpu.status CPU\_status. \@ discrete on off error
            ...
            !sensor-list ok 5

            ?sensor-list /voltage/
            #sensor-list psu.voltage PSU\_voltage. V float 0.0 5.0
            !sensor-list ok 1
        """
        exact, sensors = self._sorted_sensors(msg)
        if exact and not sensors:
            return req.make_reply("fail", "Unknown sensor name.")
        for name, sensor in sensors:
            req.inform(name, sensor.description, sensor.units, sensor.stype,
                       *sensor.formatted_params)
        return req.make_reply("ok", str(len(sensors)))

    def request_sensor_value(self, req: Any, msg: Message) -> Message:
        """Request the value of a sensor or sensors.

        Parameters
        ----------
        name : str, optional
            Sensor to read (default: all); ``/regex/`` as for sensor-list.

        Informs
        -------
        timestamp : float
            Time of the reading (seconds; milliseconds for KATCP v4).
        count : {1}
            Number of sensors in the inform.
        name : str
            The sensor's name.
        status : str
            The reading's status.
        value : object
            The value.

        Returns
        -------
        success : {'ok', 'fail'}
            Whether sending the values succeeded.
        informs : int
            Number of ``#sensor-value`` informs sent.

        Examples
        --------
        ::

            ?sensor-value cpu.power.on
            #sensor-value 1244631611.415231 1 cpu.power.on nominal 0
            !sensor-value ok 1
        """
        exact, sensors = self._sorted_sensors(msg)
        if exact and not sensors:
            return req.make_reply("fail", "Unknown sensor name.")
        major = self.PROTOCOL_INFO.major
        for name, sensor in sensors:
            timestamp, status, value = sensor.read_formatted(major)
            req.inform(timestamp, "1", name, status, value)
        return req.make_reply("ok", str(len(sensors)))

    def request_sensor_sampling(self, req: Any, msg: Message) -> Message:
        r"""Configure or query the way a sensor is sampled.

        Sampled values are sent asynchronously as ``#sensor-status`` informs.

        Parameters
        ----------
        names : str
            Sensor name; with protocol 5.1 and the ``B`` flag, a
            comma-separated list of names to configure together.
        strategy : {'none', 'auto', 'event', 'differential', 'period', 'event-rate', 'differential-rate'}, optional
            The new strategy (default: query the current one).
        params : list of str, optional
            Strategy parameters (period, difference, shortest and longest
            periods, in seconds).

        Returns
        -------
        success : {'ok', 'fail'}
            Whether the request succeeded.
        names : str
            The sensor name(s).
        strategy : str
            The strategy now in force.
        params : list of str
            Its parameters.

        Examples
        --------
        ::

            ?sensor-sampling cpu.power.on
            !sensor-sampling ok cpu.power.on none
            ?sensor-sampling cpu.power.on period 0.5
            #sensor-status 1244631611.415231 1 cpu.power.on nominal 1
            !sensor-sampling ok cpu.power.on period 0.5
        """
        args = msg.arguments
        bulk = (self.PROTOCOL_INFO.supports(ProtocolFlags.BULK_SET_SENSOR_SAMPLING)
                and bool(args) and (_BULK_SEPARATOR in args[0] or len(args) > 1))
        if bulk:
            return self._bulk_sensor_sampling(req, msg)
        return self._sensor_sampling(req, msg)

    def _inform_callback(self, client: ClientConnection) -> Callable[[Any, Any], None]:
        major = 5 if self.PROTOCOL_INFO.major >= SEC_TS_KATCP_MAJOR else 4

        def inform_callback(sensor: Any, reading: Any) -> None:
            client._write_deferred(_sensor_status_line(sensor, reading, major))
        return inform_callback

    def _install_strategy(self, client: ClientConnection, sensor: Any, new: Any) -> None:
        with self._state_lock:
            strategies = self._strategies.get(client)
            if strategies is None:
                raise FailReply("Client is disconnecting.")
            old = strategies.pop(sensor, None)
            if not isinstance(new, SampleNone):
                strategies[sensor] = new
        if old is not None:
            old.cancel()
        if not isinstance(new, SampleNone):
            new.start()

    def _sensor_sampling(self, req: Any, msg: Message) -> Message:
        if not msg.arguments:
            raise FailReply("No sensor name given.")
        name = to_str(msg.arguments[0], "replace")
        sensor = self._sensors.get(name)
        if sensor is None:
            raise FailReply("Unknown sensor name: %s." % name)
        client = req.client_connection
        major = self.PROTOCOL_INFO.major
        if len(msg.arguments) > 1:
            strategy = msg.arguments[1]
            params: List[Any] = list(msg.arguments[2:])
            if strategy not in SampleStrategy.SAMPLING_LOOKUP_REV:
                raise FailReply("Unknown strategy name: %s." % to_str(strategy, "replace"))
            if not self.PROTOCOL_INFO.strategy_allowed(strategy):
                raise FailReply("Strategy %s not allowed for version %d of katcp"
                                % (to_str(strategy, "replace"), major))
            if major < SEC_TS_KATCP_MAJOR and strategy == b"period" and params:
                params = [float(params[0]) * MS_TO_SEC_FAC] + params[1:]
            try:
                new = SampleStrategy.get_strategy(strategy, self._inform_callback(client), sensor,
                                                  *params, reactor=self._timers())
            except ValueError as exc:
                raise FailReply(str(exc))
            self._install_strategy(client, sensor, new)
        with self._state_lock:
            current = self._strategies.get(client, {}).get(sensor)
        if current is None:
            current = SampleStrategy.get_strategy(b"none", lambda *a: None, sensor,
                                                  reactor=self._timers())
        strategy, params = current.get_sampling_formatted()
        if major < SEC_TS_KATCP_MAJOR and strategy == b"period" and params:
            params = [int(float(params[0]) * SEC_TO_MS_FAC)] + list(params[1:])
        return req.make_reply("ok", name, strategy, *params)

    def _bulk_sensor_sampling(self, req: Any, msg: Message) -> Message:
        names = to_str(msg.arguments[0], "replace").split(",")
        if len(msg.arguments) <= 1:
            raise FailReply("Cannot query multiple sensors.")
        strategy = msg.arguments[1]
        params = list(msg.arguments[2:])
        invalid = [name for name in names if name not in self._sensors]
        if invalid:
            raise FailReply("Unknown sensor names: %r." % invalid)
        client = req.client_connection
        requested = {}
        try:
            if self.PROTOCOL_INFO.strategy_allowed(strategy):
                for name in names:
                    requested[name] = SampleStrategy.get_strategy(
                        strategy, self._inform_callback(client), self._sensors[name], *params,
                        reactor=self._timers())
        except Exception as exc:
            raise FailReply("Invalid strategy requested: %s." % exc)
        if not requested:
            raise FailReply("Invalid request: names %r, strategy %r, params %r."
                            % (names, to_str(strategy, "replace"),
                               [to_str(p, "replace") for p in params]))
        for name in names:
            self._install_strategy(client, self._sensors[name], requested[name])
        strategy_name, strategy_params = requested[names[-1]].get_sampling_formatted()
        return req.make_reply("ok", ",".join(names), strategy_name, *strategy_params)

    def request_sensor_sampling_clear(self, req: Any, msg: Message) -> Message:
        """Set all sampling strategies for this client to none.

        Returns
        -------
        success : {'ok', 'fail'}
            Whether clearing the strategies succeeded.

        Examples
        --------
        ::

            ?sensor-sampling-clear
            !sensor-sampling-clear ok
        """
        if msg.arguments:
            raise FailReply("Too many parameters given.")
        self.clear_strategies(req.client_connection)
        return req.make_reply("ok")
