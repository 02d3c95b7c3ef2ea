"""Message routing of the hub: notify, call, callAndWait, reply, and hub events.

Values travel as the sender gave them (as astropy's hub passes them on):
only the ``samp.mtype`` of a message is checked.
"""
import collections
import itertools
import logging
import threading
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._hub_delivery import Deliverer, Done, Recipient
from ._hub_registry import HUB_PUBLIC_ID, Client, Registry
from ._xmlrpc_server import DeferredResult
from .constants import SAMP_STATUS_ERROR, SAMP_STATUS_OK
from .errors import SAMPProxyError, SAMPProxyTimeoutError, SAMPWarning

log = logging.getLogger("samp_compat.hub")

#: The message tag of ``callAndWait`` calls (in their msg-ids), as astropy's hub.
SYNC_TAG = "samp::sync::call"
#: Most calls awaiting a reply that the hub remembers; the oldest are forgotten.
MAX_PENDING_CALLS = 100000
_QUERY_BY_META = ("x-samp.query.by-meta", "samp.query.by-meta")


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


def check_message(message: Any) -> Dict[str, Any]:
    """Return ``message``; fault 3 if it is not a map with a string ``samp.mtype``."""
    if not isinstance(message, dict) or not isinstance(message.get("samp.mtype"), str):
        raise SAMPProxyError(3, "samp.mtype keyword is missing")
    return message


def error_response(text: str) -> Dict[str, Any]:
    """A ``samp.error`` response map with ``text`` as its ``samp.errortxt``."""
    return {"samp.status": SAMP_STATUS_ERROR, "samp.error": {"samp.errortxt": text}}


class MessageRouter:
    """Routes the messages of a hub's clients and answers the hub's own client.

    Parameters
    ----------
    registry : Registry
        The registered clients.
    deliverer : Deliverer
        Delivers callbacks to the clients.
    call_later : callable
        ``call_later(delay, callback, *args)`` runs ``callback`` later and
        returns a handle with ``cancel()`` (callAndWait timeouts).
    hub_client : callable
        Returns the hub's own registered client, or None while it has none.
    """

    def __init__(self, registry: Registry, deliverer: Deliverer,
                 call_later: Callable[..., Any], hub_client: Callable[[], Optional[Client]]
                 ) -> None:
        self._registry = registry
        self._deliverer = deliverer
        self._call_later = call_later
        self._hub_client = hub_client
        self._msg_counter = itertools.count(1)
        # msg-id -> (sender public id, recipient public id, sender's msg-tag)
        self._calls: "collections.OrderedDict[str, Tuple[str, str, Any]]" = (
            collections.OrderedDict())
        self._sync: Dict[str, PendingCall] = {}

    # -- helpers --------------------------------------------------------------
    def _new_msg_id(self, sender_id: str, tag: Any) -> str:
        hub = self._hub_client()
        hub_id = hub.public_id if hub is not None else HUB_PUBLIC_ID
        return "msg#%d;;%s;;%s;;%s" % (next(self._msg_counter), hub_id, sender_id, tag)

    def _recipient(self, recipient_id: Any, mtype: str) -> Client:
        client = self._registry.get_by_id(recipient_id) if isinstance(recipient_id, str) else None
        if client is None or client.subscription_for(mtype) is None:
            raise SAMPProxyError(2, "Client %s not subscribed to MType %s"
                                 % (recipient_id, mtype))
        return client

    def send(self, client: Client, method: str, args: tuple, done: Done = None) -> bool:
        """Deliver ``samp.client.<method>`` to ``client``; False if it is gone."""
        return self._deliverer.send(client.recipient, method, args, done)

    def hub_event(self, mtype: str, params: Dict[str, Any], exclude: Optional[Client] = None,
                  done: Done = None) -> int:
        """Notify the subscribers of ``mtype``; return how many deliveries were accepted."""
        hub = self._hub_client()
        if hub is None:
            return 0
        message = {"samp.mtype": mtype, "samp.params": params}
        accepted = 0
        for client in self._registry.subscribed(mtype):
            if client is not exclude and client is not hub:
                accepted += self.send(client, "receiveNotification", (hub.public_id, message),
                                      done)
        return accepted

    # -- SAMP operations --------------------------------------------------------
    def notify(self, private_key: Any, recipient_id: Any, message: Any) -> Dict[str, Any]:
        """``samp.hub.notify``."""
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        recipient = self._recipient(recipient_id, message["samp.mtype"])
        self.send(recipient, "receiveNotification", (sender.public_id, message))
        return {}

    def notify_all(self, private_key: Any, message: Any) -> List[str]:
        """``samp.hub.notifyAll``."""
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        ids = []
        for client in self._registry.subscribed(message["samp.mtype"]):
            if client is not sender:
                self.send(client, "receiveNotification", (sender.public_id, message))
                ids.append(client.public_id)
        if not ids:
            warnings.warn("No client was able to receive this message", SAMPWarning)
        return ids

    def _remember_call(self, msg_id: str, sender: Client, recipient: Client, tag: Any) -> None:
        with self._registry.lock:
            self._calls[msg_id] = (sender.public_id, recipient.public_id, tag)
            while len(self._calls) > MAX_PENDING_CALLS:
                self._calls.popitem(last=False)

    def call(self, private_key: Any, recipient_id: Any, msg_tag: Any, message: Any) -> str:
        """``samp.hub.call``."""
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        recipient = self._recipient(recipient_id, message["samp.mtype"])
        msg_id = self._new_msg_id(sender.public_id, msg_tag)
        self._remember_call(msg_id, sender, recipient, msg_tag)
        self.send(recipient, "receiveCall", (sender.public_id, msg_id, message))
        return msg_id

    def call_all(self, private_key: Any, msg_tag: Any, message: Any) -> Dict[str, str]:
        """``samp.hub.callAll``."""
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        result = {}
        for client in self._registry.subscribed(message["samp.mtype"]):
            if client is sender:
                continue
            msg_id = self._new_msg_id(sender.public_id, msg_tag)
            self._remember_call(msg_id, sender, client, msg_tag)
            result[client.public_id] = msg_id
            self.send(client, "receiveCall", (sender.public_id, msg_id, message))
        return result

    def call_and_wait(self, private_key: Any, recipient_id: Any, message: Any,
                      timeout: Any) -> PendingCall:
        """``samp.hub.callAndWait``: the returned call completes with the reply."""
        sender = self._registry.by_key(private_key)
        message = check_message(message)
        recipient = self._recipient(recipient_id, message["samp.mtype"])
        try:
            seconds = float(str(timeout))
        except ValueError:
            raise SAMPProxyError(1, "timeout must be a number of seconds") from None
        pending = PendingCall()
        msg_id = self._new_msg_id(sender.public_id, SYNC_TAG)
        # The slot exists before the call goes out, so a fast reply is never lost.
        with self._registry.lock:
            self._sync[msg_id] = pending
        self._remember_call(msg_id, sender, recipient, SYNC_TAG)
        if seconds > 0:
            pending.timer = self._call_later(seconds, self._expire, msg_id)
        self.send(recipient, "receiveCall", (sender.public_id, msg_id, message))
        return pending

    def _expire(self, msg_id: str) -> None:
        with self._registry.lock:
            pending = self._sync.pop(msg_id, None)
            self._calls.pop(msg_id, None)
        if pending is not None:
            pending.set_exception(SAMPProxyTimeoutError(1, "Timeout expired!"))

    def reply(self, private_key: Any, msg_id: Any, response: Any) -> Dict[str, Any]:
        """``samp.hub.reply``."""
        responder = self._registry.by_key(private_key)
        if not isinstance(response, dict):
            raise SAMPProxyError(1, "response must be a map")
        self._answer(responder.public_id, msg_id, response, check_recipient=True)
        return {}

    def _answer(self, responder_id: str, msg_id: Any, response: Dict[str, Any],
                check_recipient: bool) -> None:
        """Pass ``response`` to the caller of ``msg_id`` (ignored if unknown or expired)."""
        with self._registry.lock:
            entry = self._calls.get(msg_id) if isinstance(msg_id, str) else None
            if entry is None:
                log.debug("reply to an unknown or expired message ignored")
                return
            sender_id, recipient_id, tag = entry
            if check_recipient and recipient_id != responder_id:
                raise SAMPProxyError(6, "Only the recipient of a call can reply to it")
            del self._calls[msg_id]
            pending = self._sync.pop(msg_id, None) if tag == SYNC_TAG else None
        if pending is not None:
            if pending.timer is not None:
                pending.timer.cancel()
            pending.set_result(response)
            return
        sender = self._registry.get_by_id(sender_id)
        if sender is not None:
            self.send(sender, "receiveResponse", (responder_id, tag, response))

    def delivery_failed(self, recipient: Recipient, method: str, args: tuple,
                        reason: str) -> None:
        """Answer a call that could not be delivered with a ``samp.error`` response."""
        if method != "receiveCall" or len(args) != 3:
            return
        _sender_id, msg_id, message = args
        mtype = message.get("samp.mtype") if isinstance(message, dict) else None
        self._answer(recipient.public_id, msg_id, error_response(
            "%s could not be delivered to %s: %s" % (mtype, recipient.public_id, reason)),
            check_recipient=False)

    def forget_calls_of(self, client: Client) -> None:
        """Drop calls to and from a leaving client; its sync callers get an error."""
        failed = []
        with self._registry.lock:
            for msg_id, (sender_id, recipient_id, _tag) in list(self._calls.items()):
                if client.public_id in (sender_id, recipient_id):
                    del self._calls[msg_id]
                    pending = self._sync.pop(msg_id, None)
                    if pending is not None:
                        failed.append(pending)
        for pending in failed:
            if pending.timer is not None:
                pending.timer.cancel()
            pending.set_result(error_response("Client %s unregistered" % client.public_id))

    def fail_all_pending(self, text: str) -> None:
        """Fail every callAndWait in progress with fault 1 ``text`` (the hub stops)."""
        with self._registry.lock:
            pending, self._sync = list(self._sync.values()), {}
            self._calls.clear()
        for call in pending:
            call.set_exception(SAMPProxyError(1, text))

    # -- the hub's own client ------------------------------------------------------
    def hub_receive(self, method: str, args: tuple) -> None:
        """Answer the calls made to the hub's own client (ping and query by metadata)."""
        if method != "receiveCall":
            return
        _sender_id, msg_id, message = args
        mtype = message.get("samp.mtype")
        params = message.get("samp.params") or {}
        if mtype == "samp.app.ping":
            result: Dict[str, Any] = {}
        elif mtype in _QUERY_BY_META and isinstance(params, dict):
            key, value = params.get("key"), params.get("value")
            result = {"ids": [c.public_id for c in self._registry.clients()
                              if key in c.metadata and c.metadata[key] == value]}
        else:
            return
        hub = self._hub_client()
        if hub is not None:
            self._answer(hub.public_id, msg_id,
                         {"samp.status": SAMP_STATUS_OK, "samp.result": result},
                         check_recipient=True)
