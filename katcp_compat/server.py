"""Device servers (katcp ``katcp.server``).

:class:`DeviceServerBase` handles sockets, threads and request dispatch;
:class:`DeviceServer` adds sensors, sampling and the standard requests.
Request handlers run on one handler thread; I/O runs on one selector thread.
"""

from ._connection import ClientConnection, ClientRequestConnection
from ._device_logger import DeviceLogger
from ._device_server import AsyncDeviceServer, DeviceServer, construct_name_filter
from ._server_base import SHUTDOWN_REASON, DeviceServerBase
from ._stream import MAX_MSG_SIZE, MAX_WRITE_BUFFER_SIZE
# Also importable from here, as from katcp.server.
from .core import AsyncReply, FailReply, KatcpDeviceError, Message, MessageParser, ProtocolFlags

#: katcp 0.5 name of the per-client connection object.
ClientConnectionTCP = ClientConnection

__all__ = [
    "DeviceServerBase", "DeviceServer", "AsyncDeviceServer", "DeviceLogger",
    "ClientConnection", "ClientConnectionTCP", "ClientRequestConnection",
    "construct_name_filter",
    "MAX_MSG_SIZE", "MAX_WRITE_BUFFER_SIZE", "SHUTDOWN_REASON",
]
