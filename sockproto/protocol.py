"""socket_protocol's message protocols: pure_json_protocol and struct_json_protocol.

No sockets here: a protocol instance talks through a *comm instance* (see
:mod:`sockproto.tcp` and :mod:`sockproto.memory`) that carries whole frames.
Every name of socket_protocol is reachable from this module.

The limits below are read when a protocol instance is made; change them
(``sockproto.protocol.MAX_BUFFERED_BYTES = ...``) before making one.
"""

import logging
import threading
import time
from typing import Any, Callable, Iterable, List, Optional, Union

from . import codec
from ._buffer import ReceiveBuffer
from ._peer import PEER_HANDLERS, PROTOCOL_MESSAGES, Peer, PeerSettings, ServingPeer
from ._services import ServiceTable
from .constants import *  # noqa: F401,F403  (the documented names live here too)
from .constants import (
    _DEFAULT_DATA_NAMES, _DEFAULT_SERVICES, DEFAULT_CHANNEL_NAME, STATUS_OKAY,
)
from .constants import __all__ as _constant_names
from .errors import RequestSidExistsError, ResponseSidExistsError
from .storage import data_storage

__all__ = list(_constant_names) + [
    "RequestSidExistsError", "ResponseSidExistsError", "data_storage",
    "pure_json_protocol", "struct_json_protocol",
]

#: Messages kept for receive() per (Service-ID, Data-ID) and connection; the oldest go first.
MAX_BUFFERED_MESSAGES = 1024
#: Bytes of messages kept for receive() per connection (each message counts its
#: frame size plus 512 bytes); a message beyond it is dropped.
MAX_BUFFERED_BYTES_PER_CONNECTION = 32 * 1024 * 1024
#: Bytes of messages kept for receive() by one protocol instance, all connections together.
MAX_BUFFERED_BYTES = 128 * 1024 * 1024
#: Deepest nesting of JSON arrays and objects accepted in a received message's data.
MAX_JSON_DEPTH = codec.DEFAULT_MAX_JSON_DEPTH
_LOGGER_BASE = "sockproto.protocol"


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
    itself, whose ``receive()`` then gives the frame. If it has
    ``in_dispatch_thread()`` (True on the thread that runs its callbacks), a
    :meth:`send` from a callback never waits for the connect handling that
    this very thread would run. If it has ``wait_for(predicate, timeout)``
    (as :class:`sockproto.tcp.tcp_client_stp`, :class:`sockproto.tcp.tcp_server_stp`
    and :func:`sockproto.memory.comm_pair` have), a thread blocked in
    :meth:`receive` or :meth:`authentificate` runs the comm instance's loop
    itself: the answer is read, decoded and handled on that thread, with no
    hop from the comm's own thread. A comm instance that also has
    ``register_connection_callback()`` (like :class:`sockproto.tcp.tcp_server_stp`)
    serves many connections; the protocol then keeps the authentification
    state and channel name per connection. A callback's response goes to the
    connection that sent the request; :meth:`send` called outside a callback
    goes to every connection.

    The channel name exchange is started by the client after connecting. If
    both sides give different names, the client's name is taken over and the
    server logs a warning.

    With a secret, nothing a connection sends before it is authentificated
    reaches a callback or :meth:`receive`, except the authentification and
    channel-name messages, the messages added with
    :meth:`add_msg_to_auth_whitelist_`, and the peer's refusal
    (``STATUS_AUTH_REQUIRED``) of a request sent on that connection.

    Callbacks run one at a time on the comm instance's dispatch thread: its
    own thread, or a thread of yours that waits in :meth:`receive` or
    :meth:`authentificate` meanwhile. Called from a callback, :meth:`receive`
    and :meth:`authentificate` do not wait (the answer could only be handled
    by the thread that is busy in the callback): they return what is there
    at once.
    """

    DEFAULT_CHANNEL_NAME = DEFAULT_CHANNEL_NAME
    _encode_frame = staticmethod(codec.encode_pure_frame)
    _decode_frame = staticmethod(codec.decode_pure_frame)

    def __init__(self, comm_instance: Any, secret: Union[str, bytes, None] = None,
                 auto_auth: bool = False, channel_name: Optional[str] = None) -> None:
        self._comm = comm_instance
        self._secret = _secret_bytes(secret)
        self._channel_name = channel_name
        self.logger = logging.getLogger(_LOGGER_BASE).getChild(channel_name or DEFAULT_CHANNEL_NAME)
        # Notified on every change of a connection's state (connected,
        # authentification, channel name) and of the list of connections.
        self._state = threading.Condition(threading.RLock())
        self._serving = ServingPeer()
        self._table = ServiceTable(self._secret is not None, PEER_HANDLERS)
        for service_id, data_id in PROTOCOL_MESSAGES:
            self._table.allow_untrusted(service_id, data_id)
        for req_sid, resp_sid, req_name, resp_name in _DEFAULT_SERVICES:
            self._table.add_service(req_sid, resp_sid, req_name, resp_name)
        for service_ids, data_id, name in _DEFAULT_DATA_NAMES:
            self._table.add_data(service_ids, data_id, name)
        self._buffer = ReceiveBuffer(MAX_BUFFERED_MESSAGES, MAX_BUFFERED_BYTES_PER_CONNECTION,
                                     MAX_BUFFERED_BYTES)
        self._settings = PeerSettings(self._secret, bool(auto_auth), channel_name, self.logger,
                                      type(self)._encode_frame, type(self)._decode_frame,
                                      MAX_JSON_DEPTH)
        # Replaced, never changed in place (under _state): readers take it without a lock.
        self._peers: List[Peer] = []
        # Runs the comm's dispatch loop in a waiting caller's thread, if the comm can.
        self._comm_wait_for: Optional[Callable[[Callable[[], Any], float], bool]] = getattr(
            comm_instance, "wait_for", None)
        self._multi = hasattr(comm_instance, "register_connection_callback")
        if self._multi:
            comm_instance.register_connection_callback(self._on_new_connection)
        else:
            peer = self._new_peer(comm_instance)
            self._peers = [peer]
            peer.attach()

    # -- connections -------------------------------------------------------------
    def _new_peer(self, comm: Any) -> Peer:
        return Peer(comm, self._settings, self._table, self._buffer, self._state, self._serving,
                    self._peer_gone)

    def _on_new_connection(self, connection: Any) -> None:
        peer = self._new_peer(connection)
        with self._state:
            self._peers = self._peers + [peer]
            self._state.notify_all()
        peer.attach()

    def _peer_gone(self, peer: Peer) -> None:
        """A connection went down: a server's connection is gone for good, with its messages."""
        if not self._multi:
            return  # a single comm instance reconnects: its messages stay receivable
        with self._state:
            if peer in self._peers:
                self._peers = [other for other in self._peers if other is not peer]
        dropped = peer.drop_buffered()
        if dropped:
            peer.logger.info("connection closed: %d buffered message(s) dropped", dropped)

    def _targets(self) -> List[Peer]:
        """The peer handled on this thread, else every peer."""
        current = self._serving.peer
        if current is not None:
            return [current]
        return self._peers

    def _current_or_only(self) -> Optional[Peer]:
        """The peer handled on this thread, else the only peer, else None."""
        current = self._serving.peer
        if current is None:
            peers = self._peers
            if len(peers) == 1:
                current = peers[0]
        return current

    def _wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` is true; it must be quick and take no lock.

        With a comm instance that has ``wait_for``, the caller runs its
        dispatch loop meanwhile (what it waits for is handled on its own
        thread); otherwise ``predicate`` is checked on every state change.
        """
        wait_for = self._comm_wait_for
        if wait_for is not None:
            return bool(wait_for(predicate, max(0.0, timeout)))
        deadline = time.monotonic() + max(0.0, timeout)
        with self._state:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return bool(predicate())
                self._state.wait(remaining)
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
        self._table.add_data([service_id] if isinstance(service_id, int) else service_id, data_id, name)

    def add_msg_to_auth_whitelist_(self, service_id: int, data_id: int) -> None:
        """Method to add a specific message to the list, where no authentification is required.

        Parameters
        ----------
        service_id : int
            The Service-ID of the message. See the constants ``SID_*``.
        data_id : int
            The Data-ID of the message.
        """
        self._table.allow_untrusted(service_id, data_id)

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
        self._table.add_service(req_sid, resp_sid, req_name, resp_name)

    def add_status(self, status: int, name: str) -> None:
        """Method to add a name for a status.

        Parameters
        ----------
        status : int
            The status. See the constants ``STATUS_*``.
        name : str
            The name for the status (used in log messages).
        """
        self._table.add_status(status, name)

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
        entry = None if callback is None else (callback, args, kwargs)
        if self._table.set_callback(service_id, data_id, entry):
            self.logger.warning("callback for service_id %s, data_id %s replaced", service_id, data_id)

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
        if not self._multi and self._serving.peer is None:
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

        Messages without a callback are kept until taken here, the oldest
        first, within limits: :data:`MAX_BUFFERED_MESSAGES` per Service-ID,
        Data-ID and connection (the oldest makes room),
        :data:`MAX_BUFFERED_BYTES_PER_CONNECTION` per connection and
        :data:`MAX_BUFFERED_BYTES` in total (a message beyond those is dropped
        and logged; an unhandled request beyond them is answered with
        ``STATUS_OPERATION_NOT_PERMITTED``). On a comm instance that serves
        many connections (:class:`sockproto.tcp.tcp_server_stp`), the messages
        of a connection are dropped when it closes; with a single comm instance
        (a client) they stay receivable across reconnects.

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
        buffer = self._buffer
        msg = buffer.pop(key)
        if msg is None:
            wait_for = self._comm_wait_for
            if wait_for is None:
                msg = buffer.take(key, timeout)
            else:
                deadline = time.monotonic() + max(0.0, timeout)
                arrived = buffer.predicate_for(key)
                while msg is None and wait_for(arrived, max(0.0, deadline - time.monotonic())):
                    msg = buffer.pop(key)  # None if another thread took it first
        if msg is None:
            self.logger.debug("no message for service_id %s, data_id %s within %ss",
                              service_id, data_id, timeout)
        return msg

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
        self._wait_for(lambda: not any(s.authentification_pending() for s in started),
                       deadline - time.monotonic())
        for peer in started:
            if peer.authentification_pending():
                self.logger.warning("authentification timed out after %ss", timeout)
                peer.abandon_authentification()
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
        current = self._serving.peer
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
