"""clever-show's ``lib.messaging``: the same API and the same bytes on the wire.

Frames are ``protoheader | JSON header | content``: a 2-byte big-endian
length of the JSON header, the header itself (``json.dumps(...,
ensure_ascii=False)`` in UTF-8) and the content (JSON or raw bytes).

The application owns the selector loop: it registers each connection's
socket with ``data`` = the :class:`ConnectionManager`, calls
``connection.connect(selector, sock, addr)`` and, for every ready key,
``key.data.process_events(mask)``; :class:`NotifierSock` wakes that loop when
another thread sends. Handlers are registered with :func:`message_callback`
and :func:`request_callback`.

Legacy code imports this module as ``from lib import messaging`` or, with
``lib/`` on ``sys.path``, ``import messaging``: clever-show's
``lib/messaging.py`` replaced by protocompat's drop-in file makes both names
this very module. ``python -m protocompat.messaging demo|serve|client`` runs
the example.

The parts, one per private module: ``_codec`` (:class:`MessageManager`, bytes
to messages and back, no I/O), ``_json`` (JSON as clever-show writes it, read
with a depth limit), ``_headers`` (received headers decoded once per shape), ``_apploop`` (the application's selector as the loop of a
:class:`~protocompat.netutil.Stream`), ``_transport`` (each socket's Stream,
and what a connection keeps across sockets), ``_files`` (file streaming and
:class:`FileAccess`), ``_requests`` (pending requests and their timeouts),
``_notifier`` (:class:`NotifierSock`) and ``_connection``
(:class:`ConnectionManager`).
"""

import logging
from typing import Any, Callable, Dict

from ..netutil import get_ip_address, set_keepalive
from ._codec import MAX_CONTENT_LENGTH, MAX_JSON_CONTENT_LENGTH, MessageManager
from ._connection import MAX_QUEUED_FILES, ConnectionManager
from ._files import FileAccess
from ._json import MAX_JSON_DEPTH
from ._notifier import NotifierSock, Singleton
from ._requests import Namespace, PendingRequest
from ._transport import MAX_QUEUED_OUTPUT

__all__ = [
    "MessageManager",
    "ConnectionManager",
    "NotifierSock",
    "Singleton",
    "Namespace",
    "PendingRequest",
    "FileAccess",
    "message_callback",
    "request_callback",
    "set_keepalive",
    "get_ip_address",
    "MAX_CONTENT_LENGTH",
    "MAX_JSON_CONTENT_LENGTH",
    "MAX_JSON_DEPTH",
    "MAX_QUEUED_OUTPUT",
    "MAX_QUEUED_FILES",
]

logger = logging.getLogger(__name__)

Callback = Callable[..., Any]


def message_callback(action_string: str) -> Callable[[Callback], Callback]:
    """Register the decorated function for action messages named ``action_string``.

    The function is called as ``f(connection, *args, **kwargs)`` on the loop
    thread; its return value is ignored and an exception it raises is logged.
    The registry is :attr:`ConnectionManager.messages_callbacks` (shared by
    every connection; the last registration wins).

    Parameters
    ----------
    action_string : str
        The action to handle.

    Returns
    -------
    callable
        A decorator returning a wrapper of the function.
    """
    return _registering(ConnectionManager.messages_callbacks, action_string, "message function")


def request_callback(string_command: str) -> Callable[[Callback], Callback]:
    """Register the decorated function for requests named ``string_command``.

    The function is called as ``f(connection, *args, **kwargs)`` on the loop
    thread and its JSON-serialisable return value is sent back. If it raises,
    the error is logged and no response is sent (the requester's timeout, if
    any, then fails the request). The registry is
    :attr:`ConnectionManager.requests_callbacks`.

    Parameters
    ----------
    string_command : str
        The requested value to answer.

    Returns
    -------
    callable
        A decorator returning a wrapper of the function.
    """
    return _registering(ConnectionManager.requests_callbacks, string_command, "callback function")


def _registering(registry: Dict[str, Callback], name: str, kind: str) -> Callable[[Callback], Callback]:
    """A decorator that puts the function in ``registry`` under ``name``, and returns a wrapper."""
    def inner(f: Callback) -> Callback:
        registry[name] = f
        logger.debug("Registered %s %s for %s", kind, f, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return f(*args, **kwargs)
        wrapper.__wrapped__ = f  # type: ignore[attr-defined]
        return wrapper
    return inner
