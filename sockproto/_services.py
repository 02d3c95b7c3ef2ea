"""The service table of a protocol instance: what to do with each received message.

It holds the configuration shared by every connection of one protocol
instance (services, names, callbacks, the authentification whitelist) and
answers one question fast: how is a message with this (Service-ID, Data-ID)
handled? The answer, a :class:`Route`, is worked out once per pair and kept
until the configuration changes.

Configuration changes take a lock; :meth:`ServiceTable.route` does not
(once a pair's route is known).
"""

import threading
from typing import Any, Callable, Dict, Iterable, Mapping, NamedTuple, Optional, Set, Tuple

from .constants import _DEFAULT_STATUS_NAMES
from .errors import RequestSidExistsError, ResponseSidExistsError

__all__ = ["Callback", "Route", "ServiceTable", "REQUEST", "RESPONSE", "UNKNOWN_REQUEST"]

#: A user's callback as registered: (callback, args, kwargs).
Callback = Tuple[Callable[..., Any], tuple, dict]
Key = Tuple[int, int]

# Kinds of received message.
#: A request of a registered service: answered with its response Service-ID.
REQUEST = 0
#: Anything else, e.g. a response or a message of an odd Service-ID.
RESPONSE = 1
#: An even Service-ID of no registered service.
UNKNOWN_REQUEST = 2

# Routes kept; one more starts a new table (a peer can send any pair of ids).
MAX_ROUTES = 4096


class Route(NamedTuple):
    """How messages with one (service_id, data_id) are handled."""

    #: REQUEST, RESPONSE or UNKNOWN_REQUEST.
    kind: int
    #: The protocol's own handler of the pair (authentification, channel name), or None.
    handler: Any
    #: The user's callback, or None to buffer the message for receive().
    callback: Optional[Callback]
    #: True if the message needs no authentificated connection.
    open: bool
    #: The Service-ID that answers a request.
    response_sid: int


class ServiceTable:
    """Services, names, callbacks and whitelist of one protocol instance.

    Parameters
    ----------
    requires_auth : bool
        True if the protocol instance has a secret: then only whitelisted
        messages are open to an untrusted connection.
    handlers : mapping
        The protocol's own handler per (service_id, data_id); a route of
        such a pair carries it instead of a user's callback.
    """

    def __init__(self, requires_auth: bool, handlers: Mapping[Key, Any]) -> None:
        self.requires_auth = requires_auth
        self._handlers = dict(handlers)
        self._lock = threading.Lock()
        self._response_of: Dict[int, int] = {}
        self._request_of: Dict[int, int] = {}
        self._sid_names: Dict[int, str] = {}
        self._data_names: Dict[Key, str] = {}
        self._status_names: Dict[int, str] = dict(_DEFAULT_STATUS_NAMES)
        self._whitelist: Set[Key] = set()
        self._callbacks: Dict[Tuple[Optional[int], Optional[int]], Callback] = {}
        self._routes: Dict[Key, Route] = {}

    # -- configuration ---------------------------------------------------------
    def add_service(self, req_sid: int, resp_sid: int, req_name: Optional[str] = None,
                    resp_name: Optional[str] = None) -> None:
        """Answer requests with ``req_sid`` on ``resp_sid``.

        Raises
        ------
        RequestSidExistsError, ResponseSidExistsError
            The Service-ID is a request or response Service-ID already.
        """
        with self._lock:
            if req_sid in self._response_of or req_sid in self._request_of:
                raise RequestSidExistsError("Service-ID %r is in use already" % (req_sid,))
            if resp_sid in self._response_of or resp_sid in self._request_of or resp_sid == req_sid:
                raise ResponseSidExistsError("Service-ID %r is in use already" % (resp_sid,))
            self._response_of[req_sid] = resp_sid
            self._request_of[resp_sid] = req_sid
            if req_name is not None:
                self._sid_names[req_sid] = req_name
            if resp_name is not None:
                self._sid_names[resp_sid] = resp_name
            self._routes = {}

    def add_data(self, service_ids: Iterable[int], data_id: int, name: str) -> None:
        """Name a Data-ID of the given Service-IDs (for log lines)."""
        with self._lock:
            for sid in service_ids:
                self._data_names[(sid, data_id)] = name

    def add_status(self, status: int, name: str) -> None:
        """Name a status (for log lines)."""
        with self._lock:
            self._status_names[status] = name

    def allow_untrusted(self, service_id: int, data_id: int) -> None:
        """Open messages with these ids to untrusted connections."""
        with self._lock:
            self._whitelist.add((service_id, data_id))
            self._routes = {}

    def set_callback(self, service_id: Optional[int], data_id: Optional[int],
                     callback: Optional[Callback]) -> bool:
        """Register (or with None remove) the callback of a pair; True if one was replaced."""
        key = (service_id, data_id)
        with self._lock:
            replaced = callback is not None and key in self._callbacks
            if callback is None:
                self._callbacks.pop(key, None)
            else:
                self._callbacks[key] = callback
            self._routes = {}
        return replaced

    # -- questions -----------------------------------------------------------------
    def is_request(self, service_id: int) -> bool:
        """True if ``service_id`` is the request Service-ID of a service."""
        return service_id in self._response_of

    def response_sid(self, service_id: int) -> int:
        """The Service-ID that answers a request with ``service_id``."""
        return self._response_of.get(service_id, service_id + 1)

    def names(self, status: Any, service_id: Any, data_id: Any) -> Tuple[Any, Any, Any]:
        """Status, Service-ID and Data-ID for a log line: their names where known."""
        return (self._status_names.get(status, status), self._sid_names.get(service_id, service_id),
                self._data_names.get((service_id, data_id), data_id))

    def route(self, key: Key) -> Route:
        """How a received message with ``key = (service_id, data_id)`` is handled."""
        route = self._routes.get(key)
        if route is None:
            route = self._add_route(key)
        return route

    def _add_route(self, key: Key) -> Route:
        service_id, data_id = key
        with self._lock:
            if service_id in self._response_of:
                kind = REQUEST
            elif service_id % 2 == 0 and service_id not in self._request_of:
                kind = UNKNOWN_REQUEST
            else:
                kind = RESPONSE
            handler = self._handlers.get(key)
            callback = None
            if handler is None and kind != UNKNOWN_REQUEST:
                callback = self._find_callback(service_id, data_id)
            route = Route(kind, handler, callback,
                          not self.requires_auth or key in self._whitelist,
                          self._response_of.get(service_id, service_id + 1))
            if len(self._routes) >= MAX_ROUTES:
                self._routes = {}
            self._routes[key] = route
            return route

    def _find_callback(self, service_id: int, data_id: int) -> Optional[Callback]:
        callbacks = self._callbacks
        for key in ((service_id, data_id), (service_id, None), (None, data_id), (None, None)):
            entry = callbacks.get(key)
            if entry is not None:
                return entry
        return None

    def route_count(self) -> int:
        """Number of routes kept (at most :data:`MAX_ROUTES`)."""
        return len(self._routes)
