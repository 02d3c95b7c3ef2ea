"""The frame codecs: stp framing, pure_json_protocol and struct_json_protocol frames."""
import functools
import json
import operator
import struct
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from sockproto.codec import (
    DEFAULT_MAX_JSON_DEPTH, BadFrame, ChecksumError, FrameError, StpDecoder, decode_pure_frame,
    decode_struct_frame, encode_pure_frame, encode_struct_frame, json_too_deep, stp_encode,
)

u32 = st.integers(min_value=0, max_value=2**32 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=10,
)
PROPERTY = settings(max_examples=150, deadline=None)
STRUCT_HEADER_SIZE = 12


# -- stp ----------------------------------------------------------------------
def test_stp_encode_doubles_sync_bytes_between_start_and_end():
    assert stp_encode(b"a:b") == b":<a::b:>"


def test_stp_encode_of_empty_frame():
    assert stp_encode(b"") == b":<:>"


def test_stp_decoder_skips_bytes_before_frame_start():
    decoder = StpDecoder()
    assert decoder.decode(b"noise:<x:>") == [b"x"]
    assert decoder.skipped == len(b"noise")


def test_stp_decoder_waits_for_split_escape():
    decoder = StpDecoder()
    assert decoder.decode(b":<a:") == []
    assert decoder.decode(b":b:") == []
    assert decoder.decode(b">") == [b"a:b"]


def _reasons(items):
    """Frames as they are, dropped frames as ("dropped", reason)."""
    return [item if isinstance(item, bytes) else ("dropped", item.reason) for item in items]


def test_stp_decoder_resyncs_on_frame_start_inside_frame():
    items = StpDecoder().feed(b":<lost:<kept:>")
    assert _reasons(items) == [("dropped", "frame start inside a frame: 4 bytes dropped"), b"kept"]


def test_stp_decoder_marks_frame_with_invalid_escape_as_dropped_and_goes_on():
    items = StpDecoder().feed(b":<bad:x:>:<good:>")
    assert _reasons(items) == [("dropped", "invalid stp escape b':x': 3 bytes dropped"), b"good"]


def test_stp_decoder_drops_frame_over_the_limit_and_stays_bounded():
    decoder = StpDecoder(max_frame_size=100)
    assert _reasons(decoder.feed(b":<" + b"y" * 150)) == [("dropped", "frame longer than 100 bytes: dropped")]
    for _ in range(100):  # the rest of the huge frame is skipped, not stored
        assert decoder.feed(b"y" * 1000) == []
        assert decoder.buffered <= 1
    assert decoder.feed(b":>:<ok:>") == [b"ok"]


def test_stp_decoder_decode_leaves_out_dropped_frames():
    assert StpDecoder().decode(b":<one:>:<bad:x:>:<two:>") == [b"one", b"two"]


def test_stp_decoder_takes_a_memoryview():
    assert StpDecoder().feed(memoryview(b"..:<a::b:>")) == [b"a:b"]


def test_stp_decoder_holds_no_memory_once_everything_fed_is_taken():
    decoder = StpDecoder()
    chunk = stp_encode(b"x" * 1000) * 1000
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        assert len(decoder.decode(chunk)) == 1000
        assert tracemalloc.get_traced_memory()[0] - start < 64 * 1024
    finally:
        tracemalloc.stop()


def test_stp_decoder_accepts_frame_of_exactly_the_limit():
    assert StpDecoder(max_frame_size=4).decode(stp_encode(b"a:bc")) == [b"a:bc"]


def test_stp_decoder_rejects_negative_limit():
    with pytest.raises(ValueError):
        StpDecoder(max_frame_size=-1)


@PROPERTY
@given(st.lists(st.binary(max_size=200), max_size=10), st.integers(min_value=1, max_value=50))
def test_stp_round_trip_in_any_chunking(frames, chunk):
    stream = b"".join(stp_encode(f) for f in frames)
    decoder = StpDecoder()
    out = []
    for i in range(0, len(stream), chunk):
        out.extend(decoder.decode(stream[i:i + chunk]))
    assert out == frames


@PROPERTY
@given(st.binary(max_size=500), st.integers(min_value=0, max_value=64))
def test_stp_decoder_gives_frames_or_dropped_frame_markers_for_any_bytes(data, limit):
    decoder = StpDecoder(max_frame_size=limit)
    for item in decoder.feed(data):
        assert isinstance(item, BadFrame) or (isinstance(item, bytes) and len(item) <= limit)
    assert decoder.buffered <= limit + 1


@PROPERTY
@given(st.lists(st.binary(max_size=50), min_size=1, max_size=5), st.binary(max_size=30))
def test_stp_frames_after_garbage_are_found(frames, garbage):
    garbage = garbage.replace(b":", b"")
    decoder = StpDecoder()
    assert decoder.decode(garbage + b"".join(stp_encode(f) for f in frames)) == frames


def _decode_all(decoder, chunks):
    """Frames and dropped frames (with their reasons), feeding ``chunks`` one after the other."""
    items = []
    for chunk in chunks:
        items.extend(_reasons(decoder.feed(chunk)))
    return items, decoder.skipped


stp_soup = st.lists(st.sampled_from([b":", b"::", b":<", b":>", b"<", b">", b"a", b"\x00"]),
                    max_size=60).map(b"".join)


@PROPERTY
@given(stp_soup, st.integers(min_value=0, max_value=8))
def test_stp_decoder_reads_any_bytes_alike_at_once_and_byte_by_byte(data, limit):
    whole = _decode_all(StpDecoder(max_frame_size=limit), [data])
    single = _decode_all(StpDecoder(max_frame_size=limit), [data[i:i + 1] for i in range(len(data))])
    assert whole == single


@PROPERTY
@given(stp_soup, st.integers(min_value=0, max_value=8))
def test_stp_decoder_reads_a_chunk_framed_by_start_and_end_alike_at_once_and_byte_by_byte(
        soup, limit):
    data = b":<" + soup + b":>"
    whole = _decode_all(StpDecoder(max_frame_size=limit), [data])
    single = _decode_all(StpDecoder(max_frame_size=limit), [data[i:i + 1] for i in range(len(data))])
    assert whole == single


def test_stp_decoder_reads_several_whole_frames_from_one_chunk():
    frames = [b"", b"a:b", b"::", b":>", b":<", b"x" * 100]
    assert StpDecoder().decode(b"".join(stp_encode(f) for f in frames)) == frames


def test_stp_decoder_keeps_a_partial_frame_for_the_next_chunk():
    decoder = StpDecoder()
    data = stp_encode(b"one:two") + stp_encode(b"three")
    assert decoder.decode(data[:-4]) == [b"one:two"]
    assert decoder.decode(data[-4:]) == [b"three"]


# -- pure_json_protocol frames ------------------------------------------------------
def test_pure_frame_is_json_object_then_big_endian_crc32():
    frame = encode_pure_frame(0, 10, 1, "x")
    body = b'{"status": 0, "service_id": 10, "data_id": 1, "data": "x"}'
    assert frame == body + struct.pack(">I", zlib.crc32(body))


@PROPERTY
@given(u32, u32, u32, json_values)
def test_pure_frame_body_is_json_dumps_of_the_message_dict(status, sid, did, data):
    body = json.dumps({"status": status, "service_id": sid, "data_id": did, "data": data}).encode()
    assert encode_pure_frame(status, sid, did, data) == body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize("data, error", [({1j}, TypeError), (float("nan"), None)])
def test_pure_frame_data_errors_and_specials_are_those_of_json_dumps(data, error):
    if error is None:
        assert b'"data": NaN}' in encode_pure_frame(0, 10, 1, data)
    else:
        with pytest.raises(error):
            encode_pure_frame(0, 10, 1, data)


def test_pure_frame_with_circular_data_raises_value_error():
    data = []
    data.append(data)
    with pytest.raises(ValueError):
        encode_pure_frame(0, 10, 1, data)


@PROPERTY
@given(u32, u32, u32, json_values)
def test_pure_frame_round_trip(status, sid, did, data):
    msg = decode_pure_frame(encode_pure_frame(status, sid, did, data))
    assert msg == {"status": status, "service_id": sid, "data_id": did, "data": data}


@PROPERTY
@given(st.binary(max_size=300))
def test_pure_decoder_gives_message_or_frame_error_for_any_bytes(data):
    try:
        msg = decode_pure_frame(data)
    except FrameError:
        return
    assert set(msg) == {"status", "service_id", "data_id", "data"}


@PROPERTY
@given(json_values, st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_pure_frame_with_flipped_bit_raises_checksum_or_frame_error(data, position, bit):
    frame = bytearray(encode_pure_frame(0, 10, 1, data))
    frame[position % len(frame)] ^= 1 << bit
    with pytest.raises(FrameError):
        decode_pure_frame(bytes(frame))


def test_pure_checksum_error_carries_readable_message():
    frame = bytearray(encode_pure_frame(0, 10, 1, "x"))
    frame[-1] ^= 1
    with pytest.raises(ChecksumError) as info:
        decode_pure_frame(bytes(frame))
    assert info.value.message.get_service_id() == 10


def test_pure_frame_accepts_missing_data_as_none():
    body = json.dumps({"status": 0, "service_id": 10, "data_id": 1}).encode()
    assert decode_pure_frame(body + struct.pack(">I", zlib.crc32(body))).get_data() is None


def _pure_frame_of_body(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize("body", [b' {"status": 0, "service_id": 10, "data_id": 1}',
                                  b'{"status": 0, "service_id": 10, "data_id": 1}\r\n',
                                  b'\t{"status": 0, "service_id": 10, "data_id": 1} '])
def test_pure_frame_accepts_whitespace_around_the_json_object_as_json_loads_does(body):
    assert decode_pure_frame(_pure_frame_of_body(body)).get_service_id() == 10


@pytest.mark.parametrize("body", [b'{"status": 0, "service_id": 10, "data_id": 1} x',
                                  b'{"status": 0, "service_id": 10, "data_id": 1}{}',
                                  b' ', b'{"status": 0, "service_id": 10, "data_id": 1'])
def test_pure_frame_with_extra_or_missing_json_raises_frame_error(body):
    with pytest.raises(FrameError, match="not UTF-8 JSON"):
        decode_pure_frame(_pure_frame_of_body(body))


@PROPERTY
@given(json_values)
def test_struct_frame_data_is_json_dumps_of_the_data(data):
    assert encode_struct_frame(0, 10, 1, data)[STRUCT_HEADER_SIZE:-1] == json.dumps(data).encode()


@pytest.mark.parametrize("bad", [True, 1.5, "1", None])
def test_pure_frame_rejects_non_integer_ids(bad):
    with pytest.raises(TypeError):
        encode_pure_frame(0, bad, 1, None)


# -- struct_json_protocol frames --------------------------------------------------------
def test_struct_frame_is_header_json_and_xor_byte():
    frame = encode_struct_frame(1, 10, 2, [1])
    body = struct.pack(">III", 1, 10, 2) + b"[1]"
    xor = 0
    for byte in body:
        xor ^= byte
    assert frame == body + bytes([xor])


@PROPERTY
@given(u32, u32, u32, json_values)
def test_struct_frame_round_trip(status, sid, did, data):
    msg = decode_struct_frame(encode_struct_frame(status, sid, did, data))
    assert msg == {"status": status, "service_id": sid, "data_id": did, "data": data}


@PROPERTY
@given(st.binary(max_size=300))
def test_struct_decoder_gives_message_or_frame_error_for_any_bytes(data):
    try:
        msg = decode_struct_frame(data)
    except FrameError:
        return
    assert set(msg) == {"status", "service_id", "data_id", "data"}


@pytest.mark.parametrize("ids", [(-1, 0, 0), (0, 2**32, 0)])
def test_struct_frame_rejects_ids_outside_32_bits(ids):
    with pytest.raises(ValueError):
        encode_struct_frame(*ids, None)


def test_struct_frame_is_shorter_than_pure_frame():
    assert len(encode_struct_frame(0, 10, 1, "x")) < len(encode_pure_frame(0, 10, 1, "x"))


def test_default_frame_limit_is_16_mib():
    from sockproto.codec import DEFAULT_MAX_FRAME_SIZE
    assert DEFAULT_MAX_FRAME_SIZE == 16 * 1024 * 1024
    assert StpDecoder().max_frame_size == DEFAULT_MAX_FRAME_SIZE


def test_json_text_without_the_c_encoder_matches_json_dumps(monkeypatch):
    from sockproto import codec
    value = {"x": [1, 2.5, None, True, "\u00e9"], "y": {"z": "a\nb"}}
    fast = codec._json_text(value)
    monkeypatch.setattr(codec, "_SHARED_ENCODER", None)
    assert codec._json_text(value) == fast == json.dumps(value)


def test_fast_json_encoder_is_checked_against_json_dumps(monkeypatch):
    from sockproto import codec
    assert codec._shared_encoder() is not None or codec._c_make_encoder is None
    monkeypatch.setattr(codec, "_c_make_encoder", lambda *args: lambda value, level: ["[1]"])
    assert codec._shared_encoder() is None  # it writes something else than json.dumps


def test_pure_frame_with_deep_data_raises_as_json_dumps_does():
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):
        json.dumps(deep)
    with pytest.raises(RecursionError):
        encode_pure_frame(0, 10, 1, deep)


# -- JSON nesting depth ----------------------------------------------------------------
# Text that JSON must escape or that looks like nesting, inside strings.
tricky_text = st.text(alphabet='[]{}"\\:,ab\n', max_size=8)
nested_values = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=30,
)


def _depth(value):
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _nested_text(kinds, leaf):
    """JSON text of ``leaf`` inside one array ('[') or object ('{') per entry of ``kinds``."""
    head = "".join('{"k": ' if kind == "{" else "[" for kind in kinds)
    tail = "".join("}" if kind == "{" else "]" for kind in reversed(kinds))
    return head + leaf + tail


def _structural_depth(text):
    """Deepest nesting a JSON parser can reach in ``text`` (no backslashes in it)."""
    depth = deepest = 0
    in_string = False
    for char in text.decode("latin-1"):
        if char == '"':
            in_string = not in_string
        elif not in_string and char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif not in_string and char in "]}":
            depth -= 1
    return deepest


@PROPERTY
@given(nested_values, st.integers(min_value=0, max_value=8))
def test_json_too_deep_is_exact_for_valid_json(value, max_depth):
    assert json_too_deep(json.dumps(value).encode(), max_depth) is (_depth(value) > max_depth)


@PROPERTY
@given(st.lists(st.sampled_from(["[", "{"]), max_size=3 * DEFAULT_MAX_JSON_DEPTH), tricky_text)
def test_pure_decoder_takes_data_up_to_the_depth_limit_and_refuses_deeper(kinds, leaf):
    data_text = _nested_text(kinds, json.dumps(leaf))
    body = ('{"status": 0, "service_id": 10, "data_id": 1, "data": %s}' % data_text).encode()
    frame = body + struct.pack(">I", zlib.crc32(body))
    if len(kinds) <= DEFAULT_MAX_JSON_DEPTH:
        assert decode_pure_frame(frame).get_data() == json.loads(data_text)
    else:
        with pytest.raises(FrameError, match="nested deeper than"):
            decode_pure_frame(frame)


@PROPERTY
@given(st.lists(st.sampled_from(["[", "{"]), max_size=40), st.integers(min_value=0, max_value=20))
def test_struct_decoder_depth_limit_is_a_parameter(kinds, max_depth):
    frame = encode_struct_frame(0, 10, 1, None)[:STRUCT_HEADER_SIZE]
    body = frame + _nested_text(kinds, "1").encode()
    body += bytes((functools.reduce(operator.xor, body, 0),))
    if len(kinds) <= max_depth:
        assert decode_struct_frame(body, max_depth).get_data() == json.loads(_nested_text(kinds, "1"))
    else:
        with pytest.raises(FrameError, match="nested deeper than %d" % max_depth):
            decode_struct_frame(body, max_depth)


bracket_soup = st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"a", b",", b":", b"1"]),
                        max_size=400).map(b"".join)


@PROPERTY
@given(bracket_soup, st.integers(min_value=0, max_value=12))
def test_json_too_deep_bounds_what_a_parser_reaches_in_any_text(text, max_depth):
    if not json_too_deep(text, max_depth):
        assert _structural_depth(text) <= max_depth


@pytest.mark.parametrize("text", [b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000,
                                  b"[{" * 50_000, b"[[]" * 100_000])
def test_json_too_deep_catches_huge_nesting(text):
    assert json_too_deep(text, DEFAULT_MAX_JSON_DEPTH)


def test_brackets_inside_strings_do_not_count():
    text = json.dumps(["[" * 1000, "\\\"[[[" * 100, "{" * 500]).encode()
    assert not json_too_deep(text, 1)
    assert decode_pure_frame(encode_pure_frame(0, 10, 1, json.loads(text))).get_data() == json.loads(text)
