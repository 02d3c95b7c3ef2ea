"""Cross-checks of Message formatting and parsing against katcp 0.9.3."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from katcp_compat.core import KatcpSyntaxError, Message, MessageParser, ProtocolFlags

katcp = pytest.importorskip("katcp")
from katcp import core as real_core  # noqa: E402

pytestmark = pytest.mark.interop

SETTINGS = settings(max_examples=150, deadline=None)

names = st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9-]{0,12}\Z")
mids = st.one_of(st.none(), st.integers(min_value=1, max_value=2 ** 31 - 1))
mtypes = st.sampled_from([Message.REQUEST, Message.REPLY, Message.INFORM])
plain_args = st.lists(st.one_of(
    st.binary(max_size=30), st.text(max_size=20), st.integers(),
    st.floats(allow_nan=False), st.booleans()), max_size=5)


@SETTINGS
@given(mtypes, names, plain_args, mids)
def test_same_bytes_on_the_wire_as_original(mtype, name, args, mid):
    ours = Message(mtype, name, args, mid)
    theirs = real_core.Message(mtype, name, args, mid)
    assert bytes(ours) == bytes(theirs)
    assert ours.arguments == theirs.arguments
    assert ours.mid == theirs.mid
    assert repr(ours) == repr(theirs)


def _parse_theirs(line):
    try:
        msg = real_core.MessageParser().parse(line)
    except Exception:
        return None
    return (msg.mtype, msg.name, msg.mid, msg.arguments)


def _parse_ours(line):
    try:
        msg = MessageParser().parse(line)
    except KatcpSyntaxError:
        return None
    return (msg.mtype, msg.name, msg.mid, msg.arguments)


@SETTINGS
@given(st.lists(st.sampled_from([b"?", b"!", b"#", b"ab", b"-", b"[", b"]", b"12", b" ",
                                 b"\t", b"\\", b"_", b"@", b"n", b"\n", b"\x00", b"\xc3\xa9"]),
                max_size=30))
def test_same_parse_results_as_original(chunks):
    line = b"".join(chunks)
    assert _parse_ours(line) == _parse_theirs(line)


@pytest.mark.parametrize("line", [
    b"?watchdog", b"!watchdog[8] ok", b"#sensor-status 1234.500000 1 a.b nominal 5",
    b"?sensor-list /^a\\.b/", b"#log error 1.0 root A\\_long\\_message\\n", b" ?a",
    b"?a  b\t", b"?a[0]", b"?a[12", b"#version-connect katcp-protocol 5.0-IM",
])
def test_same_parse_results_for_typical_lines(line):
    assert _parse_ours(line) == _parse_theirs(line)


@pytest.mark.parametrize("version", [b"5.0-IM", b"5.1-BIMT", b"4.0", b"junk", b"5.0-"])
def test_protocol_flags_match_original(version):
    ours = ProtocolFlags.parse_version(version)
    theirs = real_core.ProtocolFlags.parse_version(version)
    assert (ours.major, ours.minor, ours.flags) == (theirs.major, theirs.minor, theirs.flags)
    assert str(ours) == str(theirs)
