"""Property tests: escaping and parsing round trips, robustness on any bytes."""
from hypothesis import given, settings
from hypothesis import strategies as st

from katcp_compat.core import (KatcpSyntaxError, Message, MessageParser, escape_argument,
                               unescape_argument)

SETTINGS = settings(max_examples=200, deadline=None)

names = st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9-]{0,15}\Z")
mids = st.one_of(st.none(), st.integers(min_value=1, max_value=2 ** 31 - 1))
arguments = st.lists(st.binary(max_size=40), max_size=6)
mtypes = st.sampled_from([Message.REQUEST, Message.REPLY, Message.INFORM])


@SETTINGS
@given(st.binary(max_size=200))
def test_unescape_inverts_escape(raw):
    assert unescape_argument(escape_argument(raw)) == raw


@SETTINGS
@given(st.binary(max_size=200))
def test_escaped_argument_has_no_whitespace_or_specials(raw):
    escaped = escape_argument(raw)
    assert escaped
    for special in b" \t\n\r\x1b\x00":
        assert special not in escaped


@SETTINGS
@given(mtypes, names, arguments, mids)
def test_parse_of_formatted_message_is_the_same_message(mtype, name, args, mid):
    msg = Message(mtype, name, args, mid)
    assert MessageParser().parse(bytes(msg)) == msg


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_give_a_message_or_a_syntax_error(line):
    try:
        msg = MessageParser().parse(line)
    except KatcpSyntaxError:
        return
    assert isinstance(msg, Message)
    assert isinstance(bytes(msg), bytes)


@SETTINGS
@given(st.lists(st.sampled_from([b"?", b"!", b"#", b"a", b"-", b"[", b"]", b"1", b" ",
                                 b"\t", b"\\", b"_", b"@", b"x", b"\x00", b"\xff"]),
                max_size=40))
def test_protocol_like_bytes_give_a_message_or_a_syntax_error(chunks):
    line = b"".join(chunks)
    try:
        MessageParser().parse(line)
    except KatcpSyntaxError:
        pass
