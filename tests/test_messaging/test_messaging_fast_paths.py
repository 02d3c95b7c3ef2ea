"""The fast encode/decode paths give exactly what the general JSON paths give."""
import collections
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import messaging
from lib.messaging import MessageManager

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
    got = messaging._json_decode(text.encode("utf-8"))
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', '{"a": 1}{}', "nul", "[1,]"])
def test_decoding_bad_json_raises_value_error(text):
    with pytest.raises(ValueError):
        messaging._json_decode(text.encode("utf-8"))


def received(connection):
    got = []
    connection.process_received = got.append
    return got


def test_several_whole_frames_in_one_chunk_are_dispatched_in_order():
    connection = messaging.ConnectionManager()
    got = received(connection)
    data = b"".join(MessageManager.create_action_message("a", [i]) for i in range(5))
    connection._receive(data)
    assert [m.content["args"] for m in got] == [[i] for i in range(5)]
    assert all(m.complete and m.income_raw == b"" for m in got)
    assert all(type(m.jsonheader) is collections.OrderedDict for m in got)


def test_whole_frames_then_a_cut_frame_completes_with_the_next_chunk():
    connection = messaging.ConnectionManager()
    got = received(connection)
    frames = [MessageManager.create_action_message("a", [i]) for i in range(3)]
    data = b"".join(frames)
    cut = len(frames[0]) + len(frames[1]) + 7
    connection._receive(data[:cut])
    assert len(got) == 2
    connection._receive(data[cut:])
    assert [m.content["args"] for m in got] == [[0], [1], [2]]


def test_binary_frame_after_a_json_frame_in_one_chunk_keeps_its_bytes():
    connection = messaging.ConnectionManager()
    got = received(connection)
    binary = MessageManager.create_message(b"\x00\x01\x02", "binary", "message",
                                           additional_headers={"action": "blob"})
    connection._receive(MessageManager.create_action_message("a") + binary)
    assert [m.jsonheader.get("action") for m in got] == ["a", "blob"]
    assert got[1].content == b"\x00\x01\x02"


def test_bytes_after_a_frame_whose_handling_raised_are_kept():
    connection = messaging.ConnectionManager()
    handled = []

    def handle(message):
        handled.append(message.content["args"])
        if len(handled) == 1:
            raise KeyError("raised by the application")
    connection.process_received = handle
    data = b"".join(MessageManager.create_action_message("a", [i]) for i in range(3))
    with pytest.raises(KeyError):
        connection._receive(data)
    connection._receive(b"")
    assert handled == [[0], [1], [2]]


def test_bad_header_in_a_chunk_of_whole_frames_is_a_value_error():
    connection = messaging.ConnectionManager()
    received(connection)
    bad = b'{"byteorder": "little"}'
    with pytest.raises(ValueError, match="Missing required header"):
        connection._receive(MessageManager.create_action_message("a")
                            + len(bad).to_bytes(2, "big") + bad)


def test_connect_turns_nagle_off_on_a_tcp_socket():
    import selectors
    import socket
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    selector = selectors.DefaultSelector()
    connection = messaging.ConnectionManager()
    try:
        client.setblocking(False)
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        selector.register(client, selectors.EVENT_READ, data=connection)
        connection.connect(selector, client, client.getpeername())
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        connection._close()
        selector.close()
        for sock in (server, listener):
            sock.close()


def test_json_text_without_the_c_encoder_matches_json_dumps(monkeypatch):
    from lib import _messaging_codec as codec
    value = {"x": [1, 2.5, None, True, "\u00e9"], "y": {"z": "a\nb"}}
    fast = codec._json_text(value)
    monkeypatch.setattr(codec, "_c_make_encoder", None)
    assert codec._json_text(value) == fast == json.dumps(value, ensure_ascii=False)


def test_fast_json_encoder_is_checked_against_json_dumps():
    from lib import _messaging_codec as codec
    assert codec._c_make_encoder is None or codec._fast_encoder_works()
