"""Per-connection state of a protocol instance: dispatch, authentication, channel name.

A :class:`_Peer` binds one comm instance (one connection) to the shared
configuration of its protocol instance (services, callbacks, names, secret,
receive buffer). It runs on the comm's dispatch thread.
"""

import hashlib
import hmac
import logging
import secrets
from typing import TYPE_CHECKING, Any, Callable, Dict, NamedTuple, Optional, Tuple

from .codec import ChecksumError, FrameError
from .constants import (
    AUTH_STATE__NAMES, AUTH_STATE_KEY_TRANSFERRED, AUTH_STATE_SEED_REQUESTED,
    AUTH_STATE_SEED_TRANSFERRED, AUTH_STATE_TRUSTED_CONNECTION, AUTH_STATE_UNTRUSTED_CONNECTION,
    DEFAULT_CHANNEL_NAME, DID_AUTH_KEY, DID_AUTH_SEED, DID_CHANNEL_NAME, SID_AUTH_REQUEST,
    SID_AUTH_RESPONSE, SID_CHANNEL_NAME_REQUEST, SID_CHANNEL_NAME_RESPONSE,
    STATUS_AUTH_REQUIRED, STATUS_BUFFERING_UNHANDLED_REQUEST, STATUS_CALLBACK_ERROR,
    STATUS_CHECKSUM_ERROR, STATUS_OKAY, STATUS_OPERATION_NOT_PERMITTED,
    STATUS_SERVICE_OR_DATA_UNKNOWN,
)
from .storage import data_storage

if TYPE_CHECKING:  # pragma: no cover
    from .protocol import pure_json_protocol

__all__: list = []

# Random bytes in an authentication seed (sent as twice as many hex digits).
SEED_BYTES = 32
# Longest channel name taken over from a peer.
MAX_CHANNEL_NAME = 256

# Kinds of received message (see _Route).
_REQUEST = 0           # of a registered service: answered with its response Service-ID
_RESPONSE = 1          # anything else, e.g. a response or a message of an odd Service-ID
_UNKNOWN_REQUEST = 2   # an even Service-ID of no registered service

_Callback = Tuple[Callable[..., Any], tuple, dict]

# What a comm instance may hand to the data callback as a frame.
_FRAME_TYPES = (bytes, bytearray, memoryview)

# States in which a new handshake of our own is not started.
_OWN_HANDSHAKE_STATES = (AUTH_STATE_SEED_REQUESTED, AUTH_STATE_KEY_TRANSFERRED,
                         AUTH_STATE_TRUSTED_CONNECTION)


class _Route(NamedTuple):
    """How messages with one (service_id, data_id) are handled.

    Worked out once per pair from the protocol's configuration (services,
    callbacks, whitelist, secret) and kept until that configuration changes.
    """

    kind: int
    #: A handler of the protocol itself (authentification, channel name), as an unbound _Peer method.
    internal: Optional[Callable[["_Peer", data_storage], Any]]
    #: The user's (callback, args, kwargs), or None to buffer the message for receive().
    callback: Optional[_Callback]
    #: True if the message needs no authentificated connection.
    open: bool
    #: The Service-ID that answers a request.
    response_sid: int


def auth_key(seed: str, secret: bytes) -> str:
    """The key that answers ``seed``: SHA-512 hex digest of seed + secret."""
    return hashlib.sha512(seed.encode("utf-8", "surrogatepass") + secret).hexdigest()


class _Peer:
    """One connection of a protocol instance."""

    def __init__(self, proto: "pure_json_protocol", comm: Any) -> None:
        self.proto = proto
        self.comm = comm
        self.auth_state = AUTH_STATE_UNTRUSTED_CONNECTION
        self.seed: Optional[str] = None
        self.connected = False
        self._connect_seen = False
        self.channel_name: Optional[str] = proto._channel_name
        self.logger = proto._channel_logger(self.channel_name)
        if hasattr(comm, "init_channel_name"):
            comm.init_channel_name(self.channel_name)

    def attach(self) -> None:
        """Register this peer's callbacks with the comm instance."""
        self.comm.register_connect_callback(self._on_connect)
        self.comm.register_disconnect_callback(self._on_disconnect)
        self.comm.register_callback(self._on_frame)

    # -- state ------------------------------------------------------------------
    def is_connected(self) -> bool:
        return bool(self.comm.is_connected())

    def trusted(self) -> bool:
        return self.auth_state == AUTH_STATE_TRUSTED_CONNECTION

    def get_channel_name(self) -> str:
        return self.channel_name or DEFAULT_CHANNEL_NAME

    def _set_auth_state(self, state: int) -> None:
        with self.proto._cond:
            changed = state != self.auth_state
            self.auth_state = state
            self.proto._cond.notify_all()
        if changed:
            self.logger.debug("authentification state: %s", AUTH_STATE__NAMES[state])

    def _set_channel_name(self, name: Optional[str]) -> None:
        with self.proto._cond:
            self.channel_name = name
            self.proto._cond.notify_all()
        self.logger = self.proto._channel_logger(name)
        if hasattr(self.comm, "init_channel_name"):
            self.comm.init_channel_name(name)

    # -- output -------------------------------------------------------------------
    def send(self, service_id: int, data_id: int, data: Any, status: int = STATUS_OKAY,
             timeout: float = 2, log_lvl: int = logging.INFO) -> bool:
        frame = self.proto._encode_frame(status, service_id, data_id, data)
        if self.logger.isEnabledFor(log_lvl):
            self.proto._log_message(self.logger, log_lvl, "TX ->", status, service_id, data_id, data)
        sent = bool(self.comm.send(frame, timeout))
        if not sent:
            self.logger.warning("TX failed: service_id %s, data_id %s not sent", service_id, data_id)
        return sent

    def _respond(self, msg: data_storage, response_sid: int, status: Any, data: Any) -> None:
        data_id = msg["data_id"]
        try:
            self.send(response_sid, data_id, data, status, 0)
        except (TypeError, ValueError) as exc:
            self.logger.error("response to service_id %s, data_id %s cannot be sent (%s): "
                              "answering with a callback error", msg["service_id"], data_id, exc)
            self.send(response_sid, data_id, None, STATUS_CALLBACK_ERROR, 0)

    # -- comm callbacks (dispatch thread) ----------------------------------------
    def _on_connect(self) -> None:
        with self.proto._cond:
            if self._connect_seen:
                return
            self._connect_seen = True
        if getattr(self.comm, "IS_CLIENT", False):
            self.send(SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, self.proto._channel_name, timeout=0)
            if self.proto._auto_auth and self.proto._secret is not None:
                self.start_authentification(timeout=0)
        with self.proto._cond:
            self.connected = True  # from now on, messages of the user go out after these
            self.proto._cond.notify_all()

    def wait_ready(self, timeout: float) -> None:
        """Wait until the connect handling (channel name, auto-auth) has sent its messages."""
        if self.connected:
            return
        in_dispatch = getattr(self.comm, "_in_dispatch_thread", None)
        if in_dispatch is not None and in_dispatch():
            return
        self.proto._wait_for(lambda: self.connected, timeout)

    def _on_disconnect(self) -> None:
        with self.proto._cond:
            self.connected = False
            self._connect_seen = False
            self.seed = None
            self.auth_state = AUTH_STATE_UNTRUSTED_CONNECTION
            self.proto._cond.notify_all()
        self._set_channel_name(self.proto._channel_name)
        self.proto._peer_disconnected(self)

    def _on_frame(self, frame: Any) -> None:
        proto = self.proto
        if not isinstance(frame, _FRAME_TYPES):
            # A comm instance that calls its data callback with itself: the
            # frame is taken with its receive().
            frame = frame.receive()
            if frame is None:
                return
        try:
            msg = proto._decode_frame(frame)
        except ChecksumError as exc:
            self.logger.warning("RX: checksum error, frame of %d bytes dropped", len(frame))
            bad = exc.message
            if bad is not None and bad["service_id"] in proto._sid_response:
                self._respond(bad, proto._response_sid(bad["service_id"]), STATUS_CHECKSUM_ERROR, None)
            return
        except FrameError as exc:
            self.logger.warning("RX: frame of %d bytes dropped: %s", len(frame), exc)
            return
        key = (msg["service_id"], msg["data_id"])
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):
            proto._log_message(logger, logging.INFO, "RX <-", msg["status"], key[0], key[1], msg["data"])
        kind, internal, callback, is_open, response_sid = proto._routes.get(key) or proto._add_route(key)
        try:
            if (not is_open and self.auth_state != AUTH_STATE_TRUSTED_CONNECTION
                    and self._refused_untrusted(msg, kind, response_sid)):
                return
            if internal is not None:
                result = internal(self, msg)
                if kind == _REQUEST:
                    self._respond(msg, response_sid, *result)
            elif kind == _REQUEST:
                if callback is None:
                    logger.warning("RX: no callback for service_id %s, data_id %s: request buffered", *key)
                    proto._buffer_put(msg)
                    self._respond(msg, response_sid, STATUS_BUFFERING_UNHANDLED_REQUEST, None)
                else:
                    self._respond(msg, response_sid, *self._run_request_callback(callback, msg))
            elif kind == _RESPONSE:
                if callback is None:
                    proto._buffer_put(msg)
                else:
                    self._run_response_callback(callback, msg)
            else:
                logger.warning("RX: request with unknown service_id %s (data_id %s)", *key)
                if msg["status"] == STATUS_OKAY:
                    self.send(key[0] + 1, key[1], None, STATUS_SERVICE_OR_DATA_UNKNOWN, 0)
        except Exception:
            logger.exception("RX: handling of %r failed", msg)

    def _refused_untrusted(self, msg: data_storage, kind: int, response_sid: int) -> bool:
        """Refuse a message that needs authentification; False if it is handled anyway.

        A refused request (of an unknown service too) is answered with
        STATUS_AUTH_REQUIRED. A message carrying STATUS_AUTH_REQUIRED (the
        peer's refusal) is handled.
        """
        service_id, data_id = msg["service_id"], msg["data_id"]
        if kind == _REQUEST or (kind == _UNKNOWN_REQUEST and msg["status"] == STATUS_OKAY):
            self.logger.warning("RX: service_id %s, data_id %s needs authentification: "
                                "answered with status %s", service_id, data_id, STATUS_AUTH_REQUIRED)
            self._respond(msg, response_sid, STATUS_AUTH_REQUIRED, None)
            return True
        if msg["status"] != STATUS_AUTH_REQUIRED:
            self.logger.warning("RX: service_id %s, data_id %s from an untrusted peer dropped",
                                service_id, data_id)
            return True
        return False

    def _call_user(self, entry: _Callback, msg: data_storage) -> Any:
        """Call a user's callback; :meth:`pure_json_protocol.send` inside it answers this peer."""
        callback, args, kwargs = entry
        local = self.proto._local
        previous = getattr(local, "peer", None)
        local.peer = self
        try:
            return callback(msg, *args, **kwargs)
        finally:
            local.peer = previous

    def _run_request_callback(self, entry: _Callback, msg: data_storage) -> Tuple[Any, Any]:
        try:
            result = self._call_user(entry, msg)
        except Exception:
            self.logger.exception("RX: callback %r for service_id %s, data_id %s raised",
                                  entry[0], msg["service_id"], msg["data_id"])
            return STATUS_CALLBACK_ERROR, None
        try:
            status, data = result
        except (TypeError, ValueError):
            self.logger.error("RX: callback %r returned %r, not (status, data)", entry[0], result)
            return STATUS_CALLBACK_ERROR, None
        return status, data

    def _run_response_callback(self, entry: _Callback, msg: data_storage) -> None:
        try:
            self._call_user(entry, msg)
        except Exception:
            self.logger.exception("RX: callback %r for service_id %s, data_id %s raised",
                                  entry[0], msg["service_id"], msg["data_id"])

    # -- authentification -----------------------------------------------------------
    def start_authentification(self, timeout: float) -> bool:
        """Send the seed request; False if it could not be sent.

        A handshake in progress (e.g. one of ``auto_auth``) is left to finish
        and a trusted connection stays trusted: a second seed request would
        make the peer drop the seed that the first key answers.
        """
        with self.proto._cond:
            if self.auth_state in _OWN_HANDSHAKE_STATES:
                return True
            self.seed = None
            self._set_auth_state(AUTH_STATE_SEED_REQUESTED)
        if not self.send(SID_AUTH_REQUEST, DID_AUTH_SEED, None, timeout=timeout):
            self._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)
            return False
        return True

    def _on_seed_request(self, msg: data_storage) -> Tuple[int, Any]:
        if self.proto._secret is None:
            self.logger.warning("authentification requested, but no secret is set")
            return STATUS_OPERATION_NOT_PERMITTED, None
        seed = secrets.token_hex(SEED_BYTES)
        with self.proto._cond:
            self.seed = seed
        self._set_auth_state(AUTH_STATE_SEED_TRANSFERRED)
        return STATUS_OKAY, seed

    def _on_seed_response(self, msg: data_storage) -> None:
        secret = self.proto._secret
        if self.auth_state != AUTH_STATE_SEED_REQUESTED or secret is None:
            self.logger.warning("unexpected authentification seed ignored")
            return
        seed = msg.get_data()
        if msg.get_status() != STATUS_OKAY or not isinstance(seed, str):
            self.logger.warning("peer refused to send a seed (status %s)", msg.get_status())
            self._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)
            return
        self._set_auth_state(AUTH_STATE_KEY_TRANSFERRED)
        if not self.send(SID_AUTH_REQUEST, DID_AUTH_KEY, auth_key(seed, secret), timeout=0):
            self._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)

    def _on_key_request(self, msg: data_storage) -> Tuple[int, Any]:
        with self.proto._cond:
            seed, self.seed = self.seed, None  # a seed answers one key only
        secret = self.proto._secret
        if seed is None or secret is None:
            self.logger.warning("authentification key without a seed refused")
            self._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)
            return STATUS_OPERATION_NOT_PERMITTED, False
        key = msg.get_data()
        expected = auth_key(seed, secret).encode("ascii")
        trusted = isinstance(key, str) and hmac.compare_digest(
            key.encode("utf-8", "surrogatepass"), expected)
        if trusted:
            self.logger.info("authentification successfull")
            self._set_auth_state(AUTH_STATE_TRUSTED_CONNECTION)
        else:
            self.logger.warning("authentification failed: wrong key")
            self._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)
        return STATUS_OKAY, trusted

    def _on_key_response(self, msg: data_storage) -> None:
        if self.auth_state != AUTH_STATE_KEY_TRANSFERRED:
            self.logger.warning("unexpected authentification feedback ignored")
            return
        if msg.get_status() == STATUS_OKAY and msg.get_data() is True:
            self.logger.info("authentification successfull")
            self._set_auth_state(AUTH_STATE_TRUSTED_CONNECTION)
        else:
            self.logger.warning("authentification failed: peer refused the key")
            self._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)

    # -- channel name ------------------------------------------------------------------
    @staticmethod
    def _valid_name(name: Any) -> bool:
        return isinstance(name, str) and 0 < len(name) <= MAX_CHANNEL_NAME

    def _on_channel_request(self, msg: data_storage) -> Tuple[int, Any]:
        name = msg.get_data()
        if self._valid_name(name):
            configured = self.proto._channel_name
            if configured is not None and configured != name:
                self.logger.warning("channel name conflict: own name %r, client's name %r "
                                    "taken over", configured, name)
            self._set_channel_name(name)
        elif name is not None:
            self.logger.warning("invalid channel name %r ignored", name)
        return STATUS_OKAY, self.channel_name

    def _on_channel_response(self, msg: data_storage) -> None:
        name = msg.get_data()
        if not self._valid_name(name):
            return
        configured = self.proto._channel_name
        if configured is None:
            self._set_channel_name(name)
        elif configured != name:
            self.logger.warning("channel name conflict: own name %r, peer's name %r",
                                configured, name)


# The protocol's own handlers, by (service_id, data_id).
_INTERNAL_HANDLERS: Dict[Tuple[int, int], Callable[[_Peer, data_storage], Any]] = {
    (SID_AUTH_REQUEST, DID_AUTH_SEED): _Peer._on_seed_request,
    (SID_AUTH_RESPONSE, DID_AUTH_SEED): _Peer._on_seed_response,
    (SID_AUTH_REQUEST, DID_AUTH_KEY): _Peer._on_key_request,
    (SID_AUTH_RESPONSE, DID_AUTH_KEY): _Peer._on_key_response,
    (SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME): _Peer._on_channel_request,
    (SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME): _Peer._on_channel_response,
}


def make_route(proto: "pure_json_protocol", service_id: int, data_id: int) -> _Route:
    """Work out how ``proto`` handles messages with ``service_id`` and ``data_id``."""
    key = (service_id, data_id)
    is_open = proto._secret is None or key in proto._whitelist
    response_sid = proto._response_sid(service_id)
    if service_id in proto._sid_response:
        kind = _REQUEST
    elif service_id % 2 == 0 and service_id not in proto._response_sids:
        kind = _UNKNOWN_REQUEST
    else:
        kind = _RESPONSE
    internal = _INTERNAL_HANDLERS.get(key)
    callback = None
    if internal is None and kind != _UNKNOWN_REQUEST:
        callback = proto._find_callback(service_id, data_id)
    return _Route(kind, internal, callback, is_open, response_sid)
