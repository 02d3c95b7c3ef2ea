"""KATCP protocol versions: the version constants and :class:`ProtocolFlags`.

A leaf module: it imports nothing from the package. Re-exported by
:mod:`katcp_compat.core`.
"""

import re
from typing import Any, Iterable, List, Optional, Union

__all__ = [
    "DEFAULT_KATCP_MAJOR", "SEC_TS_KATCP_MAJOR", "FLOAT_TS_KATCP_MAJOR", "MID_KATCP_MAJOR",
    "VERSION_CONNECT_KATCP_MAJOR", "INTERFACE_CHANGED_KATCP_MAJOR", "SEC_TO_MS_FAC",
    "MS_TO_SEC_FAC", "ProtocolFlags",
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


# --------------------------------------------------------------------------- ProtocolFlags

class ProtocolFlags:
    """The KATCP protocol version and flags of a server (``5.0-IM``).

    Parameters
    ----------
    major : int or None
        Major version number (None counts as 0).
    minor : int or None
        Minor version number (None counts as 0).
    flags : iterable of bytes or str
        The supported flags (a bytes string of flag letters is an iterable), e.g. ``{ProtocolFlags.MULTI_CLIENT,
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
