"""LineDecoder on its own: bytes in, lines or messages out, bounded."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from katcp_compat.core import (BadLine, KatcpLineTooLong, KatcpSyntaxError, LineDecoder,
                               MAX_MSG_SIZE, Message, MessageParser)

SMALL_LIMIT = 64


def _feed_all(decoder, chunks):
    items = []
    for chunk in chunks:
        items.extend(decoder.feed(chunk))
    return items


def _split(data, cuts):
    """``data`` cut at the given offsets."""
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in points + [len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def test_lf_and_cr_both_end_a_line():
    assert LineDecoder().feed(b"?a\n?b\r?c\r\n") == [b"?a", b"?b", b"?c"]


def test_empty_lines_are_dropped():
    assert LineDecoder().feed(b"\n\n\r\n?x\n\n") == [b"?x"]


def test_unfinished_line_waits_for_its_end():
    decoder = LineDecoder()
    assert decoder.feed(b"?wat") == []
    assert decoder.buffered == 4
    assert decoder.feed(b"chdog\n") == [b"?watchdog"]
    assert decoder.buffered == 0


def test_parser_gives_messages():
    decoder = LineDecoder(parser=MessageParser())
    assert decoder.feed(b"?echo[3] a\\_b\n#log x\n") == [
        Message.request("echo", b"a b", mid=3), Message.inform("log", "x")]


def test_bad_line_is_reported_in_order_and_decoding_goes_on():
    decoder = LineDecoder(parser=MessageParser())
    first, bad, last = decoder.feed(b"?a\n%oops\n?b\n")
    assert first == Message.request("a") and last == Message.request("b")
    assert isinstance(bad, BadLine)
    assert bad.line == b"%oops"
    assert isinstance(bad.error, KatcpSyntaxError)
    assert "Bad type character" in str(bad.error)


def test_line_at_the_limit_is_accepted():
    decoder = LineDecoder(max_line=SMALL_LIMIT)
    line = b"?" + b"x" * (SMALL_LIMIT - 1)
    assert decoder.feed(line) == []
    assert decoder.feed(b"\n") == [line]


def test_unfinished_line_past_the_limit_raises_with_the_numbers():
    decoder = LineDecoder(max_line=SMALL_LIMIT)
    decoder.feed(b"?" + b"x" * (SMALL_LIMIT - 1))
    with pytest.raises(KatcpLineTooLong, match="longer than 64 bytes .65 bytes") as info:
        decoder.feed(b"y")
    assert (info.value.max_line, info.value.length) == (SMALL_LIMIT, SMALL_LIMIT + 1)
    assert decoder.buffered == 0


def test_long_line_error_carries_the_lines_before_it():
    decoder = LineDecoder(max_line=SMALL_LIMIT)
    with pytest.raises(KatcpLineTooLong) as info:
        decoder.feed(b"?a\n?b\n" + b"z" * (SMALL_LIMIT + 1) + b"\n?c\n")
    assert info.value.decoded == [b"?a", b"?b"]


def test_long_line_error_is_a_syntax_error():
    assert issubclass(KatcpLineTooLong, KatcpSyntaxError)


def test_default_limit_is_katcps():
    assert LineDecoder().max_line == MAX_MSG_SIZE == 2 * 1024 * 1024


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="max_line must be at least 1 .got 0."):
        LineDecoder(max_line=0)


def test_many_small_chunks_of_a_long_line_are_not_quadratic():
    decoder = LineDecoder()
    chunk = b"x" * 16
    for _ in range(MAX_MSG_SIZE // len(chunk)):
        decoder.feed(chunk)
    assert decoder.buffered == MAX_MSG_SIZE
    assert decoder.feed(b"\n") == [chunk * (MAX_MSG_SIZE // len(chunk))]


# --------------------------------------------------------------------------- properties

_names = st.from_regex(r"\A[a-z][a-z0-9-]{0,8}\Z")
_args = st.lists(st.binary(max_size=12), max_size=4)
_messages = st.builds(lambda kind, name, args: Message(kind, name, args),
                      st.sampled_from([Message.REQUEST, Message.REPLY, Message.INFORM]),
                      _names, _args)
_terminators = st.sampled_from([b"\n", b"\r", b"\r\n"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_messages, _terminators), max_size=8),
       st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_chunking_gives_the_same_messages(pairs, cuts):
    data = b"".join(bytes(msg) + end for msg, end in pairs)
    items = _feed_all(LineDecoder(parser=MessageParser()), _split(data, cuts))
    assert items == [msg for msg, _end in pairs]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=300), max_size=10))
def test_any_chunking_of_any_bytes_gives_the_same_lines(data, cuts):
    whole = LineDecoder().feed(data)
    assert _feed_all(LineDecoder(), _split(data, cuts)) == whole


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=2 * SMALL_LIMIT).filter(
           lambda b: b"\n" not in b and b"\r" not in b), min_size=1, max_size=6),
       st.lists(st.integers(min_value=0, max_value=800), max_size=10))
def test_limit_holds_whatever_the_chunking(lines, cuts):
    data = b"\n".join(lines) + b"\n"
    decoder = LineDecoder(max_line=SMALL_LIMIT)
    received, failed = [], False
    for chunk in _split(data, cuts):
        try:
            received.extend(decoder.feed(chunk))
        except KatcpLineTooLong as exc:
            received.extend(exc.decoded)
            failed = True
            break
        assert decoder.buffered <= SMALL_LIMIT
    first_long = next((i for i, line in enumerate(lines) if len(line) > SMALL_LIMIT), None)
    expected = [line for line in lines[:first_long] if line]
    assert failed == (first_long is not None)
    assert received == expected
