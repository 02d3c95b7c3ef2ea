"""The frame codec: exact bytes of every frame kind and incremental decoding."""
import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib import messaging
from lib.messaging import MessageManager

pytestmark = pytest.mark.skipif(sys.byteorder != "little",
                                reason="the documented examples were produced on a little-endian host")

ACTION_FRAME = (
    b'\x00\x92{"byteorder": "little", "content-type": "json", "content-encoding": "utf-8", '
    b'"content-length": 34, "message-type": "message", "action": "takeoff"}'
    b'{"args": [], "kwargs": {"z": 1.5}}'
)
REQUEST_FRAME = (
    b'\x00\x7d{"byteorder": "little", "content-type": "json", "content-encoding": "utf-8", '
    b'"content-length": 73, "message-type": "request"}'
    b'{"requested_value": "id", "request_id": "0042", "args": [], "kwargs": {}}'
)
RESPONSE_FRAME = (
    b'\x00\xad{"byteorder": "little", "content-type": "json", "content-encoding": "utf-8", '
    b'"content-length": 21, "message-type": "response", "requested_value": "id", "request_id": "0042"}'
    b'{"value": "copter01"}'
)
FILE_PUSH_FRAME = (
    b'\x00\xb5{"byteorder": "little", "content-type": "binary", "content-encoding": "utf-8", '
    b'"content-length": 2, "message-type": "message", "action": "filetransfer", '
    b'"filepath": "animation.csv"}\x00\x01'
)


def decode(data):
    message = MessageManager()
    message.income_raw = data
    message.process_message()
    return message


def frame(header, content=b""):
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(header_bytes).to_bytes(2, "big") + header_bytes + content


def header(**extra):
    base = {"byteorder": "little", "content-type": "json", "content-encoding": "utf-8",
            "content-length": 2, "message-type": "message"}
    base.update(extra)
    return base


# -- encoders -------------------------------------------------------------
def test_action_message_matches_documented_bytes():
    data = MessageManager.create_action_message("takeoff", kwargs={"z": 1.5})
    assert data == ACTION_FRAME
    assert len(data) == 182


def test_request_matches_documented_bytes():
    data = MessageManager.create_request("id", "0042")
    assert data == REQUEST_FRAME
    assert len(data) == 200


def test_response_matches_documented_bytes():
    data = MessageManager.create_response("id", "0042", "copter01")
    assert data == RESPONSE_FRAME
    assert len(data) == 196


def test_file_push_matches_documented_bytes():
    data = MessageManager.create_message(b"\x00\x01", "binary", "message",
                                         additional_headers={"action": "filetransfer",
                                                             "filepath": "animation.csv"})
    assert data == FILE_PUSH_FRAME
    assert len(data) == 185


def test_file_response_is_binary_with_utf8_encoding_and_id_in_header():
    data = MessageManager.create_response("filetransfer", "0007", b"\xff\x00", filetransfer=True)
    assert data == frame(
        b'{"byteorder": "little", "content-type": "binary", "content-encoding": "utf-8", '
        b'"content-length": 2, "message-type": "response", "requested_value": "filetransfer", '
        b'"request_id": "0007"}', b"\xff\x00")


def test_json_message_appends_additional_headers_in_order():
    data = MessageManager.create_json_message([1, "a"], {"x": 1, "y": None})
    assert data == frame(
        b'{"byteorder": "little", "content-type": "json", "content-encoding": "utf-8", '
        b'"content-length": 8, "message-type": "message", "x": 1, "y": null}', b'[1, "a"]')


def test_non_ascii_text_is_raw_utf8_in_header_and_content():
    data = MessageManager.create_action_message("привет", ["ü"])
    assert "привет".encode() in data and '"ü"'.encode() in data
    assert b"\\u" not in data


def test_tuples_are_sent_as_lists():
    data = MessageManager.create_action_message("a", (1, 2))
    assert data.endswith(b'{"args": [1, 2], "kwargs": {}}')


def test_server_ip_broadcast_datagram_round_trips():
    kwargs = {"host": "192.168.1.10", "port": "25000", "id": "server-1", "start_time": "1.5"}
    message = decode(MessageManager.create_action_message("server_ip", kwargs=kwargs))
    assert message.jsonheader["action"] == "server_ip"
    assert message.content == {"args": [], "kwargs": kwargs}


def test_header_too_long_for_protoheader_is_refused():
    with pytest.raises(ValueError):
        MessageManager.create_json_message(1, {"x": "a" * 70000})


# -- decoder --------------------------------------------------------------
def test_decoded_action_has_ordered_header_and_content():
    message = decode(ACTION_FRAME)
    assert list(message.jsonheader) == ["byteorder", "content-type", "content-encoding",
                                        "content-length", "message-type", "action"]
    assert message.content == {"args": [], "kwargs": {"z": 1.5}}
    assert message.income_raw == b""


def test_binary_content_stays_bytes():
    assert decode(FILE_PUSH_FRAME).content == b"\x00\x01"


def test_bytes_after_the_message_stay_in_income_raw():
    message = decode(ACTION_FRAME + REQUEST_FRAME[:5])
    assert message.content is not None
    assert message.income_raw == REQUEST_FRAME[:5]


def test_partial_input_fills_header_then_content():
    message = MessageManager()
    message.income_raw += ACTION_FRAME[:100]
    message.process_message()
    assert message.jsonheader is None and message.content is None
    message.income_raw += ACTION_FRAME[100:160]
    message.process_message()
    assert message.jsonheader["action"] == "takeoff" and message.content is None
    message.income_raw += ACTION_FRAME[160:]
    message.process_message()
    assert message.content["kwargs"] == {"z": 1.5}


def test_json_null_content_completes_the_message():
    message = decode(MessageManager.create_json_message(None))
    assert message.complete and message.content is None


def test_header_that_is_not_json_is_rejected():
    with pytest.raises(ValueError):
        decode(frame(b"{not json", b"{}"))


def test_header_without_required_key_is_rejected():
    bad = header()
    del bad["content-encoding"]
    with pytest.raises(ValueError, match="Missing required header content-encoding"):
        decode(frame(bad, b"{}"))


def test_content_length_over_the_maximum_is_rejected_before_content_arrives():
    big = header(**{"content-length": messaging.MAX_CONTENT_LENGTH + 1})
    with pytest.raises(ValueError, match="exceeds"):
        decode(frame(big))


def test_maximum_content_length_is_configurable():
    message = MessageManager()
    message.max_content_length = 10
    message.income_raw = frame(header(**{"content-length": 11}))
    with pytest.raises(ValueError):
        message.process_message()


def test_invalid_utf8_content_is_rejected():
    with pytest.raises(ValueError):
        decode(frame(header(), b"\xff\xfe"))


def test_invalid_utf8_header_is_rejected():
    with pytest.raises(ValueError):
        decode(frame(b'{"a": "\xff"}'))


def test_negative_content_length_is_rejected():
    with pytest.raises(ValueError):
        decode(frame(header(**{"content-length": -1})))


# -- property: any chunking decodes the same ------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                     max_size=4),
    max_leaves=10)

frames = st.one_of(
    st.builds(lambda a, args: ("action", MessageManager.create_action_message(a, args), args),
              st.text(min_size=1, max_size=10), st.lists(json_values, max_size=3)),
    st.builds(lambda v: ("response", MessageManager.create_response("x", "0001", v), v), json_values),
    st.builds(lambda b: ("binary", MessageManager.create_response("filetransfer", "0002", b, True), b),
              st.binary(max_size=300)),
)


def split_points(data, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points + [len(data)]:
        pieces.append(data[last:point])
        last = point
    return pieces


@settings(max_examples=60, deadline=None)
@given(st.lists(frames, min_size=1, max_size=6), st.lists(st.integers(0, 10**6), max_size=12))
def test_random_frames_in_random_chunks_decode_to_the_same_messages(items, cuts):
    stream = b"".join(data for _, data, _ in items)
    decoded = []
    message = MessageManager()
    for piece in split_points(stream, cuts):
        message.income_raw += piece
        while True:
            message.process_message()
            if not message.complete:
                break
            decoded.append(message)
            rest = message.income_raw
            message = MessageManager()
            message.income_raw = rest
    assert len(decoded) == len(items)
    for (kind, _, value), got in zip(items, decoded):
        if kind == "action":
            assert got.content["args"] == value
        elif kind == "response":
            assert got.content == {"value": value}
        else:
            assert got.content == value
            assert got.jsonheader["content-type"] == "binary"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_value_error(data):
    message = MessageManager()
    message.income_raw = data
    try:
        message.process_message()
    except ValueError:
        pass
