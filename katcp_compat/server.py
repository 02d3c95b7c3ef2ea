"""Device servers (katcp ``katcp.server``).

:class:`DeviceServerBase` handles sockets, threads and request dispatch;
:class:`DeviceServer` adds sensors, sampling and the standard requests.
Request handlers run on one handler thread; I/O, sampling and timers run on
one selector thread: a server runs these two threads.
"""

from ._connection import ClientConnection, ClientRequestConnection
from ._connection_tcp import ClientConnectionTCP
from ._device_logger import DeviceLogger
from ._device_server import AsyncDeviceServer, DeviceServer, construct_name_filter
from ._server_base import SHUTDOWN_REASON, DeviceServerBase
from ._server_helpers import (KATCPServer, MessageHandlerThread, ThreadsafeClientConnection,
                              return_future, with_relative_timeout)
from ._codec import MAX_MSG_SIZE, MAX_WRITE_BUFFER_SIZE
# Also importable from here, as from katcp.server.
from .core import (DEFAULT_KATCP_MAJOR, MS_TO_SEC_FAC, SEC_TO_MS_FAC,  # noqa: F401
                   SEC_TS_KATCP_MAJOR, VERSION_CONNECT_KATCP_MAJOR, AsyncReply,
                   DeviceServerMetaclass, FailReply, KatcpDeviceError, Message, MessageParser,
                   ProtocolFlags)
from .kattypes import (Int, Str, has_katcp_protocol_flags,  # noqa: F401
                       minimum_katcp_version, request, return_reply)
from .sampling import (SampleNone, SampleStrategy, format_inform_v4,  # noqa: F401
                       format_inform_v5)

#: The requests katcp's own tests expect of a minimal device server (the
#: standard ones plus those of the test device), as katcp defines it.
BASE_REQUESTS = frozenset([
    "client-list", "halt", "help", "log-level", "new-command", "raise-exception",
    "raise-fail", "restart", "sensor-list", "sensor-sampling-clear", "sensor-value",
    "version-list", "watchdog", "sensor-sampling"])

__all__ = [
    "DeviceServerBase", "DeviceServer", "AsyncDeviceServer", "DeviceLogger",
    "ClientConnection", "ClientConnectionTCP", "ClientRequestConnection",
    "construct_name_filter", "KATCPServer", "MessageHandlerThread",
    "ThreadsafeClientConnection", "return_future", "with_relative_timeout",
    "MAX_MSG_SIZE", "MAX_WRITE_BUFFER_SIZE", "SHUTDOWN_REASON", "BASE_REQUESTS",
]
