"""Sensors: typed values with a status and a timestamp, and their observers.

A :class:`Sensor` holds its current :class:`Reading`
``(timestamp, status, value)``. :meth:`Sensor.set` replaces the reading in
one assignment (so a reader never sees parts of two updates) and then calls
``observer.update(sensor, reading)`` on every attached observer, in the
thread that called ``set``. Observers written for the katcp 0.5 API, whose
``update`` takes only the sensor, are called as ``update(sensor)``.

Formatting for the wire follows KATCP v5 (and v4 with ``major=4``): see the
table in :class:`Sensor`.
"""

import builtins
import inspect
import threading
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._errors import KatcpSyntaxError, KatcpTypeError
from ._protocol import DEFAULT_KATCP_MAJOR
from ._reading import Reading
from ._text import to_str
from .kattypes import Address, Bool, Discrete, Float, Int, KatcpType, Lru, Str, Timestamp

__all__ = ["Sensor", "Reading"]

_OBSERVER_ARGS_WITH_READING = 2  # update(sensor, reading)


def _takes_reading(observer: Any) -> bool:
    """Whether ``observer.update`` accepts ``(sensor, reading)``."""
    update = getattr(observer, "update", None)
    if update is None:
        raise TypeError("Sensor observer %r has no update() method" % (observer,))
    try:
        params = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = 0
    for param in params:
        if param.kind == param.VAR_POSITIONAL:
            return True
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= _OBSERVER_ARGS_WITH_READING


class Sensor:
    """A sensor of one KATCP type.

    Parameters
    ----------
    sensor_type : int or type
        One of the type constants (:attr:`INTEGER` ... :attr:`ADDRESS`), or
        a shortcut ``int``, ``float``, ``str``, ``bool``.
    name : str
        The sensor name, e.g. ``"cpu.temperature"``.
    description : str, optional
        A short description; a generated one when omitted.
    units : str, optional
        Units of the value (``""`` when omitted). Timestamp sensors take
        none.
    params : list, optional
        ``[min, max]`` for integer and float sensors (advertised only; not
        enforced), the allowed values for discrete sensors (required),
        nothing for the other types.
    default : object, optional
        The initial value; by type 0, 0.0, False, ``LRU_NOMINAL``, the first
        discrete value, ``""``, 0.0, ``("0.0.0.0", None)``. For integer and
        float sensors with a range that excludes the type default, the
        minimum.
    initial_status : int, optional
        Initial status, :attr:`UNKNOWN` when omitted.

    Raises
    ------
    ValueError
        For units on a timestamp sensor.
    KeyError
        For an unknown sensor type.

    Notes
    -----
    ========== ============ ========================= =====================
    type       name         v5 value                  v4 difference
    ========== ============ ========================= =====================
    INTEGER    integer      ``%d``
    FLOAT      float        ``repr(float)``
    BOOLEAN    boolean      ``1`` / ``0``
    LRU        lru          ``nominal`` / ``error``
    DISCRETE   discrete     one of the params
    STRING     string       UTF-8 bytes
    TIMESTAMP  timestamp    seconds ``%.6f``          integer milliseconds
    ADDRESS    address      ``host:port``, ``[v6]:p``
    ========== ============ ========================= =====================

    The reading timestamp is always formatted like a timestamp value.
    """

    INTEGER, FLOAT, BOOLEAN, LRU, DISCRETE, STRING, TIMESTAMP, ADDRESS = range(8)

    SENSOR_TYPES: Dict[int, Tuple[type, Any]] = {
        INTEGER: (Int, 0),
        FLOAT: (Float, 0.0),
        BOOLEAN: (Bool, False),
        LRU: (Lru, Lru.LRU_NOMINAL),
        DISCRETE: (Discrete, "unknown"),
        STRING: (Str, ""),
        TIMESTAMP: (Timestamp, 0.0),
        ADDRESS: (Address, Address.NULL),
    }
    SENSOR_SHORTCUTS = {int: INTEGER, float: FLOAT, str: STRING, bool: BOOLEAN}
    SENSOR_TYPE_LOOKUP = {v[0].name: k for k, v in SENSOR_TYPES.items()}

    UNKNOWN, NOMINAL, WARN, ERROR, FAILURE, UNREACHABLE, INACTIVE = range(7)
    STATUSES_RAW = {
        UNKNOWN: b"unknown",
        NOMINAL: b"nominal",
        WARN: b"warn",
        ERROR: b"error",
        FAILURE: b"failure",
        UNREACHABLE: b"unreachable",
        INACTIVE: b"inactive",
    }
    STATUSES = {k: v.decode("ascii") for k, v in STATUSES_RAW.items()}
    STATUS_NAMES = {v: k for k, v in STATUSES.items()}
    STATUS_NAMES_RAW = {v: k for k, v in STATUSES_RAW.items()}

    LRU_NOMINAL, LRU_ERROR = Lru.LRU_NOMINAL, Lru.LRU_ERROR
    LRU_VALUES = Lru.LRU_VALUES
    LRU_CONSTANTS = {v: k for k, v in LRU_VALUES.items()}

    TIMESTAMP_TYPE = Timestamp()

    def __init__(self, sensor_type: Any, name: str, description: Optional[str] = None,
                 units: Optional[str] = None, params: Optional[Sequence[Any]] = None,
                 default: Any = None, initial_status: Optional[int] = None) -> None:
        units = "" if units is None else to_str(units)
        params = [] if params is None else list(params)
        if initial_status is None:
            initial_status = Sensor.UNKNOWN
        sensor_type = self.SENSOR_SHORTCUTS.get(sensor_type, sensor_type)
        self._sensor_type = sensor_type
        # Replaced (never mutated) under the lock, so notify() reads it without locking.
        self._observers: Dict[Any, bool] = {}
        self._observers_lock = threading.Lock()
        typeclass, default_value = self.SENSOR_TYPES[sensor_type]
        if sensor_type in (Sensor.INTEGER, Sensor.FLOAT):
            if len(params) == 2 and not params[0] <= default_value <= params[1]:
                default_value = params[0]
            self._kattype: KatcpType = typeclass()
        elif sensor_type == Sensor.DISCRETE:
            params = [to_str(p) for p in params]
            if not params:
                raise ValueError("Discrete sensor %r needs at least one value in params" % (name,))
            default_value = params[0]
            self._kattype = typeclass(params)
        else:
            if sensor_type == Sensor.TIMESTAMP and units:
                raise ValueError(
                    "Units cannot be specified for TIMESTAMP sensors: KATCP defines them "
                    "as seconds (milliseconds for katcp versions 4 and below)")
            self._kattype = typeclass()
        if default is not None:
            default_value = default
        self._current_reading = Reading(time.time(), initial_status, default_value)
        self._formatter = self._kattype.pack
        self._parser = self._kattype.unpack
        self.type = self.stype = self._kattype.name
        self.name = to_str(name)
        if description is None:
            description = "%s sensor %r %s" % (
                self.stype.capitalize(), self.name,
                "in unit " + units if units else "with no unit")
        self.description = to_str(description)
        self.units = units
        self.params = params
        self.formatted_params = [self._formatter(p, True) for p in params]

    def _reading_field(index: int, name: str) -> property:  # type: ignore[misc]
        def getter(self: "Sensor") -> Any:
            warnings.warn("Use of Sensor.%s attribute is deprecated; use read()" % name,
                          DeprecationWarning, stacklevel=2)
            return self._current_reading[index]
        return property(getter)

    _timestamp = _reading_field(0, "_timestamp")
    _status = _reading_field(1, "_status")
    _value = _reading_field(2, "_value")
    del _reading_field

    def __repr__(self) -> str:
        cls = type(self)
        return "<%s.%s object name=%r at 0x%x>" % (cls.__module__, cls.__name__,
                                                   self.name, id(self))

    # ------------------------------------------------------------------ constructors

    @classmethod
    def integer(cls, name: str, description: Optional[str] = None, unit: str = "",
                params: Optional[Sequence[int]] = None, default: Optional[int] = None,
                initial_status: Optional[int] = None) -> "Sensor":
        """Create an integer sensor.

        Parameters
        ----------
        name : str
        description : str, optional
        unit : str, optional
        params : list, optional
            Advertised range, ``[min, max]``.
        default : int, optional
        initial_status : int, optional

        Returns
        -------
        sensor : Sensor
        """
        return cls(cls.INTEGER, name, description, unit, params, default, initial_status)

    @classmethod
    def float(cls, name: str, description: Optional[str] = None, unit: str = "",
              params: Optional[Sequence[Any]] = None, default: Any = None,
              initial_status: Optional[int] = None) -> "Sensor":
        """Create a float sensor.

        Parameters
        ----------
        name : str
        description : str, optional
        unit : str, optional
        params : list, optional
            Advertised range, ``[min, max]``.
        default : float, optional
        initial_status : int, optional

        Returns
        -------
        sensor : Sensor
        """
        return cls(cls.FLOAT, name, description, unit, params, default, initial_status)

    @classmethod
    def boolean(cls, name: str, description: Optional[str] = None, unit: str = "",
                default: Optional[bool] = None, initial_status: Optional[int] = None) -> "Sensor":
        """Create a boolean sensor.

        Parameters
        ----------
        name : str
        description : str, optional
        unit : str, optional
        default : bool, optional
        initial_status : int, optional

        Returns
        -------
        sensor : Sensor
        """
        return cls(cls.BOOLEAN, name, description, unit, None, default, initial_status)

    @classmethod
    def lru(cls, name: str, description: Optional[str] = None, unit: str = "",
            default: Optional[int] = None, initial_status: Optional[int] = None) -> "Sensor":
        """Create an lru sensor (values :attr:`LRU_NOMINAL`, :attr:`LRU_ERROR`).

        Parameters
        ----------
        name : str
        description : str, optional
        unit : str, optional
        default : int, optional
        initial_status : int, optional

        Returns
        -------
        sensor : Sensor
        """
        return cls(cls.LRU, name, description, unit, None, default, initial_status)

    @classmethod
    def string(cls, name: str, description: Optional[str] = None, unit: str = "",
               default: Optional[str] = None, initial_status: Optional[int] = None) -> "Sensor":
        """Create a string sensor.

        Parameters
        ----------
        name : str
        description : str, optional
        unit : str, optional
        default : str, optional
        initial_status : int, optional

        Returns
        -------
        sensor : Sensor
        """
        return cls(cls.STRING, name, description, unit, None, default, initial_status)

    @classmethod
    def discrete(cls, name: str, description: Optional[str] = None, unit: str = "",
                 params: Optional[Sequence[str]] = None, default: Optional[str] = None,
                 initial_status: Optional[int] = None) -> "Sensor":
        """Create a discrete sensor.

        Parameters
        ----------
        name : str
        description : str, optional
        unit : str, optional
        params : list of str
            All allowed values; the first is the default value.
        default : str, optional
        initial_status : int, optional

        Returns
        -------
        sensor : Sensor
        """
        return cls(cls.DISCRETE, name, description, unit, params, default, initial_status)

    @classmethod
    def timestamp(cls, name: str, description: Optional[str] = None, unit: str = "",
                  default: Any = None, initial_status: Optional[int] = None) -> "Sensor":
        """Create a timestamp sensor (value in seconds since the epoch).

        Parameters
        ----------
        name : str
        description : str, optional
        unit : str, optional
            Must be empty.
        default : float, optional
        initial_status : int, optional

        Returns
        -------
        sensor : Sensor
        """
        return cls(cls.TIMESTAMP, name, description, unit, None, default, initial_status)

    @classmethod
    def address(cls, name: str, description: Optional[str] = None, unit: str = "",
                default: Any = None, initial_status: Optional[int] = None) -> "Sensor":
        """Create an address sensor (value a ``(host, port)`` tuple).

        Parameters
        ----------
        name : str
        description : str, optional
        unit : str, optional
        default : tuple, optional
            ``(host, port)``, the port an int or None.
        initial_status : int, optional

        Returns
        -------
        sensor : Sensor
        """
        return cls(cls.ADDRESS, name, description, unit, None, default, initial_status)

    # ------------------------------------------------------------------ observers

    def attach(self, observer: Any) -> None:
        """Attach an observer, called on every :meth:`set`.

        Parameters
        ----------
        observer : object
            Has ``update(sensor, reading)`` (or the katcp 0.5 form
            ``update(sensor)``).
        """
        takes_reading = _takes_reading(observer)
        with self._observers_lock:
            observers = dict(self._observers)
            observers[observer] = takes_reading
            self._observers = observers

    def detach(self, observer: Any) -> None:
        """Detach an observer (no error if it is not attached).

        Parameters
        ----------
        observer : object
        """
        with self._observers_lock:
            if observer in self._observers:
                observers = dict(self._observers)
                del observers[observer]
                self._observers = observers

    def notify(self, reading: Optional[Reading] = None) -> None:
        """Call ``update`` on all observers.

        Parameters
        ----------
        reading : Reading, optional
            The reading to pass; the current one when omitted.
        """
        if reading is None:
            reading = self._current_reading
        for observer, takes_reading in self._observers.items():
            if takes_reading:
                observer.update(self, reading)
            else:
                observer.update(self)

    # ------------------------------------------------------------------ reading

    def set(self, timestamp: builtins.float, status: int, value: Any) -> None:
        """Set the reading (no checks) and notify observers.

        Parameters
        ----------
        timestamp : float
            Seconds since the epoch.
        status : int
            A status constant.
        value : object
        """
        reading = self._current_reading = Reading(timestamp, status, value)
        self.notify(reading)

    def set_value(self, value: Any, status: int = NOMINAL, timestamp: Optional[builtins.float] = None,
                  major: int = DEFAULT_KATCP_MAJOR) -> None:
        """Check a value and set it.

        Parameters
        ----------
        value : object
        status : int, optional
            Default :attr:`NOMINAL`.
        timestamp : float, optional
            Default ``time.time()``.
        major : int, optional
            KATCP major version for the check.

        Raises
        ------
        ValueError
            If the value is invalid for the type (e.g. not a discrete value).
        """
        self._kattype.check(value, major)
        if timestamp is None:
            timestamp = time.time()
        self.set(timestamp, status, value)

    def read(self) -> Reading:
        """Return the current reading ``(timestamp, status, value)``.

        Returns
        -------
        reading : Reading
        """
        return self._current_reading

    def value(self) -> Any:
        """Return the current value.

        Returns
        -------
        value : object
        """
        return self._current_reading.value

    def status(self) -> int:
        """Return the current status constant.

        Returns
        -------
        status : int
        """
        return self._current_reading.status

    def format_reading(self, reading: Sequence[Any],
                       major: int = DEFAULT_KATCP_MAJOR) -> Tuple[bytes, bytes, bytes]:
        """Format a reading of this sensor for the wire.

        Parameters
        ----------
        reading : Reading or tuple
        major : int, optional

        Returns
        -------
        timestamp, status, value : bytes
        """
        timestamp, status, value = reading
        return (self.TIMESTAMP_TYPE.encode(timestamp, major), self.STATUSES_RAW[status],
                self._formatter(value, True, major))

    def read_formatted(self, major: int = DEFAULT_KATCP_MAJOR) -> Tuple[bytes, bytes, bytes]:
        """Return the current reading formatted for the wire.

        Parameters
        ----------
        major : int, optional

        Returns
        -------
        timestamp, status, value : bytes
        """
        return self.format_reading(self._current_reading, major)

    def parse_value(self, s_value: bytes, katcp_major: int = DEFAULT_KATCP_MAJOR) -> Any:
        """Parse a wire value of this sensor's type.

        Parameters
        ----------
        s_value : bytes
            (``str`` is accepted and UTF-8 encoded.)
        katcp_major : int, optional

        Returns
        -------
        value : object

        Raises
        ------
        ValueError
            If the value does not parse or is invalid.
        KatcpTypeError
            If ``s_value`` is neither bytes nor str.
        """
        if isinstance(s_value, str):
            s_value = s_value.encode("utf-8")
        if not isinstance(s_value, bytes):
            raise KatcpTypeError("Sensor value type must be bytes - not {}".format(type(s_value)))
        return self._parser(s_value, katcp_major)

    def set_formatted(self, raw_timestamp: bytes, raw_status: bytes, raw_value: bytes,
                      major: int = DEFAULT_KATCP_MAJOR) -> None:
        """Set the reading from wire values.

        Parameters
        ----------
        raw_timestamp, raw_status, raw_value : bytes
        major : int, optional

        Raises
        ------
        ValueError
            For a bad timestamp or value.
        KeyError
            For an unknown status name.
        """
        if isinstance(raw_status, str):
            raw_status = raw_status.encode("ascii", "replace")
        timestamp = self.TIMESTAMP_TYPE.decode(raw_timestamp, major)
        status = self.STATUS_NAMES_RAW[raw_status]
        value = self.parse_value(raw_value, major)
        self.set(timestamp, status, value)

    @classmethod
    def parse_type(cls, type_string: Any) -> int:
        """Return the type constant for a type name such as ``"integer"``.

        Parameters
        ----------
        type_string : str or bytes

        Returns
        -------
        sensor_type : int

        Raises
        ------
        KatcpSyntaxError
            For an unknown name.
        """
        key = to_str(type_string, "replace")
        try:
            return cls.SENSOR_TYPE_LOOKUP[key]
        except (KeyError, TypeError):
            raise KatcpSyntaxError("Invalid sensor type string %s" % (type_string,)) from None

    @classmethod
    def parse_params(cls, sensor_type: int, formatted_params: Sequence[bytes],
                     major: int = DEFAULT_KATCP_MAJOR) -> List[Any]:
        """Parse the params of a ``#sensor-list`` inform.

        Parameters
        ----------
        sensor_type : int
        formatted_params : list of bytes
        major : int, optional

        Returns
        -------
        params : list
        """
        typeclass, _ = cls.SENSOR_TYPES[sensor_type]
        kattype = typeclass([]) if sensor_type == cls.DISCRETE else typeclass()
        return [kattype.decode(p, major) for p in formatted_params]
