"""katcp 0.9.3's helper names, with their threaded meaning (concurrent futures)."""
import concurrent.futures
import threading
import time

import pytest

import katcp_compat
from katcp_compat import client as our_client
from katcp_compat import core, kattypes, server
from katcp_compat.core import Message
from katcp_io_helpers import WAIT, ExampleDevice, started

TimeoutError_ = concurrent.futures.TimeoutError
SHORT = 0.05


@pytest.fixture
def running_server():
    srv = started(ExampleDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


@pytest.fixture
def ioloop(running_server):
    """A server's ioloop: runs timers on its I/O thread, so no extra thread is left."""
    return running_server.ioloop


# --------------------------------------------------------------------------- core: events and states

def test_async_event_until_set_resolves_when_set_from_another_thread(ioloop):
    event = core.AsyncEvent(ioloop)
    fut = event.until_set()
    assert not fut.done() and not event.isSet()
    threading.Thread(target=event.set).start()
    assert fut.result(WAIT) is True
    assert event.is_set()


def test_async_event_until_set_of_a_set_event_is_resolved():
    event = core.AsyncEvent()
    event.set()
    assert event.until_set().result(0) is True


def test_async_event_until_set_times_out(ioloop):
    with pytest.raises(TimeoutError_):
        core.AsyncEvent(ioloop).until_set(timeout=SHORT).result(WAIT)


def test_async_event_wait_with_ioloop_blocks_until_set():
    event = core.AsyncEvent()
    assert event.wait_with_ioloop(None, timeout=SHORT) is False
    event.set()
    assert event.wait_with_ioloop(None, timeout=SHORT) is True


def test_async_state_until_state_resolves_on_that_state(ioloop):
    state = core.AsyncState(("idle", "busy", "done"), ioloop=ioloop)
    assert state.state == "idle"
    assert state.until_state("idle").result(0) is True
    busy = state.until_state("busy")
    either = state.until_state_in("done", "busy")
    state.set_state("busy")
    assert busy.result(WAIT) is True and either.result(WAIT) is True
    assert state.valid_states == frozenset(["idle", "busy", "done"])


def test_async_state_rejects_unknown_states():
    state = core.AsyncState(("a", "b"))
    with pytest.raises(ValueError, match="State must be one of"):
        state.set_state("c")
    with pytest.raises(ValueError):
        state.until_state("c")


def test_async_state_until_state_times_out(ioloop):
    state = core.AsyncState(("a", "b"), ioloop=ioloop)
    with pytest.raises(TimeoutError_):
        state.until_state("b", timeout=SHORT).result(WAIT)


# --------------------------------------------------------------------------- core: future helpers

def test_until_later_resolves_after_the_delay(ioloop):
    started_at = time.monotonic()
    assert core.until_later(SHORT, ioloop).result(WAIT) is None
    assert time.monotonic() - started_at >= SHORT * 0.9


def test_until_later_without_an_ioloop_uses_the_shared_timer():
    assert core.until_later(SHORT).result(WAIT) is None


def test_until_any_takes_the_first_outcome():
    first, second = concurrent.futures.Future(), concurrent.futures.Future()
    fut = core.until_any(first, second)
    second.set_result("two")
    first.set_result("one")
    assert fut.result(0) == "two"


def test_until_any_passes_on_an_error():
    failing = concurrent.futures.Future()
    fut = core.until_any(failing, concurrent.futures.Future())
    failing.set_exception(KeyError("k"))
    with pytest.raises(KeyError):
        fut.result(0)


def test_until_any_times_out(ioloop):
    with pytest.raises(TimeoutError_):
        core.until_any(concurrent.futures.Future(), timeout=SHORT, ioloop=ioloop).result(WAIT)


def test_until_some_gives_index_and_result_in_finishing_order():
    futures = [concurrent.futures.Future() for _ in range(3)]
    fut = core.until_some(*futures, done_at_least=2)
    futures[2].set_result("c")
    assert not fut.done()
    futures[0].set_result("a")
    assert fut.result(0) == [(2, "c"), (0, "a")]


def test_until_some_by_keyword_waits_for_all():
    a, b = concurrent.futures.Future(), concurrent.futures.Future()
    fut = core.until_some(a=a, b=b)
    b.set_result(2)
    a.set_result(1)
    assert fut.result(0) == [("b", 2), ("a", 1)]


def test_until_some_times_out(ioloop):
    with pytest.raises(TimeoutError_):
        core.until_some(concurrent.futures.Future(), timeout=SHORT, ioloop=ioloop).result(WAIT)


def test_future_timeout_manager_shares_one_timeout(ioloop):
    maybe_timeout = core.future_timeout_manager(SHORT, ioloop)
    done = concurrent.futures.Future()
    done.set_result(5)
    assert maybe_timeout(done).result(0) == 5
    assert 0 < maybe_timeout.remaining() <= SHORT
    with pytest.raises(TimeoutError_):
        maybe_timeout(concurrent.futures.Future()).result(WAIT)


def test_future_timeout_manager_without_timeout_passes_futures_through():
    maybe_timeout = core.future_timeout_manager()
    fut = concurrent.futures.Future()
    assert maybe_timeout(fut) is fut
    assert maybe_timeout.remaining() is None


def test_latency_timer_says_when_resolved_futures_ran_too_long():
    timer = core.LatencyTimer(0.0)
    done = concurrent.futures.Future()
    done.set_result(None)
    timer.check_future(concurrent.futures.Future())
    assert timer.time_to_yield() is False
    timer.check_future(done)
    time.sleep(0.001)  # the clock must move on for a zero latency budget to pass
    assert timer.time_to_yield() is True


def test_hashable_identity_is_stable_for_bound_methods():
    obj = ExampleDevice("127.0.0.1", 0)
    assert core.hashable_identity(obj.start) == core.hashable_identity(obj.start)
    assert core.hashable_identity("name") == "name"
    assert core.hashable_identity(obj) == id(obj)


def test_hashable_identity_matches_katcp():
    katcp = pytest.importorskip("katcp")
    obj = ExampleDevice("127.0.0.1", 0)
    for value in (obj.start, "text", obj):
        assert core.hashable_identity(value) == katcp.core.hashable_identity(value)


# --------------------------------------------------------------------------- kattypes, client

def test_async_make_reply_builds_the_reply_from_a_future():
    args = concurrent.futures.Future()
    reply = kattypes.async_make_reply("calc", (kattypes.Int(),), args, 5)
    args.set_result(("ok", 7))
    assert reply.result(0) == Message.reply("calc", "ok", "7")


def test_make_threadsafe_decorators_mark_and_return_the_method():
    def method(self):
        """A method."""

    assert our_client.make_threadsafe(method) is method and method.make_threadsafe
    assert our_client.make_threadsafe_blocking(method) is method
    assert method.make_threadsafe_blocking


# --------------------------------------------------------------------------- server

def test_return_future_wraps_results_and_errors():
    @server.return_future
    def ok(x):
        return x * 2

    @server.return_future
    def boom():
        raise RuntimeError("no")

    assert ok(4).result(0) == 8
    with pytest.raises(RuntimeError, match="no"):
        boom().result(0)


def test_with_relative_timeout_fails_a_slow_future(ioloop):
    with pytest.raises(TimeoutError_):
        server.with_relative_timeout(SHORT, concurrent.futures.Future(), ioloop).result(WAIT)


def test_threadsafe_client_connection_is_a_client_connection():
    assert issubclass(server.ThreadsafeClientConnection, server.ClientConnection)


def test_katcp_server_keeps_the_constants_and_says_why_it_cannot_be_built():
    assert server.KATCPServer.MAX_MSG_SIZE == core.MAX_MSG_SIZE
    with pytest.raises(NotImplementedError, match="does its own I/O"):
        server.KATCPServer(None, "127.0.0.1", 0)


def test_message_handler_thread_runs_the_handler_in_order():
    seen = []

    class Owner:
        name = "dev"

        def handle(self, conn, msg):
            seen.append((threading.current_thread().name, msg))
            return len(seen)

    thread = server.MessageHandlerThread(Owner().handle, None)
    thread.start(timeout=WAIT)
    try:
        assert thread.running()
        futures = [thread.on_message("conn", n) for n in range(3)]
        assert [f.result(WAIT) for f in futures] == [1, 2, 3]
        assert [msg for _, msg in seen] == [0, 1, 2]
        assert seen[0][0] == "dev.message_handler"
    finally:
        thread.stop(WAIT)
    assert not thread.isAlive()


def test_message_handler_thread_passes_on_handler_errors():
    def handler(conn, msg):
        raise ValueError("bad")

    thread = server.MessageHandlerThread(handler, None)
    thread.start(timeout=WAIT)
    try:
        with pytest.raises(ValueError, match="bad"):
            thread.on_message(None, None).result(WAIT)
    finally:
        thread.stop(WAIT)


# --------------------------------------------------------------------------- names exist where katcp has them

@pytest.mark.parametrize("module, name", [
    ("core", "AsyncEvent"), ("core", "AsyncState"), ("core", "until_any"),
    ("core", "until_some"), ("core", "until_later"), ("core", "hashable_identity"),
    ("core", "LatencyTimer"), ("core", "future_timeout_manager"), ("core", "Int"),
    ("server", "KATCPServer"), ("server", "MessageHandlerThread"),
    ("server", "ThreadsafeClientConnection"), ("server", "return_future"),
    ("server", "with_relative_timeout"), ("client", "make_threadsafe"),
    ("client", "make_threadsafe_blocking"), ("client", "AsyncEvent"),
    ("kattypes", "async_make_reply"), ("testutils", "TimewarpAsyncTestCase"),
    ("testutils", "AsyncDeviceTestServer"), ("testutils", "AsyncWaitingMock"),
    ("testutils", "suppress_queue_repeats"),
])
def test_katcp_093_name_is_importable(module, name):
    mod = __import__("katcp_compat." + module, fromlist=[name])
    assert getattr(mod, name) is not None
    assert getattr(katcp_compat, module) is mod


# --------------------------------------------------------------------------- tornado-only test machinery

TORNADO_SUITE = '''
import unittest
from katcp_compat import testutils


class TornadoTests(testutils.TimewarpAsyncTestCase):
    def test_uses_the_ioloop(self):
        raise AssertionError("must not run")


class ServerTests(unittest.TestCase):
    def setUp(self):
        self.server = testutils.AsyncDeviceTestServer("127.0.0.1", 0)

    def test_slow_command(self):
        raise AssertionError("must not run")


class MockTests(unittest.TestCase):
    def test_async_mock(self):
        testutils.AsyncWaitingMock()
        raise AssertionError("must not run")


class ThreadedTests(unittest.TestCase):
    def test_threaded_helper(self):
        self.assertTrue(testutils.wait_sensor)
'''


def test_tornado_only_helpers_load_and_their_tests_skip_with_the_reason(pytester):
    pytester.makepyfile(test_downstream=TORNADO_SUITE)
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*tornado ioloop; katcp_compat is threaded*"])
