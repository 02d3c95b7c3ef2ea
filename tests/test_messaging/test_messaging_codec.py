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


# -- the stream decoder: feed(data) -> messages ----------------------------
class MemorySink:
    """A content sink keeping what it is given, as a connection's file sink would."""

    def __init__(self, header):
        self.header = header
        self.chunks = []
        self.discarded = False

    def write(self, data):
        self.chunks.append(bytes(data))

    def finish(self):
        return b"".join(self.chunks)

    def discard(self):
        self.discarded = True


def streaming_decoder(**limits):
    decoder = MessageManager()
    decoder.content_sink = MemorySink
    for name, value in limits.items():
        setattr(decoder, name, value)
    return decoder


def feed_in_pieces(decoder, data, cuts):
    got = []
    for piece in split_points(data, cuts):
        got.extend(decoder.feed(piece))
    return got


def summary(messages):
    return [(dict(m.jsonheader), m.content) for m in messages]


def test_feed_returns_each_message_once_complete():
    decoder = MessageManager()
    assert decoder.feed(ACTION_FRAME[:100]) == []
    assert decoder.partial
    [message] = decoder.feed(ACTION_FRAME[100:] + REQUEST_FRAME)[:1]
    assert message.jsonheader["action"] == "takeoff"
    assert message.content == {"args": [], "kwargs": {"z": 1.5}}


def test_feed_one_byte_at_a_time_gives_every_message():
    data = MessageManager.create_action_message("a", [1]) * 3
    decoder = MessageManager()
    got = []
    for i in range(len(data)):
        got.extend(decoder.feed(data[i:i + 1]))
    assert [m.content["args"] for m in got] == [[1], [1], [1]]
    assert not decoder.partial


def test_feed_streams_binary_content_into_the_sink():
    decoder = streaming_decoder()
    [message] = decoder.feed(FILE_PUSH_FRAME)
    assert message.content == b"\x00\x01"


def test_feed_keeps_binary_content_in_memory_without_a_sink():
    [message] = MessageManager().feed(FILE_PUSH_FRAME)
    assert message.content == b"\x00\x01"


def test_sink_refusing_a_header_is_a_value_error_before_the_content():
    decoder = MessageManager()

    def refuse(header):
        raise ValueError("no binary here")
    decoder.content_sink = refuse
    with pytest.raises(ValueError, match="no binary here"):
        decoder.feed(FILE_PUSH_FRAME[:-2])


def test_reset_discards_a_partly_received_content():
    decoder = streaming_decoder()
    decoder.feed(FILE_PUSH_FRAME[:-1])
    sink = decoder._sink
    decoder.reset()
    assert sink.discarded and not decoder.partial
    assert summary(decoder.feed(ACTION_FRAME)) == summary(MessageManager().feed(ACTION_FRAME))


def test_a_bad_frame_discards_the_messages_completed_with_it():
    sinks = []
    decoder = MessageManager()
    decoder.content_sink = lambda header: sinks.append(MemorySink(header)) or sinks[-1]
    with pytest.raises(ValueError):
        decoder.feed(FILE_PUSH_FRAME + frame(b"{oops"))
    assert [sink.discarded for sink in sinks] == [True]


def test_json_content_over_its_own_limit_is_refused_from_the_header():
    decoder = MessageManager()
    decoder.max_json_content_length = 10
    big = MessageManager.create_action_message("a", ["x" * 20])
    header_end = 2 + int.from_bytes(big[:2], "big")
    with pytest.raises(ValueError, match="exceeds the maximum of 10 bytes for JSON"):
        decoder.feed(big[:header_end])


def test_binary_content_may_exceed_the_json_limit():
    decoder = streaming_decoder(max_json_content_length=10)
    data = MessageManager.create_response("filetransfer", "0001", b"\xff" * 100, True)
    [message] = decoder.feed(data)
    assert message.content == b"\xff" * 100


def test_default_json_limit_is_smaller_than_the_content_limit():
    assert messaging.MAX_JSON_CONTENT_LENGTH == 1024 * 1024
    assert messaging.MAX_JSON_CONTENT_LENGTH < messaging.MAX_CONTENT_LENGTH == 64 * 1024 * 1024
    assert MessageManager.max_json_content_length == messaging.MAX_JSON_CONTENT_LENGTH


def test_header_nested_a_thousand_levels_is_a_value_error():
    deep = b"[" * 996 + b"]" * 996
    with pytest.raises(ValueError, match="nested 996 levels deep, more than the maximum of 64"):
        MessageManager().feed(b"\x07\xc8" + deep)


def test_content_nested_deeper_than_the_limit_is_a_value_error():
    content = b"[" * 65 + b"]" * 65
    data = frame(header(**{"content-length": len(content)}), content)
    with pytest.raises(ValueError, match="nested 65 levels deep"):
        MessageManager().feed(data)


def test_content_nested_at_the_limit_decodes():
    content = b"[" * 64 + b"]" * 64
    [message] = MessageManager().feed(frame(header(**{"content-length": len(content)}), content))
    assert message.content == eval("[" * 64 + "]" * 64)


def test_brackets_inside_strings_do_not_count_as_nesting():
    value = ["[" * 100 + "{" * 100 + '\\"' + "]" * 3]
    [message] = MessageManager().feed(MessageManager.create_json_message(value))
    assert message.content == value


def test_depth_limit_holds_whatever_the_callers_stack():
    deep = b"\x07\xc8" + b"[" * 996 + b"]" * 996

    def nested(levels):
        if levels:
            return nested(levels - 1)
        with pytest.raises(ValueError):
            MessageManager().feed(deep)
    nested(sys.getrecursionlimit() - 150)


def test_legacy_process_message_also_refuses_deep_nesting():
    message = MessageManager()
    message.income_raw = b"\x07\xc8" + b"[" * 996 + b"]" * 996
    with pytest.raises(ValueError, match="nested"):
        message.process_message()


@settings(max_examples=80, deadline=None)
@given(st.lists(frames, min_size=1, max_size=6), st.lists(st.integers(0, 10**6), max_size=12))
def test_any_chunking_feeds_the_same_messages(items, cuts):
    stream = b"".join(data for _, data, _ in items)
    whole = streaming_decoder().feed(stream)
    assert len(whole) == len(items)
    pieces = feed_in_pieces(streaming_decoder(), stream, cuts)
    assert summary(pieces) == summary(whole)
    for (kind, _, value), got in zip(items, pieces):
        if kind == "binary":
            assert got.content == value


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300), st.sampled_from(["json", "binary"]),
       st.lists(st.integers(0, 10**6), max_size=6))
def test_limits_hold_in_any_chunking(length, limit, content_type, cuts):
    # JSON content: spaces then a digit (valid JSON of any length but 0)
    content = (b" " * (length - 1) + b"0")[:length] if content_type == "json" else b"\x00" * length
    data = frame(header(**{"content-length": length, "content-type": content_type}), content)
    for limits in ({"max_content_length": limit}, {"max_json_content_length": limit}):
        decoder = streaming_decoder(**limits)
        refused = length > limit and (content_type == "json" or "max_content_length" in limits)
        if refused:
            with pytest.raises(ValueError, match="exceeds the maximum"):
                feed_in_pieces(decoder, data, cuts)
        elif not length and content_type == "json":
            with pytest.raises(ValueError, match="not valid"):  # empty content is not JSON
                feed_in_pieces(decoder, data, cuts)
        else:
            assert len(feed_in_pieces(decoder, data, cuts)) == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.sampled_from(["[", "{\"a\": "]), st.booleans(),
       st.lists(st.integers(0, 10**6), max_size=6))
def test_nesting_past_the_limit_is_refused_in_any_chunking(depth, opener, in_header, cuts):
    closer = "]" if opener == "[" else "}"
    text = (opener * depth + "1" + closer * depth).encode()
    if in_header:
        data = len(text).to_bytes(2, "big") + text
    else:
        data = frame(header(**{"content-length": len(text)}), text)
    decoder = streaming_decoder()
    if depth > messaging.MAX_JSON_DEPTH:
        with pytest.raises(ValueError, match="levels deep"):
            feed_in_pieces(decoder, data, cuts)
    elif in_header:
        with pytest.raises(ValueError, match="not an object|Missing required"):
            feed_in_pieces(decoder, data, cuts)
    else:
        [message] = feed_in_pieces(decoder, data, cuts)
        assert json.dumps(message.content).count(opener[0]) == depth


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 10**6), max_size=6))
def test_arbitrary_bytes_in_any_chunking_decode_or_raise_value_error(data, cuts):
    try:
        feed_in_pieces(streaming_decoder(), data, cuts)
    except ValueError:
        pass
