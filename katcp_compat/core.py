"""KATCP messages, parsing, protocol flags, errors, sensors and helpers (katcp ``katcp.core``).

This module gathers what the original ``katcp.core`` offers; each piece lives
in its own module below it:

* the codec (:class:`Message`, :class:`MessageParser`, :class:`LineDecoder`,
  escaping, ``MAX_MSG_SIZE``): no I/O, no threads;
* :class:`ProtocolFlags` and the protocol version constants;
* :class:`DeviceMetaclass`, which collects ``request_*``, ``inform_*`` and
  ``reply_*`` handlers of servers and clients;
* the exceptions (:class:`FailReply`, :class:`KatcpSyntaxError`, ...);
* :class:`Sensor` and :class:`Reading`;
* katcp 0.9.3's event and future helpers (:class:`AsyncEvent`,
  :func:`until_any`, ...) for threads, with
  :class:`concurrent.futures.Future`;
* the kattypes ``Int``, ``Float``, ... that katcp 0.9.3 also exports here.
"""

from collections import defaultdict
from typing import Any, Callable, Optional

from protocompat import netutil

from ._codec import (MAX_MSG_SIZE, Message, MessageParser, escape_argument, format_argument,
                     unescape_argument)
from ._errors import (AsyncReply, FailReply, KatcpClientDisconnected, KatcpClientError,
                      KatcpDeviceError, KatcpLineTooLong, KatcpSyntaxError, KatcpTypeError,
                      KatcpVersionError)
from ._futures import (AsyncEvent, AsyncState, LatencyTimer, future_timeout_manager,
                       hashable_identity, until_any, until_later, until_some)
from ._handlers import DeviceMetaclass, DeviceServerMetaclass, convert_method_name
from ._line_decoder import BadLine, LineDecoder
from ._protocol import (DEFAULT_KATCP_MAJOR, FLOAT_TS_KATCP_MAJOR, INTERFACE_CHANGED_KATCP_MAJOR,
                        MID_KATCP_MAJOR, MS_TO_SEC_FAC, SEC_TO_MS_FAC, SEC_TS_KATCP_MAJOR,
                        VERSION_CONNECT_KATCP_MAJOR, ProtocolFlags)
from .kattypes import Address, Bool, Discrete, Float, Int, Lru, Str, Timestamp
from ._reading import Reading
from .sensor import Sensor

__all__ = [
    "DEFAULT_KATCP_MAJOR", "SEC_TS_KATCP_MAJOR", "FLOAT_TS_KATCP_MAJOR", "MID_KATCP_MAJOR",
    "VERSION_CONNECT_KATCP_MAJOR", "INTERFACE_CHANGED_KATCP_MAJOR", "SEC_TO_MS_FAC",
    "MS_TO_SEC_FAC", "MAX_MSG_SIZE",
    "KatcpSyntaxError", "KatcpLineTooLong", "KatcpTypeError", "KatcpClientError",
    "KatcpVersionError", "KatcpClientDisconnected", "KatcpDeviceError", "FailReply", "AsyncReply",
    "Message", "MessageParser", "LineDecoder", "BadLine", "ProtocolFlags", "DeviceMetaclass",
    "DeviceServerMetaclass", "ExcepthookThread", "AttrDict", "DefaultAttrDict", "Reading",
    "Sensor", "convert_method_name", "escape_argument", "unescape_argument", "format_argument",
    "AsyncEvent", "AsyncState", "LatencyTimer", "until_any", "until_some", "until_later",
    "future_timeout_manager", "hashable_identity",
    "Address", "Bool", "Discrete", "Float", "Int", "Lru", "Str", "Timestamp",
]


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
