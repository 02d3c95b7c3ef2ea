"""The exception classes of :mod:`katcp_compat` (re-exported by :mod:`katcp_compat.core`)."""

from typing import Any, List, Optional

__all__ = [
    "KatcpSyntaxError", "KatcpLineTooLong", "KatcpTypeError", "KatcpClientError", "KatcpVersionError",
    "KatcpClientDisconnected", "KatcpDeviceError", "FailReply", "AsyncReply",
]


class KatcpSyntaxError(ValueError):
    """Raised by parsers when a line or value breaks the KATCP syntax."""


class KatcpLineTooLong(KatcpSyntaxError):
    """Raised by :class:`~katcp_compat.core.LineDecoder` when a line passes the limit.

    Not in katcp, whose connections close on such a line as well.

    Parameters
    ----------
    max_line : int
        The limit in bytes (without the end-of-line).
    length : int
        Bytes of the line received so far.
    decoded : list, optional
        What the same ``feed`` call decoded before the long line.

    Attributes
    ----------
    max_line, length : int
    decoded : list
    """

    def __init__(self, max_line: int, length: int, decoded: Optional[List[Any]] = None) -> None:
        super().__init__("Line longer than %d bytes (%d bytes received without an end-of-line)."
                         % (max_line, length))
        self.max_line = max_line
        self.length = length
        self.decoded: List[Any] = [] if decoded is None else decoded


class KatcpTypeError(TypeError):
    """Raised by parsers when given a value of the wrong Python type."""


class KatcpClientError(Exception):
    """Raised by KATCP clients when an error occurs."""


class KatcpVersionError(KatcpClientError):
    """Raised when a feature is not supported by the peer's KATCP version."""


class KatcpClientDisconnected(KatcpClientError):
    """Raised when sending a message to a server that is not connected."""


class KatcpDeviceError(Exception):
    """Raised by KATCP servers when errors occur.

    Kept for compatibility: servers log communication failures instead of
    raising this.
    """


class FailReply(Exception):
    """Raised by a request handler to send a ``fail`` reply.

    The server answers ``!<name> fail <str(exception)>`` instead of a reply
    carrying a traceback.

    Examples
    --------
    >>> class MyDevice(DeviceServer):
    ...     def request_myreq(self, req, msg):
    ...         '''A request that always fails.'''
    ...         raise FailReply("This request always fails.")
    """


class AsyncReply(Exception):
    """Raised by a request handler that will send its reply later.

    The server sends no reply for the request; the handler has kept the
    request context and replies from another thread later on.

    Examples
    --------
    >>> class MyDevice(DeviceServer):
    ...     def request_myreq(self, req, msg):
    ...         '''Reply from a worker thread.'''
    ...         start_worker(lambda: req.reply("ok"))
    ...         raise AsyncReply()
    """

