"""katcp_compat: a threaded, tornado-free drop-in for katcp-python.

Exports the union of the names exported by katcp 0.5.5 (the threaded API)
and katcp 0.9.3, so ``import katcp_compat as katcp`` works for scripts
written against either.
"""

from .client import AsyncClient, BlockingClient, CallbackClient, DeviceClient
from .core import (AsyncReply, AttrDict, DeviceMetaclass, ExcepthookThread, FailReply,
                   KatcpClientError, KatcpDeviceError, KatcpSyntaxError, KatcpTypeError,
                   Message, MessageParser, ProtocolFlags)
from .sensor import Sensor
from .sensortree import AggregateSensorTree, BooleanSensorTree, GenericSensorTree
from .server import AsyncDeviceServer, DeviceLogger, DeviceServer, DeviceServerBase
from .version import VERSION, VERSION_STR, __version__
from ._resource_stubs import KATCPClientResource, KATCPClientResourceContainer

__all__ = [
    # katcp 0.5.5
    "Message", "KatcpSyntaxError", "MessageParser", "DeviceMetaclass", "ExcepthookThread",
    "FailReply", "AsyncReply", "KatcpDeviceError", "KatcpClientError", "Sensor",
    "ProtocolFlags", "DeviceServerBase", "DeviceServer", "DeviceLogger", "DeviceClient",
    "BlockingClient", "CallbackClient", "GenericSensorTree", "BooleanSensorTree",
    "AggregateSensorTree", "VERSION", "VERSION_STR",
    # added by katcp 0.9.3
    "AsyncClient", "AttrDict", "KatcpTypeError", "KATCPClientResource",
    "KATCPClientResourceContainer", "AsyncDeviceServer", "__version__",
]

