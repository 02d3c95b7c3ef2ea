"""Text helpers of the package: bytes as str, and an exception's traceback as text.

A leaf module: it imports nothing from the package.
"""

import traceback
from typing import Any, Optional, Sequence

__all__ = ["to_str", "format_traceback", "address_to_string"]


def to_str(value: Any, errors: str = "strict") -> Any:
    """Return ``value`` decoded as UTF-8 if it is bytes, else ``value`` itself.

    Parameters
    ----------
    value : object
        Usually a message argument (bytes) or a str.
    errors : str, optional
        How to treat bytes that are not UTF-8 (as :meth:`bytes.decode`):
        ``"strict"`` raises :class:`UnicodeDecodeError`, ``"replace"`` puts
        U+FFFD in their place.

    Returns
    -------
    text : object
        A str for bytes and bytearrays; anything else unchanged.
    """
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors)
    return value


def format_traceback(exc_info: Any, limit: Optional[int]) -> str:
    """Return the traceback of ``exc_info`` as katcp sends it in a ``fail`` reply.

    Parameters
    ----------
    exc_info : tuple
        ``(type, value, traceback)``, as from :func:`sys.exc_info`.
    limit : int or None
        Most stack frames shown.

    Returns
    -------
    text : str
        The lines of :func:`traceback.format_exception` joined with newlines
        (so each line ends in a blank line, as in katcp's replies).
    """
    return "\n".join(traceback.format_exception(*exc_info, limit=limit))


def address_to_string(addr_tuple: Sequence[Any]) -> str:
    """Return ``host:port`` for an address tuple.

    Parameters
    ----------
    addr_tuple : tuple
        ``(host, port)``.

    Returns
    -------
    address : str
    """
    return ":".join(str(part) for part in addr_tuple)
