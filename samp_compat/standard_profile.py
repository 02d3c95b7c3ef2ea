"""The Standard Profile's server side, under the module name of ``astropy.samp.standard_profile``.

Hubs and callable clients serve XML-RPC with :class:`ThreadingXMLRPCServer`
(the package's server on :mod:`protocompat.netutil`'s loop, listener and
streams, not a ``socketserver`` subclass). A hub's Standard Profile endpoint
routes its requests through a :class:`SAMPSimpleXMLRPCRequestHandler`.
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._xmlrpc_server import DeferredResult, RequestInfo, XMLRPCServer  # noqa: F401
from .constants import SAMP_ICON
from .errors import SAMPWarning  # noqa: F401 - a name of the original module
from .xmlrpc import safe_xmlrpc_loads  # noqa: F401 - a name of the original module

__all__ = ["ThreadingXMLRPCServer", "SAMPSimpleXMLRPCRequestHandler"]

#: The threaded XML-RPC server used by hubs and clients.
ThreadingXMLRPCServer = XMLRPCServer

#: Path of the hub icon (``samp.icon.url`` of the hub's own client).
ICON_PATH = "/samp/icon"
#: Value of the ``user`` entry added to message maps (the caller's user is not known).
UNKNOWN_USER = "unknown"

# Methods whose message map gets the caller's host and user, with the
# position of that map among the parameters (negative: from the end).
_MESSAGE_ARGUMENT = {
    "samp.hub.notify": -1,
    "samp.hub.notifyAll": -1,
    "samp.hub.call": -1,
    "samp.hub.callAll": -1,
    "samp.hub.callAndWait": 2,
}

Method = Callable[..., Any]


class SAMPSimpleXMLRPCRequestHandler:
    """Serves the requests of a hub's Standard Profile endpoint.

    As astropy's handler of the same name, it answers ``GET /samp/icon`` with
    :data:`~samp_compat.constants.SAMP_ICON` and adds ``host`` (the caller's
    address) and ``user`` (``"unknown"``) to the message map of
    ``notify``, ``notifyAll``, ``call``, ``callAll`` and ``callAndWait``;
    every call is then passed on to the hub method of that name.

    Unlike astropy's, it is not a ``socketserver`` request handler class:
    :meth:`install` connects one instance to a :class:`ThreadingXMLRPCServer`.

    Parameters
    ----------
    methods : dict
        ``{"samp.hub.<name>": callable}``: the hub's methods.
    on_request : callable, optional
        Called with no argument before each call (the hub notes its activity).
    """

    def __init__(self, methods: Dict[str, Method],
                 on_request: Optional[Callable[[], None]] = None) -> None:
        self._methods = dict(methods)
        self._on_request = on_request

    def install(self, server: XMLRPCServer) -> None:
        """Serve ``server``'s XML-RPC calls and its ``GET /samp/icon`` with this handler.

        Parameters
        ----------
        server : ThreadingXMLRPCServer
        """
        server.set_dispatcher(self.dispatch)
        server.add_http_handler("GET", ICON_PATH, self.icon)

    @staticmethod
    def icon(info: RequestInfo) -> Tuple[int, List[Tuple[str, str]], bytes]:
        """Answer a request for the hub icon.

        Parameters
        ----------
        info : RequestInfo

        Returns
        -------
        status, headers, body : tuple
            ``200``, the PNG content type and :data:`SAMP_ICON`.
        """
        return 200, [("Content-Type", "image/png")], SAMP_ICON

    def dispatch(self, method: str, params: tuple, info: RequestInfo) -> Any:
        """Call the hub method ``method`` with ``params``.

        Parameters
        ----------
        method : str
            The XML-RPC method name.
        params : tuple
            Its parameters.
        info : RequestInfo
            The request (the caller's address is added to message maps).

        Returns
        -------
        object
            What the hub method returns.

        Raises
        ------
        Exception
            ``method`` is not a hub method (the fault does not repeat its name).
        """
        if self._on_request is not None:
            self._on_request()
        if method == "system.listMethods":
            return sorted(self._methods)
        func = self._methods.get(method)
        if func is None:
            raise Exception("method is not supported")
        index = _MESSAGE_ARGUMENT.get(method)
        if index is not None:
            params = _with_caller(params, index, info.client_address[0])
        return func(*params)


def _with_caller(params: tuple, index: int, host: str) -> tuple:
    """``params`` with ``host`` and ``user`` added to the message map at ``index``."""
    if index < 0:
        index += len(params)
    # The private key comes first: a message is never at position 0.
    if not 0 < index < len(params) or not isinstance(params[index], dict):
        return params
    changed = list(params)
    changed[index] = dict(params[index], host=host, user=UNKNOWN_USER)
    return tuple(changed)
