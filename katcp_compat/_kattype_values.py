"""The KATCP value types (re-exported by :mod:`katcp_compat.kattypes`).

Each type converts between a Python value and the unescaped bytes of one
KATCP argument; error texts match the original library.
"""

import numbers
import re
import struct
from typing import Any, Iterable, List, Optional

from ._protocol import DEFAULT_KATCP_MAJOR, MS_TO_SEC_FAC, SEC_TO_MS_FAC, SEC_TS_KATCP_MAJOR
from ._text import to_str

__all__ = [
    "KatcpType", "Int", "Float", "Bool", "Str", "Discrete", "DiscreteMulti", "Lru",
    "Address", "Timestamp", "TimestampOrNow", "StrictTimestamp", "Struct", "Regex",
]


class KatcpType:
    """Base class of the KATCP types.

    Subclasses set :attr:`name` and implement ``encode(value, major)`` and
    ``decode(bytes, major)``; they may override ``check(value, major)``.

    Parameters
    ----------
    default : object, optional
        Value used when the argument is missing (or packing None).
    optional : bool, optional
        Whether a missing value (None) is allowed without a default.
    multiple : bool, optional
        Whether the type takes all remaining arguments; only for the last
        type of a list.
    """

    name = "unknown"

    def __init__(self, default: Any = None, optional: bool = False,
                 multiple: bool = False) -> None:
        self._default = default
        self._optional = optional
        self._multiple = multiple

    def get_default(self) -> Any:
        """Return the default value.

        Returns
        -------
        default : object
            The default (None if optional without default).

        Raises
        ------
        ValueError
            ``No value or default given`` when there is no default and the
            type is not optional.
        """
        if self._default is None and not self._optional:
            raise ValueError("No value or default given")
        return self._default

    def check(self, value: Any, major: int) -> None:
        """Check that a value is valid; raise ValueError if not.

        Parameters
        ----------
        value : object
            The Python value.
        major : int
            KATCP major version.
        """

    def encode(self, value: Any, major: int) -> bytes:
        """Encode a value as argument bytes (no check).

        Parameters
        ----------
        value : object
            The Python value.
        major : int
            KATCP major version.

        Returns
        -------
        packed : bytes
        """
        raise NotImplementedError

    def decode(self, value: bytes, major: int) -> Any:
        """Decode argument bytes into a value (no check).

        Parameters
        ----------
        value : bytes
            The unescaped argument.
        major : int
            KATCP major version.

        Returns
        -------
        value : object
        """
        raise NotImplementedError

    def pack(self, value: Any, nocheck: bool = False, major: int = DEFAULT_KATCP_MAJOR) -> bytes:
        """Check and encode a value as an unescaped KATCP argument.

        Parameters
        ----------
        value : object
            The value; None means the default.
        nocheck : bool, optional
            Skip :meth:`check`.
        major : int, optional
            KATCP major version (default 5).

        Returns
        -------
        packed : bytes

        Raises
        ------
        ValueError
            If the value is missing or invalid.
        """
        if value is None:
            value = self.get_default()
        if value is None:
            raise ValueError("Cannot pack a None value.")
        if not nocheck:
            self.check(value, major)
        return self.encode(value, major)

    def unpack(self, packed_value: Optional[bytes], major: int = DEFAULT_KATCP_MAJOR) -> Any:
        """Decode and check an unescaped KATCP argument.

        Parameters
        ----------
        packed_value : bytes or None
            The argument; None means missing (the default is used).
        major : int, optional
            KATCP major version (default 5).

        Returns
        -------
        value : object

        Raises
        ------
        ValueError
            If the argument cannot be parsed or is invalid.
        """
        value = self.get_default() if packed_value is None else self.decode(packed_value, major)
        if value is not None:
            self.check(value, major)
        return value


class Int(KatcpType):
    """The KATCP integer type.

    Parameters
    ----------
    min, max : int, optional
        Inclusive limits checked by :meth:`check`.
    **kwargs
        ``default``, ``optional``, ``multiple`` as for :class:`KatcpType`.
    """

    name = "integer"

    def __init__(self, min: Optional[int] = None, max: Optional[int] = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._min = min
        self._max = max

    def encode(self, value: Any, major: int) -> bytes:
        return b"%d" % (value,)

    def decode(self, value: bytes, major: int) -> int:
        try:
            return int(value)
        except Exception:
            raise ValueError("Could not parse value '%s' as integer." % (value,)) from None

    def check(self, value: Any, major: int) -> None:
        """Raise ValueError if the value is outside ``[min, max]``."""
        if self._min is not None and value < self._min:
            raise ValueError("Integer %d is lower than minimum %d." % (value, self._min))
        if self._max is not None and value > self._max:
            raise ValueError("Integer %d is higher than maximum %d." % (value, self._max))


class Float(KatcpType):
    """The KATCP float type; values go out as ``repr(float)``.

    Parameters
    ----------
    min, max : float, optional
        Inclusive limits checked by :meth:`check`.
    **kwargs
        ``default``, ``optional``, ``multiple`` as for :class:`KatcpType`.
    """

    name = "float"

    def __init__(self, min: Optional[float] = None, max: Optional[float] = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._min = min
        self._max = max

    def encode(self, value: Any, major: int) -> bytes:
        if type(value) is float:  # the common case, without the slow ABC check
            return repr(value).encode("ascii")
        if isinstance(value, numbers.Real):
            return repr(float(value)).encode("ascii")
        raise ValueError("Could not encode value '%r' as float." % (value,))

    def decode(self, value: bytes, major: int) -> float:
        try:
            return float(value)
        except Exception:
            raise ValueError("Could not parse value '%s' as float." % (value,)) from None

    def check(self, value: Any, major: int) -> None:
        """Raise ValueError if the value is outside ``[min, max]``."""
        if self._min is not None and value < self._min:
            raise ValueError("Float %g is lower than minimum %g." % (value, self._min))
        if self._max is not None and value > self._max:
            raise ValueError("Float %g is higher than maximum %g." % (value, self._max))


class Bool(KatcpType):
    """The KATCP boolean type: ``1`` and ``0``."""

    name = "boolean"

    def encode(self, value: Any, major: int) -> bytes:
        return b"1" if value else b"0"

    def decode(self, value: bytes, major: int) -> bool:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if value not in (b"0", b"1"):
            raise ValueError("Boolean value must be b'0' or b'1' but is '%s'." % (value,))
        return value == b"1"


class Str(KatcpType):
    """The KATCP string type.

    Decoded values are ``str`` (UTF-8); encoded values are bytes. Other
    objects are encoded as ``str(value)``.
    """

    name = "string"

    def encode(self, value: Any, major: int) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode("utf-8")
        return str(value).encode("utf-8")

    def decode(self, value: bytes, major: int) -> str:
        return to_str(value)


class Discrete(Str):
    """A string that must be one of a fixed list of values.

    Parameters
    ----------
    values : iterable of str
        The allowed values (order kept for messages).
    case_insensitive : bool, optional
        Compare case-insensitively.
    **kwargs
        ``default``, ``optional``, ``multiple`` as for :class:`KatcpType`.
    """

    name = "discrete"

    def __init__(self, values: Iterable[str], case_insensitive: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._case_insensitive = case_insensitive
        self._values = list(values)
        self._valid_values = set(self._values)
        if case_insensitive:
            self._valid_values_lower = {v.lower() for v in self._values}

    def check(self, value: Any, major: int) -> None:
        """Raise ValueError if the value is not one of the allowed values."""
        if self._case_insensitive:
            value = value.lower()
            allowed, caseflag = self._valid_values_lower, " (case-insensitive)"
        else:
            allowed, caseflag = self._valid_values, ""
        if value not in allowed:
            raise ValueError("Discrete value '%s' is not one of %s%s."
                             % (value, list(self._values), caseflag))


class DiscreteMulti(Discrete):
    """A list of discrete values packed into one argument (``a,b``).

    Parameters
    ----------
    values : list of str
        The allowed values.
    all_keyword : str, optional
        The argument that means all values (default ``"all"``).
    separator : str, optional
        Separator between values (default ``","``).
    **kwargs
        As for :class:`Discrete`.
    """

    name = "discretemulti"

    def __init__(self, values: Iterable[str], all_keyword: str = "all", separator: str = ",",
                 **kwargs: Any) -> None:
        self.all_keyword = all_keyword
        self.separator = separator
        super().__init__(values, **kwargs)

    def encode(self, value: Any, major: int) -> bytes:
        return super().encode(self.separator.join(sorted(value, key=str.lower)), major)

    def decode(self, value: bytes, major: int) -> List[str]:
        joined = super().decode(value, major)
        if self.all_keyword and joined == self.all_keyword:
            return sorted(self._valid_values, key=str.lower)
        return sorted((v.strip() for v in joined.split(self.separator)), key=str.lower)

    def check(self, value: Any, major: int) -> None:
        """Raise ValueError if any item is not an allowed value."""
        for item in value:
            super().check(item, major)


class Lru(KatcpType):
    """The KATCP lru type: ``nominal`` or ``error`` (deprecated in v5)."""

    name = "lru"
    LRU_NOMINAL, LRU_ERROR = range(2)
    LRU_VALUES = {LRU_NOMINAL: b"nominal", LRU_ERROR: b"error"}
    LRU_CONSTANTS = {v: k for k, v in LRU_VALUES.items()}

    def encode(self, value: Any, major: int) -> bytes:
        if value not in Lru.LRU_VALUES:
            raise ValueError("Lru value must be LRU_NOMINAL or LRU_ERROR.")
        return Lru.LRU_VALUES[value]

    def decode(self, value: bytes, major: int) -> int:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if value not in Lru.LRU_CONSTANTS:
            raise ValueError("Lru value must be 'nominal' or 'error'.")
        return Lru.LRU_CONSTANTS[value]


class Address(KatcpType):
    """The KATCP address type: ``host:port``, ``[ipv6]:port`` or ``host``.

    Values are ``(host, port)`` tuples with ``port`` an int or None.
    """

    name = "address"
    NULL = ("0.0.0.0", None)
    IPV4_RE = re.compile(rb"^(?P<host>[^:]*)(:(?P<port>\d+))?$")
    IPV6_RE = re.compile(rb"^\[(?P<host>[^[]*)\](:(?P<port>\d+))?$")

    def encode(self, value: Any, major: int) -> bytes:
        try:
            host, port = value
        except (ValueError, TypeError):
            raise ValueError("Could not extract host and port from value %r" % (value,)) from None
        host_bytes = host.encode("ascii") if isinstance(host, str) else bytes(host)
        if b":" in host_bytes:
            host_bytes = b"[%s]" % host_bytes
        return b"%s:%d" % (host_bytes, port) if port is not None else host_bytes

    def decode(self, value: bytes, major: int) -> Any:
        if isinstance(value, str):
            value = value.encode("utf-8")
        pattern = self.IPV6_RE if value.startswith(b"[") else self.IPV4_RE
        match = pattern.match(value)
        if match is None:
            raise ValueError("Could not parse '%s' as an address." % (value,))
        port = match.group("port")
        try:
            host = match.group("host").decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("Could not parse '%s' as an address." % (value,)) from None
        return host, (int(port) if port is not None else None)


class Timestamp(KatcpType):
    """The KATCP timestamp type: float seconds (``%.6f``); integer ms in v4."""

    name = "timestamp"

    def encode(self, value: Any, major: int) -> bytes:
        if major >= SEC_TS_KATCP_MAJOR:
            return b"%.6f" % float(value)
        return b"%i" % int(float(value) * SEC_TO_MS_FAC)

    def decode(self, value: bytes, major: int) -> float:
        try:
            decoded = float(value)
        except Exception:
            raise ValueError("Could not parse value '%s' as timestamp."
                             % (to_str(value, "replace"),)) from None
        if major < SEC_TS_KATCP_MAJOR:
            decoded *= MS_TO_SEC_FAC
        return decoded


class TimestampOrNow(Timestamp):
    """A :class:`Timestamp` or the special value :attr:`NOW` (``now``)."""

    name = "timestamp_or_now"
    NOW = object()

    def encode(self, value: Any, major: int) -> bytes:
        if value is self.NOW:
            return b"now"
        return super().encode(value, major)

    def decode(self, value: bytes, major: int) -> Any:
        if value in (b"now", "now"):
            return self.NOW
        return super().decode(value, major)


class StrictTimestamp(KatcpType):
    """A timestamp that must look like ``<int>[.<int>]`` and not be negative."""

    name = "strict_timestamp"

    def encode(self, value: Any, major: int) -> bytes:
        if isinstance(value, numbers.Real):
            return repr(value).encode("ascii")
        raise ValueError("Could not encode value '%r' as strict timestamp." % (value,))

    def decode(self, value: bytes, major: int) -> float:
        try:
            parts = value.split(b"." if isinstance(value, bytes) else ".", 1)
            for part in parts:
                int(part)
            return float(value)
        except Exception:
            raise ValueError("Could not parse value '%s' as strict timestamp."
                             % (value,)) from None

    def check(self, value: Any, major: int) -> None:
        """Raise ValueError for a negative timestamp."""
        if float(value) < 0:
            raise ValueError("Strict timestamps may not be negative.")


class Struct(KatcpType):
    """Binary values packed with :mod:`struct`.

    Parameters
    ----------
    fmt : str
        The :func:`struct.pack` format; values are tuples.
    **kwargs
        ``default``, ``optional``, ``multiple`` as for :class:`KatcpType`.
    """

    name = "struct"

    def __init__(self, fmt: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fmt = fmt

    def encode(self, value: Any, major: int) -> bytes:
        try:
            return struct.pack(self._fmt, *value)
        except struct.error as e:
            raise ValueError("Could not pack %s into struct with format %s: %s"
                             % (value, self._fmt, e)) from None

    def decode(self, value: bytes, major: int) -> Any:
        try:
            return struct.unpack(self._fmt, value)
        except struct.error as e:
            raise ValueError("Could not unpack %s from struct with format %s: %s"
                             % (value, self._fmt, e)) from None


class Regex(Str):
    """A string that must match a regular expression (``re.match``).

    Parameters
    ----------
    regex : str or re.Pattern
        The expression, as text or compiled.
    **kwargs
        ``default``, ``optional``, ``multiple`` as for :class:`KatcpType`.
    """

    name = "regex"
    _re_flags = [("I", re.I), ("L", re.L), ("M", re.M), ("S", re.S), ("U", re.U), ("X", re.X)]

    def __init__(self, regex: Any, **kwargs: Any) -> None:
        if hasattr(regex, "pattern"):
            self._pattern, self._compiled = regex.pattern, regex
        else:
            self._pattern, self._compiled = regex, re.compile(regex)
        self._flags = ",".join(n for n, v in self._re_flags if self._compiled.flags & v)
        super().__init__(**kwargs)

    def check(self, value: Any, major: int) -> None:
        """Raise ValueError if the value does not match the expression."""
        if not self._compiled.match(value):
            raise ValueError("Value '%s' does not match regex '%s' with flags '%s'."
                             % (value, self._pattern, self._flags))
