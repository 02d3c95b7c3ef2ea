"""DeviceServer: sensors, sampling and the standard KATCP requests."""

import threading
from typing import Any, Dict, List, Optional, Tuple

from ._connection import ClientConnection
from ._device_logger import DeviceLogger
from ._requests_basic import BasicRequestsMixin
from ._requests_sensors import SensorRequestsMixin, construct_name_filter
from ._server_base import SHUTDOWN_REASON, DeviceServerBase
from .core import VERSION_CONNECT_KATCP_MAJOR, Message
from .version import LIBRARY_BUILD, LIBRARY_VERSION


class DeviceServer(SensorRequestsMixin, BasicRequestsMixin, DeviceServerBase):
    """A device server with sensors and the standard KATCP requests.

    Requests: ``halt``, ``help``, ``log-level``, ``restart``, ``client-list``,
    ``sensor-list``, ``sensor-value``, ``sensor-sampling``,
    ``sensor-sampling-clear``, ``watchdog``, ``version-list`` (v5) and
    ``request-timeout-hint`` (with the ``T`` flag). On connect clients get
    ``#version-connect`` (v5) or ``#version`` / ``#build-state`` (v4); on
    stop, ``#disconnect``.

    Subclasses set ``VERSION_INFO = (name, major, minor)`` and
    ``BUILD_INFO = (name, major, minor, extra)``, may fill
    :attr:`extra_versions`, and must override :meth:`setup_sensors`.

    Sampling strategies run on the timers of the server's I/O loop: the
    server has no sampling thread.

    Parameters
    ----------
    *args, **kwargs
        As :class:`DeviceServerBase` (``host, port, tb_limit=20, logger``).
    """

    VERSION_INFO = ("device_stub", 0, 1)
    BUILD_INFO = ("name", 0, 1, "")
    SUPPORTED_PROTOCOL_MAJOR_VERSIONS = (4, 5)
    UNSUPPORTED_REQUESTS_BY_MAJOR_VERSION = {4: {"version-list"}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.PROTOCOL_INFO.major not in self.SUPPORTED_PROTOCOL_MAJOR_VERSIONS:
            raise ValueError("Device server only supports katcp procotol versions %r, not %r as "
                             "specified in self.PROTOCOL_INFO"
                             % (self.SUPPORTED_PROTOCOL_MAJOR_VERSIONS, self.PROTOCOL_INFO.major))
        super().__init__(*args, **kwargs)
        self.log = DeviceLogger(self, python_logger=self._logger)
        #: Extra ``?version-list`` entries: role -> (version, build state or None).
        self.extra_versions: Dict[str, Tuple[str, Optional[str]]] = {}
        self._restart_queue: Any = None
        self._sensors: Dict[str, Any] = {}
        self._strategies: Dict[ClientConnection, Dict[Any, Any]] = {}
        self._client_conns: set = set()
        self._state_lock = threading.RLock()
        self.setup_sensors()

    # ------------------------------------------------------------------ life cycle
    def stop(self, timeout: Optional[float] = 1.0) -> bool:
        """Stop the server (see :meth:`DeviceServerBase.stop`) and every sampling strategy.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the threads to end.

        Returns
        -------
        stopped : bool
            Whether every thread has ended.
        """
        stopped = super().stop(timeout)
        # Detach every remaining strategy from its sensor, even if a busy
        # handler thread kept the disconnect hooks from running.
        with self._state_lock:
            conns = list(self._strategies)
        for conn in conns:
            self.clear_strategies(conn, remove_client=True)
        return stopped

    # ------------------------------------------------------------------ versions
    def build_state(self) -> str:
        """Return the build state ``name-major.minor[extra]``."""
        return "%s-%s.%s%s" % self.BUILD_INFO

    def version(self) -> str:
        """Return the version ``name-major.minor``."""
        return "%s-%s.%s" % self.VERSION_INFO

    # ------------------------------------------------------------------ clients
    def on_client_connect(self, client_conn: ClientConnection) -> None:
        """Send the version informs to a new client.

        Parameters
        ----------
        client_conn : ClientConnection
            The new client.
        """
        with self._state_lock:
            self._client_conns.add(client_conn)
            self._strategies[client_conn] = {}
        if self.PROTOCOL_INFO.major >= VERSION_CONNECT_KATCP_MAJOR:
            greeting = [
                Message.inform("version-connect", "katcp-protocol", str(self.PROTOCOL_INFO)),
                Message.inform("version-connect", "katcp-library",
                               "katcp-python-%s" % LIBRARY_VERSION, LIBRARY_BUILD),
                Message.inform("version-connect", "katcp-device", self.version(),
                               self.build_state()),
            ]
        else:
            greeting = [Message.inform("version", self.version()),
                        Message.inform("build-state", self.build_state())]
        client_conn._send_many(greeting)

    # The standard greeting never blocks, so the server may run it on its I/O thread.
    on_client_connect._non_blocking = True  # type: ignore[attr-defined]

    def on_client_disconnect(self, client_conn: ClientConnection, msg: str,
                             connection_valid: bool) -> None:
        """Drop the client's strategies and, if possible, send ``#disconnect``.

        Parameters
        ----------
        client_conn : ClientConnection
            The client.
        msg : str
            The reason.
        connection_valid : bool
            Whether messages can still be sent.
        """
        with self._state_lock:
            self._client_conns.discard(client_conn)
        self.clear_strategies(client_conn, remove_client=True)
        if connection_valid:
            client_conn.inform(Message.inform("disconnect", msg))

    # Nor does the standard farewell: a lost client's may run on the I/O thread.
    on_client_disconnect._non_blocking = True  # type: ignore[attr-defined]

    def clear_strategies(self, client_conn: ClientConnection, remove_client: bool = False) -> None:
        """Cancel every sampling strategy of a client.

        Parameters
        ----------
        client_conn : ClientConnection
            The client.
        remove_client : bool
            Also forget the client.
        """
        with self._state_lock:
            if remove_client:
                strategies = self._strategies.pop(client_conn, None)
            else:
                strategies = self._strategies.get(client_conn)
                if strategies is not None:
                    self._strategies[client_conn] = {}
        for strategy in (strategies or {}).values():
            strategy.cancel()

    # ------------------------------------------------------------------ sensors
    def setup_sensors(self) -> None:
        """Add the device's sensors; subclasses must override.

        Raises
        ------
        NotImplementedError
            Always, in this base class.
        """
        raise NotImplementedError("Device server subclasses must implement setup_sensors.")

    def add_sensor(self, sensor: Any) -> None:
        """Add a sensor (replacing one with the same name).

        Parameters
        ----------
        sensor : Sensor
            The sensor.
        """
        with self._state_lock:
            old = self._sensors.get(sensor.name)
            self._sensors[sensor.name] = sensor
        if old is not None and old is not sensor:
            self._cancel_sensor_strategies(old)

    def has_sensor(self, sensor_name: str) -> bool:
        """Whether a sensor of that name exists.

        Parameters
        ----------
        sensor_name : str
            The name.

        Returns
        -------
        known : bool
        """
        return sensor_name in self._sensors

    def remove_sensor(self, sensor: Any) -> None:
        """Remove a sensor (object or name) and cancel its strategies.

        Parameters
        ----------
        sensor : Sensor or str
            The sensor or its name.

        Raises
        ------
        KeyError
            If no such sensor exists.
        """
        name = sensor if isinstance(sensor, str) else sensor.name
        with self._state_lock:
            removed = self._sensors.pop(name)
        self._cancel_sensor_strategies(removed)

    def _cancel_sensor_strategies(self, sensor: Any) -> None:
        with self._state_lock:
            cancelled = [strategies.pop(sensor) for strategies in self._strategies.values()
                         if sensor in strategies]
        for strategy in cancelled:
            strategy.cancel()

    def get_sensor(self, sensor_name: str) -> Any:
        """Return the sensor of that name.

        Parameters
        ----------
        sensor_name : str
            The name.

        Returns
        -------
        sensor : Sensor

        Raises
        ------
        ValueError
            If no such sensor exists.
        """
        sensor = self._sensors.get(sensor_name)
        if sensor is None:
            raise ValueError("Unknown sensor '%s'." % (sensor_name,))
        return sensor

    def get_sensors(self) -> List[Any]:
        """Return all sensors.

        Returns
        -------
        sensors : list of Sensor
        """
        return list(self._sensors.values())

    def set_restart_queue(self, restart_queue: Any) -> None:
        """Register the queue that ``?restart`` puts the server on.

        Parameters
        ----------
        restart_queue : queue.Queue
            An unbounded queue.
        """
        self._restart_queue = restart_queue


# Built-in handlers that never block: they may run on the I/O thread.
DeviceServer._NON_BLOCKING_HANDLERS = {
    name: DeviceServer._request_handlers[name]
    for name in ("watchdog", "help", "log-level", "client-list", "sensor-list", "sensor-value",
                 "version-list")
}


class AsyncDeviceServer(DeviceServer):
    """:class:`DeviceServer` under its katcp 0.9 name for asynchronous use.

    There is no separate asynchronous mode: handlers run on the handler
    thread and may reply later (:class:`AsyncReply`, or by returning a
    :class:`concurrent.futures.Future`).
    """


__all__ = ["DeviceServer", "AsyncDeviceServer", "construct_name_filter", "SHUTDOWN_REASON"]
