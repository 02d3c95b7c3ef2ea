"""socket_protocol's message protocols: pure_json_protocol and struct_json_protocol.

No sockets here: a protocol instance talks through a *comm instance* (see
:mod:`sockproto.tcp` and :mod:`sockproto.memory`) that carries whole frames.
Every name of socket_protocol is reachable from this module.
"""

import collections
import logging
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple, Union

from . import codec
from ._peer import _Callback, _Peer, _Route, make_route
from .constants import *  # noqa: F401,F403  (the documented names live here too)
from .constants import (
    _DEFAULT_DATA_NAMES, _DEFAULT_SERVICES, _DEFAULT_STATUS_NAMES, AUTH_STATE_SEED_REQUESTED,
    AUTH_STATE_KEY_TRANSFERRED, AUTH_STATE_UNTRUSTED_CONNECTION, DEFAULT_CHANNEL_NAME,
    DID_AUTH_KEY, DID_AUTH_SEED, DID_CHANNEL_NAME, SID_AUTH_REQUEST, SID_AUTH_RESPONSE,
    SID_CHANNEL_NAME_REQUEST, SID_CHANNEL_NAME_RESPONSE, STATUS_OKAY,
)
from .constants import __all__ as _constant_names
from .storage import data_storage

__all__ = list(_constant_names) + [
    "RequestSidExistsError", "ResponseSidExistsError", "data_storage",
    "pure_json_protocol", "struct_json_protocol",
]

#: Messages kept per (service_id, data_id) for receive(); the oldest go first.
MAX_BUFFERED_MESSAGES = 1024
# Routes of received (service_id, data_id) pairs kept; more start a new table.
_MAX_ROUTES = 4096
# Longest data text in a TX/RX log line.
_LOG_DATA_CHARS = 1000
_LOGGER_BASE = "sockproto.protocol"


class RequestSidExistsError(Exception):
    """The request Service-ID given to ``add_service`` is in use already."""


class ResponseSidExistsError(Exception):
    """The response Service-ID given to ``add_service`` is in use already."""


def _secret_bytes(secret: Union[str, bytes, None]) -> Optional[bytes]:
    if secret is None:
        return None
    if isinstance(secret, str):
        return secret.encode("utf-8")
    return bytes(secret)


class pure_json_protocol:
    """This class supports to transfer a message and it's data.

    Parameters
    ----------
    comm_instance : object
        A communication instance, e.g. :class:`sockproto.tcp.tcp_client_stp`,
        :class:`sockproto.tcp.tcp_server_stp` or one end of
        :func:`sockproto.memory.comm_pair`.
    secret : str or bytes, optional
        A shared secret (e.g. created by ``binascii.hexlify(os.urandom(24))``).
        With a secret, every message except the authentification and
        channel-name messages needs an authentificated connection.
    auto_auth : bool, optional
        Authentificate automatically after every (re)connect. Only used if a
        secret is given and the comm instance is a client.
    channel_name : str, optional
        A name for the connection, used in log messages and exchanged with
        the peer.

    Notes
    -----
    The comm instance needs at least: ``init_channel_name()``, ``IS_CLIENT``,
    ``is_connected()``, ``reconnect()``, ``register_callback()``,
    ``register_connect_callback()``, ``register_disconnect_callback()`` and
    ``send()``. Its data callback gets a frame's bytes, or the comm instance
    itself, whose ``receive()`` then gives the frame. A comm instance that also has
    ``register_connection_callback()`` (like :class:`sockproto.tcp.tcp_server_stp`)
    serves many connections; the protocol then keeps the authentification
    state and channel name per connection. A callback's response goes to the
    connection that sent the request; :meth:`send` called outside a callback
    goes to every connection.

    The channel name exchange is started by the client after connecting. If
    both sides give different names, the client's name is taken over and the
    server logs a warning.

    Callbacks run on the comm instance's receive thread: they must not
    block on :meth:`receive` or :meth:`authentificate` of the same instance.
    """

    DEFAULT_CHANNEL_NAME = DEFAULT_CHANNEL_NAME
    _encode_frame = staticmethod(codec.encode_pure_frame)
    _decode_frame = staticmethod(codec.decode_pure_frame)

    def __init__(self, comm_instance: Any, secret: Union[str, bytes, None] = None,
                 auto_auth: bool = False, channel_name: Optional[str] = None) -> None:
        self._comm = comm_instance
        self._secret = _secret_bytes(secret)
        self._auto_auth = bool(auto_auth)
        self._channel_name = channel_name
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._local = threading.local()
        self._callbacks: Dict[Tuple[Optional[int], Optional[int]], _Callback] = {}
        self._sid_response: Dict[int, int] = {}
        self._response_sids: Dict[int, int] = {}
        self._sid_names: Dict[int, str] = {}
        self._data_names: Dict[Tuple[int, int], str] = {}
        self._status_names: Dict[int, str] = dict(_DEFAULT_STATUS_NAMES)
        self._whitelist = {
            (SID_AUTH_REQUEST, DID_AUTH_SEED), (SID_AUTH_RESPONSE, DID_AUTH_SEED),
            (SID_AUTH_REQUEST, DID_AUTH_KEY), (SID_AUTH_RESPONSE, DID_AUTH_KEY),
            (SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME), (SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME),
        }
        self._buffer: Dict[Tuple[int, int], Deque[data_storage]] = {}
        # Threads waiting on _cond in receive() or _wait_for().
        self._waiting = 0
        # How received messages are handled, per (service_id, data_id); replaced
        # (under _lock) whenever services, callbacks or the whitelist change.
        self._routes: Dict[Tuple[int, int], _Route] = {}
        for req_sid, resp_sid, req_name, resp_name in _DEFAULT_SERVICES:
            self.add_service(req_sid, resp_sid, req_name, resp_name)
        for service_ids, data_id, name in _DEFAULT_DATA_NAMES:
            self.add_data(list(service_ids), data_id, name)
        self.logger = self._channel_logger(channel_name)
        self._peers: List[_Peer] = []
        self._multi = hasattr(comm_instance, "register_connection_callback")
        if self._multi:
            comm_instance.register_connection_callback(self._on_new_connection)
        else:
            peer = _Peer(self, comm_instance)
            self._peers.append(peer)
            peer.attach()

    # -- internal plumbing -------------------------------------------------------
    def _channel_logger(self, name: Optional[str]) -> logging.Logger:
        return logging.getLogger(_LOGGER_BASE).getChild(name or DEFAULT_CHANNEL_NAME)

    def _on_new_connection(self, connection: Any) -> None:
        peer = _Peer(self, connection)
        with self._cond:
            self._peers.append(peer)
            self._cond.notify_all()
        peer.attach()

    def _peer_disconnected(self, peer: _Peer) -> None:
        if self._multi:
            with self._cond:
                if peer in self._peers:
                    self._peers.remove(peer)

    def _targets(self) -> List[_Peer]:
        """The peer handled on this thread, else every peer."""
        current = getattr(self._local, "peer", None)
        if current is not None:
            return [current]
        with self._lock:
            return list(self._peers)

    def _current_or_only(self) -> Optional[_Peer]:
        """The peer handled on this thread, else the only peer, else None."""
        current = getattr(self._local, "peer", None)
        if current is None:
            with self._lock:
                if len(self._peers) == 1:
                    current = self._peers[0]
        return current

    def _response_sid(self, service_id: int) -> int:
        return self._sid_response.get(service_id, service_id + 1)

    def _find_callback(self, service_id: int, data_id: int) -> Optional[_Callback]:
        callbacks = self._callbacks
        for key in ((service_id, data_id), (service_id, None), (None, data_id), (None, None)):
            entry = callbacks.get(key)
            if entry is not None:
                return entry
        return None

    def _add_route(self, key: Tuple[int, int]) -> _Route:
        """Work out and keep the route of a received (service_id, data_id)."""
        with self._lock:
            if len(self._routes) >= _MAX_ROUTES:
                self._routes = {}
            route = make_route(self, *key)
            self._routes[key] = route
            return route

    def _buffer_put(self, msg: data_storage) -> None:
        key = (msg["service_id"], msg["data_id"])
        with self._cond:
            queue = self._buffer.get(key)
            if queue is None:
                queue = self._buffer[key] = collections.deque()
            elif len(queue) >= MAX_BUFFERED_MESSAGES:
                queue.popleft()
                self.logger.warning("receive buffer for service_id %s, data_id %s full: "
                                    "oldest message dropped", *key)
            queue.append(msg)
            if self._waiting:
                self._cond.notify_all()

    def _wait(self, timeout: float) -> None:
        """``self._cond.wait(timeout)``, counted in ``_waiting`` (hold ``_cond``)."""
        self._waiting += 1
        try:
            self._cond.wait(timeout)
        finally:
            self._waiting -= 1

    def _log_message(self, logger: logging.Logger, lvl: int, prefix: str, status: Any,
                     service_id: Any, data_id: Any, data: Any) -> None:
        if not logger.isEnabledFor(lvl):
            return
        text = repr(data)
        if len(text) > _LOG_DATA_CHARS:
            text = text[:_LOG_DATA_CHARS] + "..."
        logger.log(lvl, "%s status: %s, service_id: %s, data_id: %s, data: %s", prefix,
                   self._status_names.get(status, status), self._sid_names.get(service_id, service_id),
                   self._data_names.get((service_id, data_id), data_id), text)

    def _wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` is true (checked on every state change)."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return bool(predicate())
                self._wait(remaining)
            return True

    # -- names and services --------------------------------------------------------
    def add_data(self, service_id: Union[int, Iterable[int]], data_id: int, name: str) -> None:
        """Method to add a name for a specific message.

        Parameters
        ----------
        service_id : int or list of ints
            The Service-ID(s) of the message. See the constants ``SID_*``.
        data_id : int
            The Data-ID of the message.
        name : str
            The name for the transferred message (used in log messages).
        """
        service_ids = [service_id] if isinstance(service_id, int) else list(service_id)
        with self._lock:
            for sid in service_ids:
                self._data_names[(sid, data_id)] = name

    def add_msg_to_auth_whitelist_(self, service_id: int, data_id: int) -> None:
        """Method to add a specific message to the list, where no authentification is required.

        Parameters
        ----------
        service_id : int
            The Service-ID of the message. See the constants ``SID_*``.
        data_id : int
            The Data-ID of the message.
        """
        with self._lock:
            self._whitelist.add((service_id, data_id))
            self._routes = {}

    def add_service(self, req_sid: int, resp_sid: int, req_name: Optional[str] = None,
                    resp_name: Optional[str] = None) -> None:
        """Method to add a Service defined by Request- and Response Service-ID.

        A request with ``req_sid`` is answered with ``resp_sid`` and the same
        Data-ID.

        Parameters
        ----------
        req_sid : int
            The Request Service-ID.
        resp_sid : int
            The Response Service-ID.
        req_name, resp_name : str, optional
            Names for log messages.

        Raises
        ------
        RequestSidExistsError
            ``req_sid`` is already a request or response Service-ID.
        ResponseSidExistsError
            ``resp_sid`` is already a request or response Service-ID.
        """
        with self._lock:
            if req_sid in self._sid_response or req_sid in self._response_sids:
                raise RequestSidExistsError("Service-ID %r is in use already" % (req_sid,))
            if resp_sid in self._sid_response or resp_sid in self._response_sids or resp_sid == req_sid:
                raise ResponseSidExistsError("Service-ID %r is in use already" % (resp_sid,))
            self._sid_response[req_sid] = resp_sid
            self._response_sids[resp_sid] = req_sid
            self._routes = {}
            if req_name is not None:
                self._sid_names[req_sid] = req_name
            if resp_name is not None:
                self._sid_names[resp_sid] = resp_name

    def add_status(self, status: int, name: str) -> None:
        """Method to add a name for a status.

        Parameters
        ----------
        status : int
            The status. See the constants ``STATUS_*``.
        name : str
            The name for the status (used in log messages).
        """
        with self._lock:
            self._status_names[status] = name

    # -- callbacks and messages --------------------------------------------------------
    def register_callback(self, service_id: Optional[int], data_id: Optional[int],
                          callback: Optional[Callable[..., Any]], *args: Any, **kwargs: Any) -> None:
        """This method registers a callback for the given parameters.

        Giving None means that all Service-IDs or all Data-IDs are used. The
        callback is chosen in this order: defined Service-ID and Data-ID;
        defined Service-ID and all Data-IDs; defined Data-ID and all
        Service-IDs; unspecific. A new callback for the same pair replaces the
        old one.

        Parameters
        ----------
        service_id : int or None
            The Service-ID for the message. See the constants ``SID_*``.
        data_id : int or None
            The Data-ID for the message.
        callback : callable or None
            Called as ``callback(msg, *args, **kwargs)`` with the received
            :class:`data_storage`. For a request of a registered service it
            returns ``(response_status, response_data)``, sent back with the
            response Service-ID and the same Data-ID. None removes the
            callback registered for this pair.
        *args, **kwargs
            Further arguments for the callback.
        """
        with self._lock:
            if callback is None:
                self._callbacks.pop((service_id, data_id), None)
            else:
                if (service_id, data_id) in self._callbacks:
                    self.logger.warning("callback for service_id %s, data_id %s replaced",
                                        service_id, data_id)
                self._callbacks[(service_id, data_id)] = (callback, args, kwargs)
            self._routes = {}

    def send(self, service_id: int, data_id: int, data: Any, status: int = STATUS_OKAY,
             timeout: float = 2, log_lvl: int = logging.INFO) -> bool:
        """This methods sends out a message with the given content.

        Parameters
        ----------
        service_id : int
            The Service-ID for the message. See the constants ``SID_*``.
        data_id : int
            The Data-ID for the message.
        data : any
            The data to be transferred; it needs to be JSON compatible.
        status : int, optional
            The status of the message. All requests should have STATUS_OKAY.
        timeout : float, optional
            The timeout for sending data (e.g. time to establish a connection).
        log_lvl : int, optional
            Log level of the "TX" log line.

        Returns
        -------
        sent : bool
            True if data had been sent, otherwise False.

        Raises
        ------
        TypeError
            ``data`` is not JSON compatible, or an id or the status is not an int.
        ValueError
            ``data`` cannot be written as JSON (e.g. a circular reference).
        """
        if not self._multi and getattr(self._local, "peer", None) is None:
            peer = self._peers[0]
            if peer.connected:  # the common case, without waiting
                return peer.send(service_id, data_id, data, status, timeout, log_lvl)
        targets = self._targets()
        if not targets and self._multi:
            self._wait_for(lambda: bool(self._peers), timeout)
            targets = self._targets()
        if not targets:
            self._encode_frame(status, service_id, data_id, data)  # same errors as with a peer
            self.logger.warning("TX failed: no connection for service_id %s, data_id %s",
                                service_id, data_id)
            return False
        deadline = time.monotonic() + max(0.0, timeout)
        sent = False
        for peer in targets:
            peer.wait_ready(deadline - time.monotonic())
            remaining = max(0.0, deadline - time.monotonic())
            sent = peer.send(service_id, data_id, data, status, remaining, log_lvl) or sent
        return sent

    def receive(self, service_id: int, data_id: int, timeout: float = 1) -> Optional[data_storage]:
        """This Method returns a message object for a defined message or None.

        Messages without a callback are kept (per Service-ID and Data-ID, the
        oldest first, at most :data:`MAX_BUFFERED_MESSAGES`) until taken here.

        Parameters
        ----------
        service_id : int
            The Service-ID for the message. See the constants ``SID_*``.
        data_id : int
            The Data-ID for the message.
        timeout : float, optional
            The timeout for receiving, in seconds.

        Returns
        -------
        msg : data_storage or None
            The received message, or None if none arrived within ``timeout``.
        """
        key = (service_id, data_id)
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                queue = self._buffer.get(key)
                if queue:
                    msg = queue.popleft()
                    if not queue:
                        del self._buffer[key]
                    return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.logger.debug("no message for service_id %s, data_id %s within %ss",
                                      service_id, data_id, timeout)
                    return None
                self._wait(remaining)

    # -- authentification ----------------------------------------------------------------
    def authentificate(self, timeout: float = 2) -> bool:
        """This method authentificates the client at the server.

        It requests a seed, sends the key made from seed and secret, and
        waits for the peer's feedback. Client and server need the same secret.
        A handshake already in progress (e.g. started by ``auto_auth``) is
        waited for instead of started again; a trusted connection stays so.

        Parameters
        ----------
        timeout : float, optional
            The timeout for the whole authentification, in seconds.

        Returns
        -------
        trusted : bool
            True if the authentification was successful; False if not, if
            it timed out, or if no secret was given.
        """
        if self._secret is None:
            self.logger.warning("authentification needs a secret")
            return False
        deadline = time.monotonic() + max(0.0, timeout)
        targets = self._targets()
        if not targets:
            return False
        for peer in targets:
            peer.wait_ready(deadline - time.monotonic())
        started = [s for s in targets if s.start_authentification(max(0.0, deadline - time.monotonic()))]
        pending = (AUTH_STATE_SEED_REQUESTED, AUTH_STATE_KEY_TRANSFERRED)
        self._wait_for(lambda: all(s.auth_state not in pending for s in started),
                       deadline - time.monotonic())
        for peer in started:
            if peer.auth_state in pending:
                self.logger.warning("authentification timed out after %ss", timeout)
                peer._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)
        return len(started) == len(targets) and all(s.trusted() for s in targets)

    def check_authentification_state(self) -> bool:
        """This Method returns the authentification state as boolean value.

        Returns
        -------
        trusted : bool
            True if the connection is authentificated, otherwise False.
        """
        targets = self._targets()
        return bool(targets) and all(s.trusted() for s in targets)

    def connection_established(self) -> bool:
        """This Method returns the connection state including authentification.

        Returns
        -------
        established : bool
            True if connected and (if a secret has been given) authentificated.
        """
        targets = [s for s in self._targets() if s.is_connected()]
        if not targets:
            return False
        return self._secret is None or all(s.trusted() for s in targets)

    def is_connected(self) -> bool:
        """This Method returns the connection state of the comm instance.

        Returns
        -------
        connected : bool
            True if the comm instance is connected, otherwise False.
        """
        current = self._current_or_only()
        comm = current.comm if current is not None else self._comm
        return bool(comm.is_connected())

    def reconnect(self) -> None:
        """This methods initiates a reconnect by calling ``comm_instance.reconnect()``."""
        current = getattr(self._local, "peer", None)
        (current.comm if current is not None else self._comm).reconnect()

    def get_channel_name(self) -> str:
        """Return the channel name in use (own, or taken over from the peer).

        Returns
        -------
        channel_name : str
            ``"all_others"`` when neither side gave a name.
        """
        current = self._current_or_only()
        if current is not None:
            return current.get_channel_name()
        return self._channel_name or DEFAULT_CHANNEL_NAME

    # Correctly spelled aliases.
    authenticate = authentificate
    check_authentication_state = check_authentification_state


class struct_json_protocol(pure_json_protocol):
    """This Class has the same functionality like :class:`pure_json_protocol`.

    The frame is shorter (a binary header instead of JSON keys, a one-byte
    checksum), but status, Service-ID and Data-ID must fit in 32 unsigned bits.

    Notes
    -----
    This class is deprecated and here for compatibility reasons (to support
    old clients or servers). Usage of :class:`pure_json_protocol` is recommended.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`pure_json_protocol`.
    """

    _encode_frame = staticmethod(codec.encode_struct_frame)
    _decode_frame = staticmethod(codec.decode_struct_frame)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
