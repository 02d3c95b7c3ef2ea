"""Per-connection state of a protocol instance: dispatch, authentication, channel name.

A :class:`Peer` serves one comm instance (one connection). What it shares
with the other connections of its protocol instance comes in as objects with
small interfaces, never as the protocol instance itself:

* :class:`PeerSettings` -- secret, ``auto_auth``, channel name, logger and
  frame codec of the protocol instance;
* :class:`~sockproto._services.ServiceTable` -- how a received message is
  handled (service, callback, whitelist);
* :class:`~sockproto._buffer.ReceiveBuffer` -- messages kept for ``receive()``;
* a :class:`threading.Condition`, notified on every change of state;
* :class:`ServingPeer` -- the peer whose message the current thread handles;
* ``on_gone(peer)`` -- called after the connection went down.

The comm callbacks run on the comm instance's dispatch thread.

Until a connection is trusted (when there is a secret), only the
authentification and channel-name messages and those added to the whitelist
reach handlers, callbacks or the receive buffer. The one exception is the
peer's ``STATUS_AUTH_REQUIRED`` refusal (data ``null``) of a request this
side sent on the same untrusted connection: it is delivered, once per request.
"""

import collections
import hashlib
import hmac
import logging
import secrets
import threading
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

from ._buffer import REFUSED_CONNECTION_FULL, STORED, STORED_OLDEST_DROPPED, ReceiveBuffer
from ._logs import ChannelLogger, log_message
from ._services import REQUEST, RESPONSE, Callback, Route, ServiceTable
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

__all__ = ["Peer", "PeerSettings", "ServingPeer", "PEER_HANDLERS", "PROTOCOL_MESSAGES", "auth_key",
           "SEED_BYTES", "MAX_CHANNEL_NAME", "MAX_UNANSWERED_REQUESTS"]

#: Random bytes in an authentication seed (sent as twice as many hex digits).
SEED_BYTES = 32
#: Longest channel name taken over from a peer, in characters.
MAX_CHANNEL_NAME = 256
#: Requests sent on an untrusted connection whose refusal is still expected
#: (the oldest is forgotten first).
MAX_UNANSWERED_REQUESTS = 256

# What a comm instance may hand to the data callback as a frame.
_FRAME_TYPES = (bytes, bytearray, memoryview)

# States in which a new handshake of our own is not started.
_OWN_HANDSHAKE_STATES = (AUTH_STATE_SEED_REQUESTED, AUTH_STATE_KEY_TRANSFERRED,
                         AUTH_STATE_TRUSTED_CONNECTION)
_PENDING_HANDSHAKE_STATES = (AUTH_STATE_SEED_REQUESTED, AUTH_STATE_KEY_TRANSFERRED)

Key = Tuple[int, int]


def _never() -> bool:
    return False


def auth_key(seed: str, secret: bytes) -> str:
    """The key that answers ``seed``: SHA-512 hex digest of seed + secret."""
    return hashlib.sha512(seed.encode("utf-8", "surrogatepass") + secret).hexdigest()


class PeerSettings(NamedTuple):
    """What every connection of one protocol instance shares, besides table and buffer."""

    #: The shared secret, or None (then every message is open).
    secret: Optional[bytes]
    #: Start the authentification after every connect (clients only).
    auto_auth: bool
    #: The channel name given to the protocol instance, or None.
    channel_name: Optional[str]
    #: The protocol instance's logger (of that channel name).
    logger: logging.Logger
    #: ``encode(status, service_id, data_id, data) -> frame``.
    encode: Callable[[int, int, int, Any], bytes]
    #: ``decode(frame, max_depth) -> data_storage``, raising FrameError.
    decode: Callable[[bytes, int], data_storage]
    #: Deepest JSON nesting accepted in received data.
    max_json_depth: int


class ServingPeer(threading.local):
    """The peer whose message the current thread is handling (in a callback), per thread."""

    peer: Optional["Peer"] = None


class Peer:
    """One connection of a protocol instance.

    Parameters
    ----------
    comm : object
        The comm instance of this connection.
    settings : PeerSettings
    table : ServiceTable
    buffer : ReceiveBuffer
    state : threading.Condition
        Notified (by this peer) on every change of connection, authentification
        or channel-name state.
    serving : ServingPeer
        Set to this peer while a user callback runs for it.
    on_gone : callable
        ``on_gone(peer)``, called on the dispatch thread after a disconnect.
    """

    def __init__(self, comm: Any, settings: PeerSettings, table: ServiceTable, buffer: ReceiveBuffer,
                 state: threading.Condition, serving: ServingPeer,
                 on_gone: Callable[["Peer"], None]) -> None:
        self.comm = comm
        self._settings = settings
        self._table = table
        self._route = table.route
        self._names = table.names
        self._buffer = buffer
        self._account = buffer.open_account()
        self._state = state
        self._serving = serving
        self._on_gone = on_gone
        self._encode = settings.encode
        self._decode = settings.decode
        self._max_json_depth = settings.max_json_depth
        self._guarded = settings.secret is not None
        self.auth_state = AUTH_STATE_UNTRUSTED_CONNECTION
        self.seed: Optional[str] = None
        self.connected = False
        self._connect_seen = False
        # (response_sid, data_id) -> refusals still expected for requests sent while untrusted.
        self._unanswered: "collections.OrderedDict[Key, int]" = collections.OrderedDict()
        self._buffer_refusing = False
        self.channel_name: Optional[str] = settings.channel_name
        self.logger: logging.Logger = settings.logger
        # Optional in a comm instance: without it, waits are never skipped.
        self._in_dispatch_thread: Callable[[], bool] = getattr(comm, "in_dispatch_thread", _never)
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

    def authentification_pending(self) -> bool:
        """True while a handshake started by this side waits for the peer."""
        return self.auth_state in _PENDING_HANDSHAKE_STATES

    def get_channel_name(self) -> str:
        return self.channel_name or DEFAULT_CHANNEL_NAME

    def drop_buffered(self) -> int:
        """Drop this connection's messages from the receive buffer; return how many."""
        return self._buffer.discard(self._account)

    def _set_auth_state(self, state: int) -> None:
        with self._state:
            changed = state != self.auth_state
            self.auth_state = state
            self._state.notify_all()
        if changed:
            self.logger.debug("authentification state: %s", AUTH_STATE__NAMES[state])

    def _set_channel_name(self, name: Optional[str]) -> None:
        with self._state:
            self.channel_name = name
            self._state.notify_all()
        # A name from the peer gets no logger of its own: it tags the lines of ours.
        own = self._settings.channel_name
        self.logger = self._settings.logger if name is None or name == own else \
            ChannelLogger(self._settings.logger, name)
        if hasattr(self.comm, "init_channel_name"):
            self.comm.init_channel_name(name)

    # -- output -------------------------------------------------------------------
    def send(self, service_id: int, data_id: int, data: Any, status: int = STATUS_OKAY,
             timeout: float = 2, log_lvl: int = logging.INFO) -> bool:
        frame = self._encode(status, service_id, data_id, data)
        logger = self.logger
        if logger.isEnabledFor(log_lvl):
            log_message(logger, log_lvl, "TX ->", self._names(status, service_id, data_id), data)
        if self._guarded and self.auth_state != AUTH_STATE_TRUSTED_CONNECTION:
            self._expect_refusal(service_id, data_id)
        if self.comm.send(frame, timeout):
            return True
        logger.warning("TX failed: service_id %s, data_id %s not sent", service_id, data_id)
        return False

    def _respond(self, msg: data_storage, response_sid: int, status: Any, data: Any) -> None:
        """Answer ``msg`` at once (as :meth:`send` with timeout 0; a response expects no refusal)."""
        data_id = msg["data_id"]
        try:
            frame = self._encode(status, response_sid, data_id, data)
        except (TypeError, ValueError) as exc:
            self.logger.error("response to service_id %s, data_id %s cannot be sent (%s): "
                              "answering with a callback error", msg["service_id"], data_id, exc)
            status, data = STATUS_CALLBACK_ERROR, None
            frame = self._encode(status, response_sid, data_id, data)
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):
            log_message(logger, logging.INFO, "TX ->", self._names(status, response_sid, data_id), data)
        if not self.comm.send(frame, 0):
            logger.warning("TX failed: service_id %s, data_id %s not sent", response_sid, data_id)

    # -- comm callbacks (dispatch thread) ----------------------------------------
    def _on_connect(self) -> None:
        with self._state:
            if self._connect_seen:
                return
            self._connect_seen = True
        if getattr(self.comm, "IS_CLIENT", False):
            self.send(SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, self._settings.channel_name, timeout=0)
            if self._settings.auto_auth and self._guarded:
                self.start_authentification(timeout=0)
        with self._state:
            self.connected = True  # from now on, messages of the user go out after these
            self._state.notify_all()

    def wait_ready(self, timeout: float) -> None:
        """Wait until the connect handling (channel name, auto-auth) has sent its messages."""
        if self.connected or self._in_dispatch_thread():
            return
        wait_for = getattr(self.comm, "wait_for", None)  # optional: runs the comm's loop meanwhile
        if wait_for is not None:
            wait_for(self._is_ready, max(0.0, timeout))
            return
        with self._state:
            self._state.wait_for(self._is_ready, max(0.0, timeout))

    def _is_ready(self) -> bool:
        return self.connected

    def _on_disconnect(self) -> None:
        with self._state:
            self.connected = False
            self._connect_seen = False
            self.seed = None
            self.auth_state = AUTH_STATE_UNTRUSTED_CONNECTION
            self._unanswered.clear()
            self._state.notify_all()
        self._set_channel_name(self._settings.channel_name)
        self._on_gone(self)

    def _on_frame(self, frame: Any) -> None:
        if type(frame) is not bytes and not isinstance(frame, _FRAME_TYPES):
            # A comm instance that calls its data callback with itself: the
            # frame is taken with its receive().
            frame = frame.receive()
            if frame is None:
                return
        try:
            msg = self._decode(frame, self._max_json_depth)
        except ChecksumError as exc:
            self.logger.warning("RX: checksum error, frame of %d bytes dropped", len(frame))
            bad = exc.message
            if bad is not None and self._table.is_request(bad["service_id"]):
                self._respond(bad, self._table.response_sid(bad["service_id"]), STATUS_CHECKSUM_ERROR, None)
            return
        except FrameError as exc:
            self.logger.warning("RX: frame of %d bytes dropped: %s", len(frame), exc)
            return
        key = (msg["service_id"], msg["data_id"])
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):
            log_message(logger, logging.INFO, "RX <-", self._names(msg["status"], *key), msg["data"])
        kind, handler, callback, is_open, response_sid = self._route(key)
        try:
            if (not is_open and self.auth_state != AUTH_STATE_TRUSTED_CONNECTION
                    and not self._admit_untrusted(msg, key, kind, response_sid)):
                return
            if handler is not None:
                result = handler(self, msg)
                if kind == REQUEST:
                    self._respond(msg, response_sid, *result)
            elif kind == REQUEST:
                if callback is not None:
                    self._respond(msg, response_sid, *self._run_request_callback(callback, msg))
                elif self._keep(msg, key, len(frame)):
                    logger.warning("RX: no callback for service_id %s, data_id %s: request buffered", *key)
                    self._respond(msg, response_sid, STATUS_BUFFERING_UNHANDLED_REQUEST, None)
                else:
                    self._respond(msg, response_sid, STATUS_OPERATION_NOT_PERMITTED, None)
            elif kind == RESPONSE:
                if callback is None:
                    self._keep(msg, key, len(frame))
                else:
                    self._run_response_callback(callback, msg)
            else:
                logger.warning("RX: request with unknown service_id %s (data_id %s)", *key)
                if msg["status"] == STATUS_OKAY:
                    self.send(response_sid, key[1], None, STATUS_SERVICE_OR_DATA_UNKNOWN, 0)
        except Exception:
            logger.exception("RX: handling of service_id %s, data_id %s failed", *key)

    def _keep(self, msg: data_storage, key: Key, frame_size: int) -> bool:
        """Put ``msg`` into the receive buffer; False (and logged) if it was refused."""
        result = self._buffer.put(self._account, key, msg, frame_size)
        if result == STORED:
            if self._buffer_refusing:
                self._buffer_refusing = False
            return True
        if result == STORED_OLDEST_DROPPED:
            self._buffer_refusing = False
            self.logger.warning("receive buffer for service_id %s, data_id %s full: "
                                "oldest message dropped", *key)
            return True
        if result == REFUSED_CONNECTION_FULL:
            reason = "this connection's share (%d bytes)" % self._buffer.max_bytes_per_connection
        else:
            reason = "the whole buffer (%d bytes)" % self._buffer.max_bytes
        # Warned once per run of refusals, so that a flood does not flood the log.
        level = logging.DEBUG if self._buffer_refusing else logging.WARNING
        self._buffer_refusing = True
        self.logger.log(level, "RX: receive buffer full, %s used up: service_id %s, data_id %s "
                        "(frame of %d bytes) dropped", reason, key[0], key[1], frame_size)
        return False

    # -- untrusted connections --------------------------------------------------------
    def _admit_untrusted(self, msg: data_storage, key: Key, kind: int, response_sid: int) -> bool:
        """Decide on a message that needs a trusted connection; True to handle it anyway.

        A request (of an unknown service too) is answered with
        STATUS_AUTH_REQUIRED. The refusal of a request of ours is handled.
        Everything else is dropped.
        """
        status = msg["status"]
        if kind == REQUEST or (kind != RESPONSE and status == STATUS_OKAY):
            self.logger.warning("RX: service_id %s, data_id %s needs authentification: "
                                "answered with status %s", key[0], key[1], STATUS_AUTH_REQUIRED)
            self._respond(msg, response_sid, STATUS_AUTH_REQUIRED, None)
            return False
        if status == STATUS_AUTH_REQUIRED and msg["data"] is None and self._take_refusal(key):
            return True
        self.logger.warning("RX: service_id %s, data_id %s (status %s) from an untrusted peer dropped",
                            key[0], key[1], status)
        return False

    def _expect_refusal(self, service_id: int, data_id: int) -> None:
        """Note a request sent while untrusted: the peer may refuse it."""
        route: Route = self._route((service_id, data_id))
        if route.kind == RESPONSE:
            return
        refusal = (route.response_sid, data_id)
        if self._route(refusal).open:
            return
        with self._state:
            unanswered = self._unanswered
            unanswered[refusal] = unanswered.get(refusal, 0) + 1
            unanswered.move_to_end(refusal)
            while len(unanswered) > MAX_UNANSWERED_REQUESTS:
                unanswered.popitem(last=False)

    def _take_refusal(self, key: Key) -> bool:
        with self._state:
            count = self._unanswered.get(key)
            if not count:
                return False
            if count == 1:
                del self._unanswered[key]
            else:
                self._unanswered[key] = count - 1
            return True

    # -- user callbacks ----------------------------------------------------------------
    # The protocol's ``send`` inside a user's callback answers the peer being served.
    def _run_request_callback(self, entry: Callback, msg: data_storage) -> Tuple[Any, Any]:
        callback, args, kwargs = entry
        serving = self._serving
        previous = serving.peer
        serving.peer = self
        try:
            result = callback(msg, *args, **kwargs)
        except Exception:
            self.logger.exception("RX: callback %r for service_id %s, data_id %s raised",
                                  callback, msg["service_id"], msg["data_id"])
            return STATUS_CALLBACK_ERROR, None
        finally:
            serving.peer = previous
        if type(result) is tuple and len(result) == 2:
            return result
        try:
            status, data = result
        except (TypeError, ValueError):
            self.logger.error("RX: callback %r returned %r, not (status, data)", callback, result)
            return STATUS_CALLBACK_ERROR, None
        return status, data

    def _run_response_callback(self, entry: Callback, msg: data_storage) -> None:
        callback, args, kwargs = entry
        serving = self._serving
        previous = serving.peer
        serving.peer = self
        try:
            callback(msg, *args, **kwargs)
        except Exception:
            self.logger.exception("RX: callback %r for service_id %s, data_id %s raised",
                                  callback, msg["service_id"], msg["data_id"])
        finally:
            serving.peer = previous

    # -- authentification -----------------------------------------------------------
    def start_authentification(self, timeout: float) -> bool:
        """Send the seed request; False if it could not be sent.

        A handshake in progress (e.g. one of ``auto_auth``) is left to finish
        and a trusted connection stays trusted: a second seed request would
        make the peer drop the seed that the first key answers.
        """
        with self._state:
            if self.auth_state in _OWN_HANDSHAKE_STATES:
                return True
            self.seed = None
            self._set_auth_state(AUTH_STATE_SEED_REQUESTED)
        if not self.send(SID_AUTH_REQUEST, DID_AUTH_SEED, None, timeout=timeout):
            self._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)
            return False
        return True

    def abandon_authentification(self) -> None:
        """Give up a handshake of ours that the peer did not finish in time."""
        with self._state:
            if self.auth_state not in _PENDING_HANDSHAKE_STATES:
                return
            self._set_auth_state(AUTH_STATE_UNTRUSTED_CONNECTION)

    def _on_seed_request(self, msg: data_storage) -> Tuple[int, Any]:
        if self._settings.secret is None:
            self.logger.warning("authentification requested, but no secret is set")
            return STATUS_OPERATION_NOT_PERMITTED, None
        seed = secrets.token_hex(SEED_BYTES)
        with self._state:
            self.seed = seed
        self._set_auth_state(AUTH_STATE_SEED_TRANSFERRED)
        return STATUS_OKAY, seed

    def _on_seed_response(self, msg: data_storage) -> None:
        secret = self._settings.secret
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
        with self._state:
            seed, self.seed = self.seed, None  # a seed answers one key only
        secret = self._settings.secret
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
            configured = self._settings.channel_name
            if configured is not None and configured != name:
                self.logger.warning("channel name conflict: own name %r, client's name %r "
                                    "taken over", configured, name)
            if name != self.channel_name:
                self._set_channel_name(name)
        elif name is not None:
            self.logger.warning("invalid channel name ignored (%s, not a text of 1 to %d characters)",
                                type(name).__name__, MAX_CHANNEL_NAME)
        return STATUS_OKAY, self.channel_name

    def _on_channel_response(self, msg: data_storage) -> None:
        name = msg.get_data()
        if not self._valid_name(name):
            if name is not None:
                self.logger.warning("invalid channel name ignored (%s, not a text of 1 to %d "
                                    "characters)", type(name).__name__, MAX_CHANNEL_NAME)
            return
        configured = self._settings.channel_name
        if configured is None:
            if name != self.channel_name:
                self._set_channel_name(name)
        elif configured != name:
            self.logger.warning("channel name conflict: own name %r, peer's name %r",
                                configured, name)


#: The protocol's own handlers, by (service_id, data_id): unbound :class:`Peer` methods.
PEER_HANDLERS: Dict[Key, Callable[[Peer, data_storage], Any]] = {
    (SID_AUTH_REQUEST, DID_AUTH_SEED): Peer._on_seed_request,
    (SID_AUTH_RESPONSE, DID_AUTH_SEED): Peer._on_seed_response,
    (SID_AUTH_REQUEST, DID_AUTH_KEY): Peer._on_key_request,
    (SID_AUTH_RESPONSE, DID_AUTH_KEY): Peer._on_key_response,
    (SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME): Peer._on_channel_request,
    (SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME): Peer._on_channel_response,
}

#: The messages of the authentification and channel-name exchange: open to untrusted connections.
PROTOCOL_MESSAGES = tuple(PEER_HANDLERS)
