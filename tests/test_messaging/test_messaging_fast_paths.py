"""The fast encode/decode paths give exactly what the general JSON paths give."""
import collections
import json
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging_helpers import DirectLink

from lib import messaging
from lib.messaging import MessageManager
from protocompat.messaging import _json

STANDARD_KEYS = ["byteorder", "content-type", "content-encoding", "content-length", "message-type"]

json_scalars = st.none() | st.booleans() | st.integers() | st.text() | \
    st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
header_keys = st.sampled_from(STANDARD_KEYS + ["action", "filepath", "request_id"]) | st.text(max_size=8)
header_values = st.text(max_size=12) | st.integers() | st.booleans() | st.none() | \
    st.floats(allow_nan=False) | st.lists(st.integers(), max_size=3)


def reference_frame(content, content_type, message_type, content_encoding, additional_headers):
    """A frame built with plain ``json.dumps`` of the header dict."""
    header = {"byteorder": __import__("sys").byteorder, "content-type": content_type,
              "content-encoding": content_encoding, "content-length": len(content),
              "message-type": message_type}
    if additional_headers:
        header.update(additional_headers)
    header_bytes = json.dumps(header, ensure_ascii=False).encode("utf-8")
    return len(header_bytes).to_bytes(2, "big") + header_bytes + content


def outcome(function, *args):
    try:
        return function(*args)
    except Exception as error:  # the same error type must come out of both paths
        return type(error)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=20), st.text(max_size=10), st.text(max_size=10), st.text(max_size=10),
       st.none() | st.dictionaries(header_keys, header_values, max_size=4))
def test_header_is_byte_identical_to_json_dumps_of_the_header_dict(content, content_type,
                                                                     message_type, encoding, extra):
    assert outcome(MessageManager.create_message, content, content_type, message_type,
                   encoding, extra) == \
        outcome(reference_frame, content, content_type, message_type, encoding, extra)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=12), st.lists(json_values, max_size=3),
       st.dictionaries(st.text(max_size=6), json_values, max_size=3))
def test_action_message_is_byte_identical_to_json_dumps_of_header_and_content(action, args, kwargs):
    content = json.dumps({"args": args, "kwargs": kwargs}, ensure_ascii=False).encode("utf-8")
    expected = reference_frame(content, "json", "message", "utf-8", {"action": action})
    assert MessageManager.create_action_message(action, args, kwargs) == expected
    assert MessageManager.create_action_message(action, args, kwargs) == expected  # name cached


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=12), st.text(max_size=8), json_values)
def test_response_is_byte_identical_to_json_dumps_of_header_and_content(name, request_id, value):
    content = json.dumps({"value": value}, ensure_ascii=False).encode("utf-8")
    expected = reference_frame(content, "json", "response", "utf-8",
                               {"requested_value": name, "request_id": request_id})
    assert MessageManager.create_response(name, request_id, value) == expected
    assert MessageManager.create_response(name, request_id, value) == expected  # name cached


def test_action_name_too_long_for_the_protoheader_is_refused():
    with pytest.raises(ValueError, match="does not fit the 2-byte protoheader"):
        MessageManager.create_action_message("a" * 70000)


def test_extra_header_overriding_a_standard_key_keeps_its_place():
    data = MessageManager.create_message(b"{}", "json", "message",
                                         additional_headers={"content-type": "binary", "x": 1})
    assert data == reference_frame(b"{}", "binary", "message", "utf-8", {"x": 1})
    assert b'"content-type": "binary"' in data and data.index(b'"content-type"') < data.index(b'"x"')


def test_lone_surrogate_in_a_header_is_refused_like_json_dumps():
    with pytest.raises(UnicodeEncodeError):
        MessageManager.create_action_message("bad\ud800")


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_json_content_is_byte_identical_to_json_dumps(value):
    expected = json.dumps({"value": value}, ensure_ascii=False).encode("utf-8")
    assert MessageManager.create_response("v", "0001", value).endswith(expected)


def test_content_that_is_not_json_raises_type_error_and_can_be_retried():
    unserialisable = {"value": object()}
    for _ in range(2):  # no state is left behind by the failed attempt
        with pytest.raises(TypeError):
            MessageManager.create_json_message(unserialisable)


def test_circular_content_raises_value_error():
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        MessageManager.create_json_message(loop)


@settings(max_examples=150, deadline=None)
@given(json_values, st.sampled_from(["", " ", "\n", " \t"]), st.sampled_from(["", " ", "\r\n"]))
def test_decoding_equals_json_loads_with_ordered_dicts(value, before, after):
    text = before + json.dumps(value, ensure_ascii=False) + after
    expected = json.loads(text, object_pairs_hook=collections.OrderedDict)
    got = MessageManager._json_decode(text.encode("utf-8"), "utf-8")
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', '{"a": 1}{}', "nul", "[1,]"])
def test_decoding_bad_json_raises_value_error(text):
    with pytest.raises(ValueError):
        MessageManager._json_decode(text.encode("utf-8"), "utf-8")


def test_several_whole_frames_in_one_chunk_decode_in_order():
    data = b"".join(MessageManager.create_action_message("a", [i]) for i in range(5))
    got = MessageManager().feed(data)
    assert [m.content["args"] for m in got] == [[i] for i in range(5)]
    assert all(m.complete and m.income_raw == b"" for m in got)
    assert all(type(m.jsonheader) is collections.OrderedDict for m in got)


def test_whole_frames_then_a_cut_frame_completes_with_the_next_chunk():
    frames = [MessageManager.create_action_message("a", [i]) for i in range(3)]
    data = b"".join(frames)
    cut = len(frames[0]) + len(frames[1]) + 7
    decoder = MessageManager()
    first = decoder.feed(data[:cut])
    assert len(first) == 2 and decoder.partial
    rest = decoder.feed(data[cut:])
    assert [m.content["args"] for m in first + rest] == [[0], [1], [2]]
    assert not decoder.partial


def test_binary_frame_after_a_json_frame_in_one_chunk_keeps_its_bytes():
    binary = MessageManager.create_message(b"\x00\x01\x02", "binary", "message",
                                           additional_headers={"action": "blob"})
    got = MessageManager().feed(MessageManager.create_action_message("a") + binary)
    assert [m.jsonheader.get("action") for m in got] == ["a", "blob"]
    assert got[1].content == b"\x00\x01\x02"


def test_bad_header_in_a_chunk_of_whole_frames_is_a_value_error():
    bad = b'{"byteorder": "little"}'
    with pytest.raises(ValueError, match="Missing required header"):
        MessageManager().feed(MessageManager.create_action_message("a") + len(bad).to_bytes(2, "big") + bad)


class RaisingOnce(messaging.ConnectionManager):
    """Its own message handling raises on the first message only."""

    def __init__(self):
        super().__init__()
        self.handled = []

    def process_received(self, message):
        self.handled.append(message.content["args"])
        if len(self.handled) == 1:
            raise KeyError("raised by the application")


def test_messages_after_one_whose_handling_raised_are_handled_next():
    connection = RaisingOnce()
    with DirectLink(connection) as link:
        link.peer.sendall(b"".join(MessageManager.create_action_message("a", [i]) for i in range(3)))
        with pytest.raises(KeyError):
            link.pump(lambda: connection.handled)
        link.peer.sendall(MessageManager.create_action_message("a", [3]))
        link.pump(lambda: len(connection.handled) == 4)
        assert connection.handled == [[0], [1], [2], [3]]


def test_connect_turns_nagle_off_on_a_tcp_socket():
    connection = messaging.ConnectionManager()
    with DirectLink(connection) as link:
        assert link.peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert link.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_json_text_without_the_c_encoder_matches_json_dumps(monkeypatch):
    value = {"x": [1, 2.5, None, True, "\u00e9"], "y": {"z": "a\nb"}}
    fast = _json.json_text(value)
    monkeypatch.setattr(_json, "_c_make_encoder", None)
    assert _json.json_text(value) == fast == json.dumps(value, ensure_ascii=False)


def test_fast_json_encoder_is_checked_against_json_dumps():
    assert _json._c_make_encoder is None or _json.fast_encoder_works()
