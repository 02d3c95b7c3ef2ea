"""Standard Profile server names as in ``astropy.samp.standard_profile``.

The hub and the callable clients serve XML-RPC with
:class:`samp_compat.xmlrpc.XMLRPCServer`; this module gives it the
upstream name. Requests are parsed once, safely, by the server itself, so
there is no separate request-handler class to customise.
"""
from ._xmlrpc_server import RequestInfo, XMLRPCServer

__all__ = ["ThreadingXMLRPCServer", "SAMPSimpleXMLRPCRequestHandler"]

#: The threaded XML-RPC server used by hubs and clients.
ThreadingXMLRPCServer = XMLRPCServer

#: What a request handler sees of a request (address, headers, path).
SAMPSimpleXMLRPCRequestHandler = RequestInfo

# Further names of the original module, so that imports from it keep working.
from .constants import SAMP_ICON  # noqa: E402,F401
from .errors import SAMPWarning  # noqa: E402,F401
from .xmlrpc import safe_xmlrpc_loads  # noqa: E402,F401
