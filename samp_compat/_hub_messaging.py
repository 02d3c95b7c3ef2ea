"""Message routing of the hub: notify, call, callAndWait, reply, and hub events."""
import collections
import itertools
import logging
import threading
import warnings
from typing import Any, Dict, List, Optional, Tuple

from ._hub_registry import Client, Registry, get_mtype_subtypes, to_samp
from ._xmlrpc_server import DeferredResult
from .constants import SAMP_STATUS_ERROR, SAMP_STATUS_OK
from .errors import SAMPProxyError, SAMPProxyTimeoutError, SAMPWarning

log = logging.getLogger("samp_compat.hub")

SYNC_TAG = "samp::sync::call"
#: Most calls awaiting a reply that the hub remembers; the oldest are forgotten.
MAX_PENDING_CALLS = 100000


class PendingCall(DeferredResult):
    """A callAndWait awaiting its reply; completed by the reply, a timeout or shutdown."""

    def __init__(self) -> None:
        super().__init__()
        self._cond = threading.Condition()
        self.add_done_callback(self._wake)
        self.timer: Any = None

    def _wake(self, _self: DeferredResult) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait(self, timeout: Optional[float] = None) -> Any:
        """Block until completed; return the response or raise the fault."""
        with self._cond:
            self._cond.wait_for(lambda: self.done, timeout)
        if not self.done:
            raise SAMPProxyTimeoutError(1, "Timeout expired!")
        if self._error is not None:
            raise self._error
        return self._value


def check_message(message: Any, what: str = "message") -> Dict[str, Any]:
    """Return ``message`` SAMP-typed; fault 3 if it has no string ``samp.mtype``."""
    if not isinstance(message, dict) or not isinstance(message.get("samp.mtype"), str):
        raise SAMPProxyError(3, "samp.mtype keyword is missing")
    return to_samp(message)


class HubMessaging:
    """Mixin of :class:`samp_compat.hub.SAMPHubServer` with the messaging operations."""

    _registry: Registry
    _hub_client: Optional[Client]

    def _init_messaging(self) -> None:
        self._msg_counter = itertools.count(1)
        # msg-id -> (sender public id, recipient public id, sender's msg-tag)
        self._calls: "collections.OrderedDict[str, Tuple[str, str, str]]" = (
            collections.OrderedDict())
        self._sync: Dict[str, PendingCall] = {}

    # -- helpers --------------------------------------------------------------
    def _new_msg_id(self, sender_id: str, tag: str) -> str:
        hub_id = self._hub_client.public_id if self._hub_client else "cli#hub"
        return "msg#%d;;%s;;%s;;%s" % (next(self._msg_counter), hub_id, sender_id, tag)

    def _recipient(self, recipient_id: Any, mtype: str) -> Client:
        client = self._registry.get_by_id(recipient_id) if isinstance(recipient_id, str) else None
        if client is None or client.subscription_for(mtype) is None:
            raise SAMPProxyError(2, "Client %s not subscribed to MType %s"
                                 % (recipient_id, mtype))
        return client

    def _send(self, client: Client, method: str, args: tuple, done: Any = None) -> bool:
        return self._deliverer.send(client, method, args, done)  # type: ignore[attr-defined]

    def _hub_event(self, mtype: str, params: Dict[str, Any],
                   exclude: Optional[Client] = None, done: Any = None) -> int:
        """Notify the subscribers of ``mtype``; return how many were queued."""
        hub = self._hub_client
        if hub is None:
            return 0
        message = {"samp.mtype": mtype, "samp.params": to_samp(params)}
        queued = 0
        for client in self._registry.subscribed(mtype):
            if client is not exclude and client is not hub:
                queued += self._send(client, "receiveNotification", (hub.public_id, message),
                                     done)
        return queued

    # -- SAMP operations --------------------------------------------------------
    def _notify(self, private_key: Any, recipient_id: Any, message: Any) -> Dict[str, Any]:
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        recipient = self._recipient(recipient_id, message["samp.mtype"])
        self._send(recipient, "receiveNotification", (sender.public_id, message))
        return {}

    def _notify_all(self, private_key: Any, message: Any) -> List[str]:
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        ids = []
        for client in self._registry.subscribed(message["samp.mtype"]):
            if client is not sender:
                self._send(client, "receiveNotification", (sender.public_id, message))
                ids.append(client.public_id)
        if not ids:
            warnings.warn("No client was able to receive this message", SAMPWarning)
        return ids

    def _remember_call(self, msg_id: str, sender: Client, recipient: Client, tag: str) -> None:
        with self._registry.lock:
            self._calls[msg_id] = (sender.public_id, recipient.public_id, tag)
            while len(self._calls) > MAX_PENDING_CALLS:
                self._calls.popitem(last=False)

    def _call(self, private_key: Any, recipient_id: Any, msg_tag: Any, message: Any) -> str:
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        recipient = self._recipient(recipient_id, message["samp.mtype"])
        tag = to_samp(msg_tag)
        msg_id = self._new_msg_id(sender.public_id, tag)
        self._remember_call(msg_id, sender, recipient, tag)
        self._send(recipient, "receiveCall", (sender.public_id, msg_id, message))
        return msg_id

    def _call_all(self, private_key: Any, msg_tag: Any, message: Any) -> Dict[str, str]:
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        tag = to_samp(msg_tag)
        result = {}
        for client in self._registry.subscribed(message["samp.mtype"]):
            if client is sender:
                continue
            msg_id = self._new_msg_id(sender.public_id, tag)
            self._remember_call(msg_id, sender, client, tag)
            result[client.public_id] = msg_id
            self._send(client, "receiveCall", (sender.public_id, msg_id, message))
        return result

    def _call_and_wait(self, private_key: Any, recipient_id: Any, message: Any,
                       timeout: Any) -> PendingCall:
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        recipient = self._recipient(recipient_id, message["samp.mtype"])
        seconds = float(str(timeout))
        pending = PendingCall()
        msg_id = self._new_msg_id(sender.public_id, SYNC_TAG)
        # The slot exists before the call goes out, so a fast reply is never lost.
        with self._registry.lock:
            self._sync[msg_id] = pending
        self._remember_call(msg_id, sender, recipient, SYNC_TAG)
        if seconds > 0:
            pending.timer = self._call_later(seconds, self._expire, msg_id)  # type: ignore
        self._send(recipient, "receiveCall", (sender.public_id, msg_id, message))
        return pending

    def _expire(self, msg_id: str) -> None:
        with self._registry.lock:
            pending = self._sync.pop(msg_id, None)
            self._calls.pop(msg_id, None)
        if pending is not None:
            pending.set_exception(SAMPProxyTimeoutError(1, "Timeout expired!"))

    def _reply(self, private_key: Any, msg_id: Any, response: Any) -> Dict[str, Any]:
        responder = self._registry.by_key(private_key)
        if not isinstance(response, dict):
            raise SAMPProxyError(1, "response must be a map")
        response = to_samp(response)
        with self._registry.lock:
            entry = self._calls.get(msg_id) if isinstance(msg_id, str) else None
            if entry is None:
                log.debug("reply to an unknown or expired message ignored")
                return {}
            sender_id, recipient_id, tag = entry
            if recipient_id != responder.public_id:
                raise SAMPProxyError(6, "Only the recipient of a call can reply to it")
            del self._calls[msg_id]
            pending = self._sync.pop(msg_id, None) if tag == SYNC_TAG else None
        if pending is not None:
            if pending.timer is not None:
                pending.timer.cancel()
            pending.set_result(response)
            return {}
        sender = self._registry.get_by_id(sender_id)
        if sender is not None:
            self._send(sender, "receiveResponse", (responder.public_id, tag, response))
        return {}

    def _forget_calls_of(self, client: Client) -> None:
        """Drop calls to and from a leaving client; its sync callers get an error."""
        failed = []
        with self._registry.lock:
            for msg_id, (sender_id, recipient_id, tag) in list(self._calls.items()):
                if client.public_id in (sender_id, recipient_id):
                    del self._calls[msg_id]
                    pending = self._sync.pop(msg_id, None)
                    if pending is not None:
                        failed.append(pending)
        for pending in failed:
            if pending.timer is not None:
                pending.timer.cancel()
            pending.set_result({"samp.status": SAMP_STATUS_ERROR, "samp.error": {
                "samp.errortxt": "Client %s unregistered" % client.public_id}})

    def _fail_all_pending(self, text: str) -> None:
        with self._registry.lock:
            pending, self._sync = list(self._sync.values()), {}
            self._calls.clear()
        for call in pending:
            call.set_exception(SAMPProxyError(1, text))

    # -- the hub's own client ------------------------------------------------------
    def _hub_receive(self, method: str, args: tuple) -> None:
        if method != "receiveCall":
            return
        _sender_id, msg_id, message = args
        mtype = message.get("samp.mtype")
        params = message.get("samp.params") or {}
        if mtype == "samp.app.ping":
            result: Dict[str, Any] = {}
        elif mtype in ("x-samp.query.by-meta", "samp.query.by-meta") and isinstance(params, dict):
            key, value = params.get("key"), params.get("value")
            result = {"ids": [c.public_id for c in self._registry.clients()
                              if key in c.metadata and c.metadata[key] == value]}
        else:
            return
        hub = self._hub_client
        if hub is not None:
            self._reply(hub.private_key, msg_id,
                        {"samp.status": SAMP_STATUS_OK, "samp.result": result})

    @staticmethod
    def get_mtype_subtypes(mtype: str) -> List[str]:
        """The MType itself and every wildcard pattern that matches it.

        Parameters
        ----------
        mtype : str
            A dot-separated MType such as ``samp.app.ping``.

        Returns
        -------
        types : list
            Most specific first, e.g. ``['samp.app.ping', 'samp.app.*', 'samp.*', '*']``.
        """
        return get_mtype_subtypes(mtype)
