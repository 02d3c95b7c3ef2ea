"""Message, MessageParser, escaping and ProtocolFlags of katcp_compat.core."""
import threading

import pytest

from katcp_compat import core
from katcp_compat.core import (AttrDict, DeviceMetaclass, DeviceServerMetaclass,
                               ExcepthookThread, KatcpSyntaxError, KatcpTypeError, Message,
                               MessageParser, ProtocolFlags)
from katcp_compat.kattypes import has_katcp_protocol_flags, minimum_katcp_version

WAIT = 5.0


@pytest.fixture
def parser():
    return MessageParser()


# ---------------------------------------------------------------- Message

def test_message_type_constants_match_original():
    assert (Message.REQUEST, Message.REPLY, Message.INFORM) == (0, 1, 2)
    assert (Message.OK, Message.FAIL, Message.INVALID) == (b"ok", b"fail", b"invalid")


def test_request_without_arguments_formats_as_type_and_name():
    assert bytes(Message.request("watchdog")) == b"?watchdog"


def test_arguments_are_stored_as_bytes():
    msg = Message.inform("x", "text", b"raw", 3, 2.5, True, False)
    assert msg.arguments == [b"text", b"raw", b"3", b"2.5", b"1", b"0"]


def test_float_argument_uses_repr():
    assert Message.reply("x", 1e-05, 0.25).arguments == [b"1e-05", b"0.25"]


def test_unicode_argument_is_utf8_encoded():
    assert Message.inform("x", "\u00e9").arguments == ["\u00e9".encode("utf-8")]


def test_other_objects_are_formatted_with_str():
    class Thing:
        def __str__(self):
            return "thing"
    assert Message.inform("x", Thing()).arguments == [b"thing"]


def test_spaces_and_specials_are_escaped_on_the_wire():
    msg = Message.inform("log", "a b\\c\t\n\r\x1b\0")
    assert bytes(msg) == b"#log a\\_b\\\\c\\t\\n\\r\\e\\0"


def test_empty_argument_is_sent_as_escape_at():
    assert bytes(Message.reply("x", "ok", "")) == b"!x ok \\@"


def test_mid_is_attached_to_the_name():
    msg = Message.request("watchdog", mid=7)
    assert msg.mid == b"7"
    assert bytes(msg) == b"?watchdog[7]"


def test_str_is_the_wire_line_as_text():
    assert str(Message.reply("watchdog", "ok", mid="8")) == "!watchdog[8] ok"


def test_reply_to_request_copies_name_and_mid():
    req = Message.request("foo", mid=12)
    assert Message.reply_to_request(req, "ok", 1) == Message.reply("foo", "ok", "1", mid=b"12")


def test_reply_inform_copies_name_and_mid():
    req = Message.request("foo", mid=3)
    inform = Message.reply_inform(req, "a")
    assert (inform.mtype, inform.name, inform.mid, inform.arguments) == (
        Message.INFORM, "foo", b"3", [b"a"])


def test_reply_ok_is_true_only_for_reply_starting_with_ok():
    assert Message.reply("x", "ok").reply_ok()
    assert not Message.reply("x", "fail", "no").reply_ok()
    assert not Message.inform("x", "ok").reply_ok()
    assert not Message.reply("x").reply_ok()


def test_copy_is_equal_but_independent_and_drops_mid():
    msg = Message.request("foo", "a", mid=4)
    dup = msg.copy()
    dup.arguments.append(b"b")
    assert msg.arguments == [b"a"]
    assert dup.mid is None


def test_equality_compares_type_name_arguments_and_mid():
    assert Message.request("a", "1") == Message.request("a", 1)
    assert Message.request("a", "1") != Message.inform("a", "1")
    assert Message.request("a", mid=1) != Message.request("a", mid=2)
    assert Message.request("a") != "?a"


def test_repr_names_type_name_and_arguments():
    assert repr(Message.request("foo", "a b")) == "<Message request foo (b'a\\\\_b')>"


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="Invalid keyword"):
        Message.request("a", bogus=1)


@pytest.mark.parametrize("name, text", [
    ("", "Command missing command name."),
    ("1abc", "should start with an alphabetic character"),
    ("a b", "should consist only of alphanumeric characters and dashes"),
    ("caf\u00e9", "should consist only of alphanumeric characters and dashes"),
])
def test_invalid_name_is_a_syntax_error(name, text):
    with pytest.raises(KatcpSyntaxError, match=text):
        Message.request(name)


def test_non_digit_mid_is_a_syntax_error():
    with pytest.raises(KatcpSyntaxError, match="Invalid message id"):
        Message.request("a", mid="x1")


def test_invalid_type_is_a_syntax_error():
    with pytest.raises(KatcpSyntaxError, match="Invalid command type"):
        Message(7, "a")


# ---------------------------------------------------------------- parser

def test_parse_request_with_mid_and_arguments(parser):
    msg = parser.parse(b"?sensor-value[5] a\\_b \\@ 3")
    assert (msg.mtype, msg.name, msg.mid, msg.arguments) == (
        Message.REQUEST, "sensor-value", b"5", [b"a b", b"", b"3"])


def test_parse_accepts_tabs_and_repeated_whitespace_and_trailing_space(parser):
    assert parser.parse(b"#x a\t\t b  \t").arguments == [b"a", b"b"]


@pytest.mark.parametrize("line, text", [
    (b"", "Empty message received."),
    (b" ?a", "Bad type character"),
    (b"xa", "Bad type character"),
    (b"?1a", "Bad message name"),
    (b"?a[0x]", "Bad message name"),
    (b"?a b\\.c", "Invalid escape character"),
    (b"?a b\\", "Escape slash at end of argument."),
    (b"?a b\x1bc", "Un-escaped special"),
])
def test_parse_errors_are_syntax_errors(parser, line, text):
    with pytest.raises(KatcpSyntaxError, match=text.replace("[", "\\[").replace(".", "\\.")):
        parser.parse(line)


def test_parse_rejects_text_lines(parser):
    with pytest.raises(KatcpTypeError):
        parser.parse("?watchdog")


def test_parse_of_formatted_message_gives_it_back(parser):
    msg = Message.inform("log", "error", 1.5, "root", "multi\nline message\\", "", mid=9)
    assert parser.parse(bytes(msg)) == msg


def test_escape_and_unescape_helpers_are_inverse():
    raw = b"a b\\\t\n\r\x1b\0"
    assert core.unescape_argument(core.escape_argument(raw)) == raw
    assert core.escape_argument(b"") == b"\\@"


def test_convert_method_name_turns_underscores_into_dashes():
    assert core.convert_method_name("request_", "request_sensor_list") == "sensor-list"


# ---------------------------------------------------------------- ProtocolFlags

def test_protocol_flags_parse_version_and_format_sorted():
    pf = ProtocolFlags.parse_version(b"5.0-MI")
    assert (pf.major, pf.minor, pf.flags) == (5, 0, {b"M", b"I"})
    assert pf.multi_client and pf.message_ids
    assert str(pf) == "5.0-IM"


def test_protocol_flags_without_flags_format_without_dash():
    assert str(ProtocolFlags(4, 0, "")) == "4.0"


def test_protocol_flags_unparsable_version_gives_zero():
    pf = ProtocolFlags.parse_version(b"garbage")
    assert (pf.major, pf.minor, pf.flags) == (0, 0, set())


def test_protocol_flags_supports_and_equality():
    pf = ProtocolFlags(5, 1, {ProtocolFlags.MESSAGE_IDS, ProtocolFlags.BULK_SET_SENSOR_SAMPLING})
    assert pf.supports(b"B") and pf.supports("I") and not pf.supports(b"M")
    assert pf == ProtocolFlags.parse_version(b"5.1-BI")


@pytest.mark.parametrize("major, minor, flags", [(4, 0, "I"), (5, 0, "T"), (5, 0, "B")])
def test_protocol_flags_reject_flags_newer_than_version(major, minor, flags):
    with pytest.raises(ValueError):
        ProtocolFlags(major, minor, flags)


def test_strategy_allowed_depends_on_major_version():
    assert ProtocolFlags(5, 0, "").strategy_allowed(b"event-rate")
    assert not ProtocolFlags(4, 0, "").strategy_allowed(b"event-rate")
    assert ProtocolFlags(4, 0, "").strategy_allowed("period")


# ---------------------------------------------------------------- metaclass

def test_metaclass_collects_handlers_by_message_name():
    class Dev(metaclass=DeviceMetaclass):
        def request_sensor_list(self, req, msg):
            """List."""

        def inform_sensor_status(self, msg):
            """Status."""

        def reply_watchdog(self, msg):
            """Watchdog reply."""

        def reply_inform(self, conn, inform, orig):
            pass

    assert set(Dev._request_handlers) == {"sensor-list"}
    assert set(Dev._inform_handlers) == {"sensor-status"}
    assert set(Dev._reply_handlers) == {"watchdog"}


def test_metaclass_requires_docstrings():
    with pytest.raises(AssertionError, match="Request 'boom' has no docstring."):
        class Dev(metaclass=DeviceMetaclass):
            def request_boom(self, req, msg):
                pass


def test_subclass_inherits_and_extends_handlers():
    class Base(metaclass=DeviceMetaclass):
        def request_a(self, req, msg):
            """A."""

    class Sub(Base):
        def request_b(self, req, msg):
            """B."""

    assert set(Sub._request_handlers) == {"a", "b"}
    assert set(Base._request_handlers) == {"a"}


def test_server_metaclass_drops_handlers_the_protocol_does_not_allow():
    class Dev(metaclass=DeviceServerMetaclass):
        PROTOCOL_INFO = ProtocolFlags(5, 0, "MI")

        @minimum_katcp_version(5, 1)
        def request_new(self, req, msg):
            """Needs 5.1."""

        @has_katcp_protocol_flags([ProtocolFlags.MULTI_CLIENT])
        def request_multi(self, req, msg):
            """Needs M."""

        @has_katcp_protocol_flags([ProtocolFlags.REQUEST_TIMEOUT_HINTS])
        def request_hints(self, req, msg):
            """Needs T."""

    assert set(Dev._request_handlers) == {"multi"}


# ---------------------------------------------------------------- misc

def test_excepthook_thread_passes_exception_to_hook():
    caught = []
    done = threading.Event()

    def hook(etype, value, tb):
        caught.append(value)
        done.set()

    def boom():
        raise RuntimeError("boom")

    thread = ExcepthookThread(hook, target=boom)
    thread.start()
    assert done.wait(WAIT)
    thread.join(WAIT)
    assert isinstance(caught[0], RuntimeError)


def test_excepthook_thread_inherits_hook_from_creating_thread():
    caught = []
    done = threading.Event()

    def hook(etype, value, tb):
        caught.append(etype)
        done.set()

    def inner():
        raise KeyError("x")

    def outer():
        child = ExcepthookThread(target=inner)
        child.start()
        child.join(WAIT)

    parent = ExcepthookThread(hook, target=outer)
    parent.start()
    assert done.wait(WAIT)
    parent.join(WAIT)
    assert caught == [KeyError]


def test_attrdict_items_are_attributes():
    d = AttrDict(a=1)
    d.b = 2
    assert d.a == 1 and d["b"] == 2


def test_core_exceptions_have_original_bases():
    assert issubclass(core.KatcpSyntaxError, ValueError)
    assert issubclass(core.KatcpTypeError, TypeError)
    assert issubclass(core.KatcpVersionError, core.KatcpClientError)
    assert issubclass(core.KatcpClientDisconnected, core.KatcpClientError)
    for exc in (core.FailReply, core.AsyncReply, core.KatcpDeviceError):
        assert issubclass(exc, Exception)


def test_sensor_is_reachable_from_core():
    from katcp_compat.sensor import Sensor
    assert core.Sensor is Sensor


def test_excepthook_thread_exposes_katcp05_attribute_name():
    def hook(etype, value, tb):
        pass

    thread = ExcepthookThread(hook)
    assert thread._excepthook is hook
