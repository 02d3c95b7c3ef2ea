"""The public API has clever-show's names, signatures and defaults; legacy members exist."""
import collections
import inspect
import json

import pytest

from lib import messaging
from protocompat import netutil

# name -> parameters, as documented for clever-show's lib.messaging
DOCUMENTED = {
    "get_ip_address": "()",
    "message_callback": "(action_string)",
    "request_callback": "(string_command)",
    "set_keepalive": "(sock, after_idle_sec=1, interval_sec=3, max_fails=5)",
    "ConnectionManager.__init__": "(self, whoami='computer')",
    "ConnectionManager.close": "(self)",
    "ConnectionManager.connect": "(self, client_selector, client_socket, client_addr)",
    "ConnectionManager.process_events": "(self, mask)",
    "ConnectionManager.process_received": "(self, message)",
    "ConnectionManager.read": "(self)",
    "ConnectionManager.send_message": "(self, action, args=(), kwargs=None)",
    "ConnectionManager.write": "(self)",
    "ConnectionManager._close": "(self)",
    "ConnectionManager._send": "(self, data)",
    "ConnectionManager._send_response": "(self, requested_value, request_id, value, filetransfer=False)",
    "ConnectionManager._set_selector_events_mask": "(self, mode)",
    "MessageManager.__init__": "(self)",
    "MessageManager.process_message": "(self)",
    "MessageManager.create_message": "(content_bytes, content_type, message_type, "
                                     "content_encoding='utf-8', additional_headers=None)",
    "MessageManager.create_json_message": "(contents, additional_headers=None)",
    "MessageManager.create_action_message": "(action, args=(), kwargs=None)",
    "MessageManager.create_request": "(requested_value, request_id, args=(), kwargs=None)",
    "MessageManager.create_response": "(requested_value, request_id, value, filetransfer=False)",
    "Namespace.__init__": "(self, **kwargs)",
    "PendingRequest.__init__": "(self, **kwargs)",
    "NotifierSock.__init__": "(self)",
    "NotifierSock.close": "(self)",
    "NotifierSock.get_sock": "(self)",
    "NotifierSock.init": "(self, selector, port=26000)",
    "NotifierSock.notify": "(self)",
    "NotifierSock.process_events": "(self, mask)",
}


def lookup(name):
    obj = messaging
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def parameters(function):
    """The parameter list without type hints, e.g. ``(self, a, b=1, **kwargs)``."""
    out = []
    for p in inspect.signature(function).parameters.values():
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        default = "" if p.default is p.empty else "=" + repr(p.default)
        out.append(prefix + p.name + default)
    return "(%s)" % ", ".join(out)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_signature(name):
    assert (parameters(lookup(name))) == DOCUMENTED[name]


def test_get_response_only_adds_a_trailing_timeout():
    text = (parameters(messaging.ConnectionManager.get_response))
    assert text == ("(self, requested_value, callback, request_args=(), request_kwargs=None, "
                    "callback_args=(), callback_kwargs=None, timeout=None)")


@pytest.mark.parametrize("name, documented", [
    ("get_file", "(self, client_filepath, filepath=None, callback=None, callback_args=(), "
                 "callback_kwargs=None"),
    ("send_file", "(self, filepath, dest_filepath"),
])
def test_file_calls_only_add_a_keyword_only_progress(name, documented):
    function = getattr(messaging.ConnectionManager, name)
    assert parameters(function) == documented + ", progress=None)"
    progress = inspect.signature(function).parameters["progress"]
    assert progress.kind is progress.KEYWORD_ONLY


def test_keepalive_and_address_come_from_the_shared_module():
    assert messaging.set_keepalive is netutil.set_keepalive
    assert messaging.get_ip_address is netutil.get_ip_address


def test_connection_has_the_attributes_legacy_code_uses():
    connection = messaging.ConnectionManager("pi")
    assert (connection.selector, connection.socket, connection.addr) == (None, None, None)
    assert (connection.buffer_size, connection.resume_queue, connection.resend_requests) == (1024, False, True)
    assert connection.whoami == "pi"
    assert isinstance(connection._send_queue, collections.deque)
    assert isinstance(connection._request_queue, collections.OrderedDict)
    assert messaging.ConnectionManager.messages_callbacks is type(connection).messages_callbacks
    assert isinstance(messaging.ConnectionManager.requests_callbacks, dict)


def test_notifier_is_a_singleton_and_pending_request_a_namespace():
    assert issubclass(messaging.NotifierSock, messaging.Singleton)
    assert issubclass(messaging.PendingRequest, messaging.Namespace)


def test_message_manager_keeps_its_json_helpers():
    obj = {"b": ("é", 1), "a": None}
    assert messaging.MessageManager._json_encode(obj) == json.dumps(obj, ensure_ascii=False).encode()
    decoded = messaging.MessageManager._json_decode(b'{"b": {"y": 1, "x": 2}, "a": []}', "utf-8")
    assert isinstance(decoded["b"], collections.OrderedDict)
    assert list(decoded) == ["b", "a"] and list(decoded["b"]) == ["y", "x"]
