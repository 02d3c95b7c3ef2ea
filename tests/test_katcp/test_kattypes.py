"""KATCP types and the request/reply decorators."""
import concurrent.futures
import struct

import pytest

from katcp_compat.core import FailReply, Message
from katcp_compat.kattypes import (Address, Bool, Discrete, DiscreteMulti, Float, Int, Lru,
                                   Regex, Str, StrictTimestamp, Struct, Timestamp,
                                   TimestampOrNow, concurrent_reply, has_katcp_protocol_flags,
                                   inform, make_reply, minimum_katcp_version, pack_types,
                                   request, request_timeout_hint, return_reply, send_reply,
                                   unpack_types)


@pytest.mark.parametrize("kattype, value, packed", [
    (Int(), 42, b"42"),
    (Float(), 0.5, b"0.5"),
    (Float(), 2, b"2.0"),
    (Bool(), True, b"1"),
    (Str(), "a b", b"a b"),
    (Discrete(["on", "off"]), "on", b"on"),
    (DiscreteMulti(["a", "B", "c"]), ["a", "c"], b"a,c"),
    (Lru(), Lru.LRU_ERROR, b"error"),
    (Address(), ("127.0.0.1", 5000), b"127.0.0.1:5000"),
    (Address(), ("::1", 5000), b"[::1]:5000"),
    (Timestamp(), 1.5, b"1.500000"),
    (TimestampOrNow(), TimestampOrNow.NOW, b"now"),
    (StrictTimestamp(), 12.25, b"12.25"),
    (Struct(">HB"), (258, 3), struct.pack(">HB", 258, 3)),
    (Regex("^a.c$"), "abc", b"abc"),
])
def test_pack_then_unpack_round_trips(kattype, value, packed):
    assert kattype.pack(value) == packed
    assert kattype.unpack(packed) == value


@pytest.mark.parametrize("kattype, packed, text", [
    (Int(), b"notint", "Could not parse value 'b'notint'' as integer."),
    (Float(), b"x", "Could not parse value 'b'x'' as float."),
    (Bool(), b"2", "Boolean value must be b'0' or b'1' but is 'b'2''."),
    (Int(min=0), b"-1", "Integer -1 is lower than minimum 0."),
    (Int(max=3), b"4", "Integer 4 is higher than maximum 3."),
    (Float(min=1.0), b"0.5", "Float 0.5 is lower than minimum 1."),
    (Discrete(["on", "off"]), b"up", "Discrete value 'up' is not one of ['on', 'off']."),
    (Lru(), b"bad", "Lru value must be 'nominal' or 'error'."),
    (Address(), b"a:b:c", "Could not parse 'b'a:b:c'' as an address."),
    (Timestamp(), b"soon", "Could not parse value 'soon' as timestamp."),
    (StrictTimestamp(), b"1e5", "Could not parse value 'b'1e5'' as strict timestamp."),
    (Regex("^a"), b"b", "Value 'b' does not match regex '^a' with flags 'U'."),
])
def test_unpack_errors_use_original_wording(kattype, packed, text):
    with pytest.raises(ValueError) as info:
        kattype.unpack(packed)
    assert str(info.value) == text


def test_case_insensitive_discrete_accepts_other_case():
    assert Discrete(["On"], case_insensitive=True).unpack(b"on") == "on"


def test_discrete_multi_all_keyword_gives_every_value():
    assert DiscreteMulti(["b", "a"]).unpack(b"all") == ["a", "b"]


def test_timestamp_v4_is_milliseconds():
    assert Timestamp().pack(1.5, major=4) == b"1500"
    assert Timestamp().unpack(b"1500", major=4) == 1.5


def test_missing_value_uses_default_or_fails():
    assert Int(default=3).unpack(None) == 3
    assert Int(optional=True).unpack(None) is None
    with pytest.raises(ValueError, match="No value or default given"):
        Int().unpack(None)
    with pytest.raises(ValueError, match="Cannot pack a None value."):
        Int(optional=True).pack(None)


class Handlers:
    @request(Int(), Float(optional=True))
    @return_reply(Int(), Float())
    def request_add(self, req, i, f):
        """Add one."""
        return ("ok", i + 1, (f or 0.0) * 2)

    @request(Str(), Int(multiple=True))
    @return_reply(Int())
    def request_sum(self, req, label, *values):
        """Sum."""
        return ("ok", sum(values))

    @request(Int(), include_msg=True)
    @return_reply(Str())
    def request_echo(self, req, msg, i):
        """Echo the name."""
        return ("ok", msg.name)

    @return_reply()
    def request_nope(self, req, msg):
        """Always fails."""
        return ("fail", "not today")


@pytest.fixture
def handlers():
    return Handlers()


def test_request_decorator_unpacks_arguments_and_return_reply_packs(handlers):
    reply = handlers.request_add(None, Message.request("add", "4", "0.25"))
    assert bytes(reply) == b"!add ok 5 0.5"


def test_optional_argument_may_be_missing(handlers):
    assert bytes(handlers.request_add(None, Message.request("add", "1"))) == b"!add ok 2 0.0"


def test_multiple_type_swallows_remaining_arguments(handlers):
    reply = handlers.request_sum(None, Message.request("sum", "x", "1", "2", "3"))
    assert reply.arguments == [b"ok", b"6"]


def test_include_msg_passes_the_message(handlers):
    assert handlers.request_echo(None, Message.request("echo", "1")).arguments == [b"ok", b"echo"]


def test_fail_tuple_becomes_fail_reply(handlers):
    assert bytes(handlers.request_nope(None, Message.request("nope"))) == b"!nope fail not\\_today"


@pytest.mark.parametrize("args, text", [
    (["1", "2", "3"], "Too many parameters given."),
    (["notint"], "Error in parameter 1 (i): Could not parse value 'b'notint'' as integer."),
    ([], "Error in parameter 1 (i): No value or default given"),
])
def test_bad_requests_raise_fail_reply_with_original_text(handlers, args, text):
    with pytest.raises(FailReply) as info:
        handlers.request_add(None, Message.request("add", *args))
    assert str(info.value) == text


def test_docstring_and_name_survive_decoration():
    assert Handlers.request_add.__doc__ == "Add one."
    assert Handlers.request_add.__name__ == "request_add"


def test_return_reply_only_decorates_request_handlers():
    with pytest.raises(ValueError, match="request handler"):
        @return_reply()
        def handle(self, req, msg):
            """Nope."""


def test_only_last_type_may_be_multiple():
    with pytest.raises(TypeError, match="Only the last parameter type"):
        request(Int(multiple=True), Int())


def test_return_reply_with_future_replies_when_it_resolves():
    class Dev:
        @return_reply(Int())
        def request_later(self, req, msg):
            """Later."""
            return pending

    pending = concurrent.futures.Future()
    result = Dev().request_later(None, Message.request("later"))
    pending.set_result(("ok", 5))
    assert bytes(result.result(timeout=5)) == b"!later ok 5"


def test_send_reply_sends_through_req():
    sent = []

    class Req:
        msg = Message.request("thing", mid=4)

        def reply_with_message(self, reply):
            sent.append(reply)

    class Dev:
        @send_reply(Int())
        def done(self, req):
            return (req, "ok", 3)

    Dev().done(Req())
    assert [bytes(m) for m in sent] == [b"!thing ok 3"]


def test_inform_decorator_unpacks_inform_arguments():
    class Client:
        @inform(Str(), Int())
        def inform_thing(self, name, count):
            """Thing."""
            return (name, count)

    assert Client().inform_thing(Message.inform("thing", "a", "2")) == ("a", 2)


def test_make_reply_rejects_other_status():
    with pytest.raises(ValueError, match="First returned value must be 'ok' or 'fail'."):
        make_reply("x", (), ("maybe",), 5)


def test_pack_and_unpack_types():
    assert pack_types((Int(), Bool()), (1, False), 5) == [b"1", b"0"]
    assert unpack_types((Int(), Bool()), [b"1", b"0"], ["a", "b"], 5) == [1, False]
    with pytest.raises(ValueError, match="Too many arguments to pack."):
        pack_types((Int(),), (1, 2), 5)


def test_marker_decorators_set_attributes():
    @concurrent_reply
    @minimum_katcp_version(5, 1)
    @has_katcp_protocol_flags([b"T"])
    @request_timeout_hint(2)
    def request_x(self, req, msg):
        """X."""

    assert request_x._concurrent_reply is True
    assert request_x._minimum_katcp_version == (5, 1)
    assert request_x._has_katcp_protocol_flags == [b"T"]
    assert request_x.request_timeout_hint == 2.0


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ALL_TYPES = [Int(), Int(min=0, max=9), Float(), Float(min=-1, max=1), Bool(), Str(),
             Discrete(["a", "b"]), Discrete(["A"], case_insensitive=True),
             DiscreteMulti(["a", "b"]), Lru(), Address(), Timestamp(), TimestampOrNow(),
             StrictTimestamp(), Struct(">I"), Regex("^x+$")]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=30), st.sampled_from([4, 5]))
def test_any_bytes_unpack_to_a_value_or_a_value_error(raw, major):
    for kattype in ALL_TYPES:
        try:
            kattype.unpack(raw, major)
        except ValueError:
            pass


@settings(max_examples=100, deadline=None)
@given(st.integers(-2 ** 63, 2 ** 63), st.floats(allow_nan=False), st.text(max_size=30))
def test_packed_values_unpack_to_the_same_value(i, f, s):
    assert Int().unpack(Int().pack(i)) == i
    assert Float().unpack(Float().pack(f)) == f
    assert Str().unpack(Str().pack(s)) == s
