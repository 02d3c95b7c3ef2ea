"""kattypes pack/unpack results and error texts cross-checked against katcp 0.9.3."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from katcp_compat import kattypes as ours
from katcp_compat.core import FailReply, Message

katcp = pytest.importorskip("katcp")
from katcp import kattypes as theirs  # noqa: E402

pytestmark = pytest.mark.interop


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # the text is what is compared
        return (type(exc).__name__, str(exc))


def _both(name, *args, **kwargs):
    return getattr(ours, name)(*args, **kwargs), getattr(theirs, name)(*args, **kwargs)


TYPES = [
    ("Int", (), {}), ("Int", (), dict(min=-3, max=3)), ("Float", (), {}),
    ("Float", (), dict(min=0.0, max=1.0)), ("Bool", (), {}), ("Str", (), {}),
    ("Discrete", (["on", "off"],), {}), ("Discrete", (["On"],), dict(case_insensitive=True)),
    ("DiscreteMulti", (["a", "b", "c"],), {}), ("Lru", (), {}), ("Address", (), {}),
    ("Timestamp", (), {}), ("StrictTimestamp", (), {}), ("Regex", ("^[a-z]+$",), {}),
]
WIRE = [b"", b"0", b"1", b"-4", b"2.5", b"1e-05", b"abc", b"on", b"ON", b"a,c", b"all",
        b"nominal", b"error", b"1.2.3.4:80", b"[::1]:8", b"host", b"a:b:c", b"12.25",
        b"-1.5", b"now", b"x y"]


@pytest.mark.parametrize("name, args, kwargs", TYPES)
@pytest.mark.parametrize("major", [4, 5])
def test_unpack_matches_original(name, args, kwargs, major):
    a, b = _both(name, *args, **kwargs)
    for wire in WIRE:
        assert _outcome(lambda: a.unpack(wire, major)) == _outcome(lambda: b.unpack(wire, major))


@pytest.mark.parametrize("name, args, kwargs", TYPES)
def test_pack_of_unpacked_matches_original(name, args, kwargs):
    a, b = _both(name, *args, **kwargs)
    for wire in WIRE:
        ok, value = _outcome(lambda: b.unpack(wire))
        if ok == "ok" and value is not None:
            for major in (4, 5):
                assert a.pack(value, major=major) == b.pack(value, major=major)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(-10 ** 6, 10 ** 6), st.floats(allow_nan=False)))
def test_numbers_pack_the_same(value):
    for name in ("Int", "Float", "Timestamp"):
        a, b = _both(name)
        if name == "Int" and isinstance(value, float):
            continue
        assert _outcome(lambda: a.pack(value)) == _outcome(lambda: b.pack(value))


def _handler_pair():
    class Ours:
        @ours.request(ours.Int(), ours.Float(optional=True), ours.Bool(default=False))
        @ours.return_reply(ours.Int(), ours.Float())
        def request_calc(self, req, i, f, flag):
            """Calc."""
            return ("ok", i, f or 0.0)

    class Theirs:
        @theirs.request(theirs.Int(), theirs.Float(optional=True), theirs.Bool(default=False))
        @theirs.return_reply(theirs.Int(), theirs.Float())
        def request_calc(self, req, i, f, flag):
            """Calc."""
            return ("ok", i, f or 0.0)

    return Ours(), Theirs()


@pytest.mark.parametrize("args", [
    ["1"], ["1", "0.5"], ["1", "0.5", "1"], ["x"], [], ["1", "y"], ["1", "2", "3", "4"],
    ["1", "2", "maybe"],
])
def test_decorated_handler_replies_and_fail_texts_match_original(args):
    a, b = _handler_pair()

    def run(obj, msg_cls, fail_cls):
        try:
            return ("reply", bytes(obj.request_calc(None, msg_cls.request("calc", *args))))
        except fail_cls as exc:
            return ("fail", str(exc))

    assert run(a, Message, FailReply) == run(b, katcp.Message, katcp.FailReply)
