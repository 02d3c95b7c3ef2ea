"""What a callable client does with a callback: find the bound functions and call them.

Pure functions over a client's binding tables (``{mtype-pattern: [function,
annotation-map]}`` for messages, ``{msg-tag: function}`` for responses), so
that a subclass that builds its own tables, as astropy's test clients do, is
served the same way. No sockets, no threads: they run on the thread that
received the callback.
"""
import logging
import traceback
from typing import Any, Callable, Dict, List, Tuple

from ._mtypes import mtype_subtypes
from .constants import SAMP_STATUS_ERROR
from .utils import _NOTIFICATION_ARGS, _binding_arity

log = logging.getLogger("samp_compat.client")

#: ``{mtype-pattern: [function, annotation-map]}``.
Bindings = Dict[str, List[Any]]
#: ``reply(private_key, msg_id, response)``, as ``SAMPHubProxy.reply``.
Reply = Callable[[str, str, Dict[str, Any]], Any]


def is_for_client(private_key: Any, own_key: Any, message: Any) -> bool:
    """Whether a callback carries the client's own key and a message with an MType."""
    return (private_key == own_key and private_key is not None and isinstance(message, dict)
            and isinstance(message.get("samp.mtype"), str))


def split_message(message: Dict[str, Any]) -> Tuple[str, Any, Dict[str, Any]]:
    """Return ``(mtype, params, extra)``: extra holds the message's other entries."""
    extra = dict(message)
    mtype = extra.pop("samp.mtype")
    params = extra.pop("samp.params", {})
    return mtype, params, extra


def run_notification_bindings(bindings: Bindings, private_key: str, sender_id: str,
                              message: Dict[str, Any]) -> None:
    """Call each function bound to the message's MType or a wildcard matching it.

    A function taking five arguments gets ``(private_key, sender_id, mtype,
    params, extra)``; any other gets ``None`` as msg-id before ``mtype``. An
    exception is logged.
    """
    msg_mtype, msg_params, extra = split_message(message)
    for mtype in mtype_subtypes(msg_mtype):
        binding = bindings.get(mtype)
        if binding is None:
            continue
        func = binding[0]
        try:
            if _binding_arity(func) == _NOTIFICATION_ARGS:
                func(private_key, sender_id, msg_mtype, msg_params, extra)
            else:
                func(private_key, sender_id, None, msg_mtype, msg_params, extra)
        except Exception:
            log.exception("Notification binding for %s raised", mtype)


def run_call_bindings(bindings: Bindings, private_key: str, sender_id: str, msg_id: str,
                      message: Dict[str, Any], reply: Reply) -> None:
    """Call each function bound to the call's MType or a wildcard matching it.

    The functions get ``(private_key, sender_id, msg_id, mtype, params,
    extra)`` and reply themselves. For one that raises, a ``samp.error``
    response is sent with ``reply``, so the caller does not wait in vain.
    """
    msg_mtype, msg_params, extra = split_message(message)
    for mtype in mtype_subtypes(msg_mtype):
        binding = bindings.get(mtype)
        if binding is None:
            continue
        try:
            binding[0](private_key, sender_id, msg_id, msg_mtype, msg_params, extra)
        except Exception:
            log.exception("Call binding for %s raised", mtype)
            response = {"samp.status": SAMP_STATUS_ERROR,
                        "samp.error": {"samp.errortxt": traceback.format_exc(limit=0).strip()}}
            try:
                reply(private_key, msg_id, response)
            except Exception:
                log.debug("Could not send the error reply for %s", msg_id, exc_info=True)


def run_response_binding(bindings: Dict[str, Callable[..., Any]], private_key: str,
                         responder_id: str, msg_tag: Any, response: Dict[str, Any]) -> None:
    """Call the function bound to ``msg_tag``, if any; an exception is logged."""
    func = bindings.get(msg_tag) if isinstance(msg_tag, str) else None
    if func is None:
        return
    try:
        func(private_key, responder_id, msg_tag, response)
    except Exception:
        log.exception("Response binding for %s raised", msg_tag)
