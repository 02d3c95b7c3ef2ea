"""KATCP messages, parsing, protocol flags, errors and handler collection.

This module is the codec layer of :mod:`katcp_compat`: it does no I/O and
starts no threads (apart from offering :class:`ExcepthookThread`).

* :class:`Message` holds one KATCP message; ``bytes(msg)`` is its wire line
  without the end-of-line, ``str(msg)`` the same line decoded as UTF-8.
* :class:`MessageParser` turns one received line into a :class:`Message` or
  raises :class:`KatcpSyntaxError`.
* :class:`ProtocolFlags` describes a ``katcp-protocol`` version string such as
  ``5.0-IM``.
* :class:`DeviceMetaclass` collects ``request_*``, ``inform_*`` and
  ``reply_*`` handlers of servers and clients.
* :class:`Sensor` and :class:`Reading` (defined in :mod:`katcp_compat.sensor`)
  are available from here as well, as in the original ``katcp.core``.
"""

import re
from collections import defaultdict, namedtuple
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from protocompat import netutil

from ._errors import (AsyncReply, FailReply, KatcpClientDisconnected, KatcpClientError,
                      KatcpDeviceError, KatcpSyntaxError, KatcpTypeError, KatcpVersionError)
from ._message import (Message, MessageParser, escape_argument, format_argument,
                       unescape_argument)

__all__ = [
    "DEFAULT_KATCP_MAJOR", "SEC_TS_KATCP_MAJOR", "FLOAT_TS_KATCP_MAJOR", "MID_KATCP_MAJOR",
    "VERSION_CONNECT_KATCP_MAJOR", "INTERFACE_CHANGED_KATCP_MAJOR", "SEC_TO_MS_FAC",
    "MS_TO_SEC_FAC", "MAX_MSG_SIZE",
    "KatcpSyntaxError", "KatcpTypeError", "KatcpClientError", "KatcpVersionError",
    "KatcpClientDisconnected", "KatcpDeviceError", "FailReply", "AsyncReply",
    "Message", "MessageParser", "ProtocolFlags", "DeviceMetaclass", "DeviceServerMetaclass",
    "ExcepthookThread", "AttrDict", "DefaultAttrDict", "Reading",
    "convert_method_name", "escape_argument", "unescape_argument", "format_argument",
]

#: Factor from seconds to milliseconds (KATCP v4 timestamps are milliseconds).
SEC_TO_MS_FAC = 1000
#: Factor from milliseconds to seconds.
MS_TO_SEC_FAC = 1.0 / 1000
#: The KATCP major version used when none is given.
DEFAULT_KATCP_MAJOR = 5
#: First major version with timestamps in seconds instead of milliseconds.
SEC_TS_KATCP_MAJOR = 5
#: First major version that allows floating point timestamps.
FLOAT_TS_KATCP_MAJOR = 4
#: First major version with message identifiers.
MID_KATCP_MAJOR = 5
#: First major version that sends ``#version-connect`` informs.
VERSION_CONNECT_KATCP_MAJOR = 5
#: First major version that sends ``#interface-changed`` informs.
INTERFACE_CHANGED_KATCP_MAJOR = 5
#: Longest accepted line in bytes (servers and clients drop longer lines).
MAX_MSG_SIZE = 2 * 1024 * 1024


def convert_method_name(prefix: str, name: str) -> str:
    """Convert a handler method name to its KATCP message name.

    Parameters
    ----------
    prefix : str
        The handler prefix, e.g. ``"request_"``.
    name : str
        The method name, e.g. ``"request_sensor_list"``.

    Returns
    -------
    message_name : str
        The message name, e.g. ``"sensor-list"``.
    """
    return name[len(prefix):].replace("_", "-")


# --------------------------------------------------------------------------- ProtocolFlags

class ProtocolFlags:
    """The KATCP protocol version and flags of a server (``5.0-IM``).

    Parameters
    ----------
    major : int or None
        Major version number (None counts as 0).
    minor : int or None
        Minor version number (None counts as 0).
    flags : iterable of bytes (or str / a bytes string of flag letters)
        The supported flags, e.g. ``{ProtocolFlags.MULTI_CLIENT,
        ProtocolFlags.MESSAGE_IDS}``.

    Raises
    ------
    ValueError
        If a flag needs a newer protocol version than given (``I`` needs 5,
        ``T`` and ``B`` need 5.1).

    Attributes
    ----------
    major, minor : int
        The version.
    flags : set of bytes
        The flags.
    multi_client, message_ids, request_timeout_hints, bulk_set_sensor_sampling : bool
        Whether the matching flag is present.
    """

    VERSION_RE = re.compile(rb"^(?P<major>\d+)\.(?P<minor>\d+)(-(?P<flags>.*))?$")

    MULTI_CLIENT = b"M"
    MESSAGE_IDS = b"I"
    REQUEST_TIMEOUT_HINTS = b"T"
    BULK_SET_SENSOR_SAMPLING = b"B"

    STRATEGIES_V4 = frozenset([b"none", b"auto", b"period", b"event", b"differential"])
    STRATEGIES_V5 = STRATEGIES_V4 | frozenset([b"event-rate", b"differential-rate"])
    STRATEGIES_ALLOWED_BY_MAJOR_VERSION = {4: STRATEGIES_V4, 5: STRATEGIES_V5}

    REQUEST_TIMEOUT_HINTS_MIN_VERSION = (5, 1)
    BULK_SET_SENSOR_SAMPLING_MIN_VERSION = (5, 1)

    def __init__(self, major: Optional[int], minor: Optional[int], flags: Iterable[Any]) -> None:
        self.major = major if major is not None else 0
        self.minor = minor if minor is not None else 0
        self.flags = set(self._normalise_flags(flags))
        self.multi_client = self.MULTI_CLIENT in self.flags
        self.message_ids = self.MESSAGE_IDS in self.flags
        self.request_timeout_hints = self.REQUEST_TIMEOUT_HINTS in self.flags
        self.bulk_set_sensor_sampling = self.BULK_SET_SENSOR_SAMPLING in self.flags
        if self.message_ids and self.major < MID_KATCP_MAJOR:
            raise ValueError("MESSAGE_IDS is only supported in katcp v5 and newer")
        version = (self.major, self.minor)
        if self.request_timeout_hints and version < self.REQUEST_TIMEOUT_HINTS_MIN_VERSION:
            raise ValueError("REQUEST_TIMEOUT_HINTS only suported in katcp v{}.{} and newer"
                             .format(*self.REQUEST_TIMEOUT_HINTS_MIN_VERSION))
        if self.bulk_set_sensor_sampling and version < self.BULK_SET_SENSOR_SAMPLING_MIN_VERSION:
            raise ValueError("BULK_SET_SENSOR_SAMPLING only suported in katcp v{}.{} and newer"
                             .format(*self.BULK_SET_SENSOR_SAMPLING_MIN_VERSION))

    @staticmethod
    def _normalise_flags(flags: Iterable[Any]) -> List[bytes]:
        if isinstance(flags, (bytes, str)):
            flags = [flags[i:i + 1] for i in range(len(flags))]
        result = []
        for flag in flags:
            if isinstance(flag, str):
                flag = flag.encode("ascii")
            elif isinstance(flag, int):
                flag = bytes([flag])
            result.append(flag)
        return result

    def strategy_allowed(self, strategy: Union[bytes, str]) -> bool:
        """Whether a sampling strategy exists in this protocol version.

        Parameters
        ----------
        strategy : bytes or str
            The strategy name, e.g. ``b"event-rate"``.

        Returns
        -------
        allowed : bool
        """
        if isinstance(strategy, str):
            strategy = strategy.encode("ascii", "replace")
        allowed = self.STRATEGIES_ALLOWED_BY_MAJOR_VERSION.get(self.major, self.STRATEGIES_V5)
        return strategy in allowed

    def supports(self, flag: Union[bytes, str]) -> bool:
        """Whether a flag is present.

        Parameters
        ----------
        flag : bytes or str
            One flag letter, e.g. ``ProtocolFlags.MESSAGE_IDS``.

        Returns
        -------
        supported : bool
        """
        if isinstance(flag, str):
            flag = flag.encode("ascii", "replace")
        return flag in self.flags

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProtocolFlags):
            return NotImplemented
        return (self.major, self.minor, self.flags) == (other.major, other.minor, other.flags)

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        flag_str = ("-" + b"".join(sorted(self.flags)).decode("ascii", "replace")
                    if self.flags else "")
        return "%d.%d%s" % (self.major, self.minor, flag_str)

    def __repr__(self) -> str:
        return "<ProtocolFlags %s>" % (self,)

    @classmethod
    def parse_version(cls, version_str: Union[bytes, str]) -> "ProtocolFlags":
        """Create flags from a version string such as ``b"5.0-IM"``.

        Parameters
        ----------
        version_str : bytes or str
            The ``katcp-protocol`` argument of ``#version-connect``.

        Returns
        -------
        flags : ProtocolFlags
            The version and flags; ``0.0`` without flags if the string does
            not match ``<major>.<minor>[-<flags>]``.
        """
        if isinstance(version_str, str):
            version_str = version_str.encode("utf-8")
        match = cls.VERSION_RE.match(version_str)
        if match:
            flag_bytes = match.group("flags") or b""
            return cls(int(match.group("major")), int(match.group("minor")),
                       [flag_bytes[i:i + 1] for i in range(len(flag_bytes))])
        return cls(None, None, set())


# --------------------------------------------------------------------------- handlers

class DeviceMetaclass(type):
    """Metaclass of device servers and clients that collects message handlers.

    Methods named ``request_<name>``, ``inform_<name>`` and ``reply_<name>``
    (underscores in ``<name>`` become dashes) are collected into the class
    dictionaries ``_request_handlers``, ``_inform_handlers`` and
    ``_reply_handlers``. Each must have a docstring: ``?help`` sends it.
    ``reply_inform`` is a server method, not a handler.

    Raises
    ------
    AssertionError
        When a handler has no docstring, e.g.
        ``Request 'boom' has no docstring.``
    """

    def __init__(cls, name: str, bases: Tuple[type, ...], dct: Dict[str, Any]) -> None:
        super().__init__(name, bases, dct)
        cls._request_handlers: Dict[str, Callable[..., Any]] = {}
        cls._inform_handlers: Dict[str, Callable[..., Any]] = {}
        cls._reply_handlers: Dict[str, Callable[..., Any]] = {}
        for attr in dir(cls):
            if attr.startswith("request_"):
                prefix, table, kind = "request_", cls._request_handlers, "Request"
            elif attr.startswith("inform_"):
                prefix, table, kind = "inform_", cls._inform_handlers, "Inform"
            elif attr.startswith("reply_") and attr != "reply_inform":
                prefix, table, kind = "reply_", cls._reply_handlers, "Reply"
            else:
                continue
            handler = getattr(cls, attr)
            if not callable(handler) or not cls.check_protocol(handler):
                continue
            msg_name = convert_method_name(prefix, attr)
            table[msg_name] = handler
            assert handler.__doc__ is not None, "%s '%s' has no docstring." % (kind, msg_name)

    def check_protocol(cls, handler: Callable[..., Any]) -> bool:
        """Return False if ``handler`` should be left out of the handler tables.

        Parameters
        ----------
        handler : callable
            A ``request_*``, ``inform_*`` or ``reply_*`` method.

        Returns
        -------
        keep : bool
            Always True here; clients cannot know protocol flags at class
            creation.
        """
        return True


class DeviceServerMetaclass(DeviceMetaclass):
    """:class:`DeviceMetaclass` that also filters handlers by ``PROTOCOL_INFO``.

    A handler marked with
    :func:`~katcp_compat.kattypes.minimum_katcp_version` or
    :func:`~katcp_compat.kattypes.has_katcp_protocol_flags` is left out when
    the class's ``PROTOCOL_INFO`` does not satisfy it.
    """

    def check_protocol(cls, handler: Callable[..., Any]) -> bool:
        """Whether the class's ``PROTOCOL_INFO`` satisfies the handler's needs.

        Parameters
        ----------
        handler : callable
            A handler method.

        Returns
        -------
        keep : bool
            False if the handler needs a newer version or missing flags.
        """
        info = getattr(cls, "PROTOCOL_INFO", None)
        if info is None:
            return True
        min_version = getattr(handler, "_minimum_katcp_version", None)
        if min_version is not None and (info.major, info.minor) < tuple(min_version):
            return False
        needed = getattr(handler, "_has_katcp_protocol_flags", None)
        if needed is not None:
            return all(info.supports(flag) for flag in needed)
        return True


# --------------------------------------------------------------------------- misc

class ExcepthookThread(netutil.ExcepthookThread):
    """A thread that passes unhandled exceptions to a hook (katcp 0.5 API).

    Parameters
    ----------
    excepthook : callable, optional
        Called as ``excepthook(etype, value, traceback)`` when ``run()``
        raises; works like :func:`sys.excepthook`. When omitted, the hook of
        the creating thread is inherited if that thread has one.
    *args, **kwargs
        Passed on to :class:`threading.Thread`.
    """

    def __init__(self, excepthook: Optional[Callable[..., Any]] = None,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(excepthook, *args, **kwargs)

    @property
    def _excepthook(self) -> Optional[Callable[..., Any]]:
        # The attribute name katcp 0.5 used; kept for subclasses that read it.
        return self.excepthook

    @_excepthook.setter
    def _excepthook(self, hook: Optional[Callable[..., Any]]) -> None:
        self.excepthook = hook

    def isAlive(self) -> bool:
        """Whether the thread is running (the katcp 0.5 spelling of ``is_alive``).

        Returns
        -------
        alive : bool
        """
        return self.is_alive()


class AttrDict(dict):
    """A dict whose items are also attributes (``d.key is d['key']``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__ = self


class DefaultAttrDict(defaultdict):
    """A :class:`collections.defaultdict` whose items are also attributes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__ = self


class Reading(namedtuple("Reading", "timestamp status value")):
    """A sensor reading: ``(timestamp, status, value)``.

    Attributes
    ----------
    timestamp : float
        Seconds since the Unix epoch at which the value was determined.
    status : int
        A sensor status constant (``Sensor.NOMINAL`` ...).
    value : object
        The value, of the sensor type's Python type.
    """

    __slots__ = ()


def __getattr__(name: str) -> Any:
    # Sensor lives in katcp_compat.sensor, which needs this module and
    # kattypes; loading it lazily keeps the imports free of cycles.
    if name == "Sensor":
        from .sensor import Sensor
        return Sensor
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
