"""SelectorLoop.wait_for: a waiting thread runs the loop itself, one turn at a time."""
import socket
import threading
import time

import pytest
from netutil_helpers import WAIT, LineDecoder, connected_pair, started_loop

from protocompat.netutil import SelectorLoop, Stream


@pytest.fixture
def loop():
    lp = started_loop()
    yield lp
    assert lp.stop(WAIT)


class Exchange:
    """A Stream on the loop and its raw peer; lines received are collected with their thread."""

    def __init__(self, loop, on_line=None):
        self.ours, self.peer = connected_pair()
        self.lines = []
        self.threads = []
        self.arrived = threading.Condition()
        self.stream = Stream(loop, self.ours, LineDecoder(), on_line or self.on_line)
        self.stream.start()

    def on_line(self, line):
        with self.arrived:
            self.lines.append(line)
            self.threads.append(threading.current_thread())
            self.arrived.notify_all()

    def close(self):
        self.stream.close()
        self.peer.close()


def test_wait_for_returns_true_once_a_message_arrives_and_handles_it_on_the_waiting_thread(loop):
    ex = Exchange(loop)
    try:
        threading.Timer(0.05, ex.peer.sendall, args=(b"answer\n",)).start()
        assert loop.wait_for(lambda: ex.lines, WAIT)
        assert ex.lines == [b"answer"]
        assert ex.threads == [threading.current_thread()]
    finally:
        ex.close()


def test_wait_for_returns_false_after_its_timeout(loop):
    start = time.monotonic()
    assert loop.wait_for(lambda: False, 0.1) is False
    assert 0.09 <= time.monotonic() - start < 2.0


def test_wait_for_with_a_true_predicate_returns_at_once(loop):
    assert loop.wait_for(lambda: True, 0) is True


def test_wait_for_from_a_loop_callback_is_an_error(loop):
    outcome = []
    done = threading.Event()

    def callback():
        try:
            loop.wait_for(lambda: False, 1)
        except RuntimeError as exc:
            outcome.append(exc)
        done.set()

    loop.call_soon(callback)
    assert done.wait(WAIT)
    assert outcome and "would block" in str(outcome[0])


def test_the_loop_thread_serves_again_after_a_wait_ends(loop):
    ex = Exchange(loop)
    try:
        ex.peer.sendall(b"first\n")
        assert loop.wait_for(lambda: ex.lines, WAIT)
        ex.peer.sendall(b"second\n")
        with ex.arrived:
            assert ex.arrived.wait_for(lambda: len(ex.lines) == 2, WAIT)
        assert ex.lines == [b"first", b"second"]
        assert ex.threads[1] is loop.thread
    finally:
        ex.close()


def test_call_soon_and_timers_run_while_a_caller_drives_the_loop(loop):
    caller = threading.current_thread()
    fired = []
    timer_ran = threading.Event()

    def record(name):
        fired.append((name, threading.current_thread() is caller))
        timer_ran.set()

    def send_soon():  # from another thread, while the caller waits
        if timer_ran.wait(WAIT):
            loop.call_soon(record, "soon")

    loop.call_later(0.02, record, "timer")
    sender = threading.Thread(target=send_soon)
    sender.start()
    try:
        assert loop.wait_for(lambda: len(fired) == 2, WAIT)
    finally:
        timer_ran.set()
        sender.join(WAIT)
    assert fired == [("timer", True), ("soon", True)]  # both ran on the waiting thread


def test_callbacks_never_run_concurrently_with_many_waiting_threads(loop):
    busy = threading.Lock()
    overlaps = []
    exchanges = []

    def guarded(index):
        def on_line(line):
            if not busy.acquire(blocking=False):
                overlaps.append(line)
                return
            try:
                time.sleep(0.0002)  # widen the window a concurrent callback would hit
                exchanges[index].lines.append(line)
            finally:
                busy.release()
        return on_line

    exchanges.extend(Exchange(loop, guarded(i)) for i in range(4))
    errors = []

    def talk(ex, count=100):
        try:
            for i in range(count):
                ex.peer.sendall(b"%d\n" % i)
                if not loop.wait_for(lambda: len(ex.lines) > i, WAIT):
                    errors.append("timeout")
                    return
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(ex,)) for ex in exchanges]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert errors == [] and overlaps == []
        assert all(ex.lines == [b"%d" % i for i in range(100)] for ex in exchanges)
    finally:
        for ex in exchanges:
            ex.close()


def test_stop_ends_a_wait_at_once(loop):
    outcome = []
    waiting = threading.Thread(target=lambda: outcome.append(loop.wait_for(lambda: False, 30)))
    waiting.start()
    start = time.monotonic()
    assert loop.stop(WAIT)
    waiting.join(WAIT)
    assert outcome == [False]
    assert time.monotonic() - start < 2.0


def test_stop_from_a_callback_run_by_a_waiting_thread_ends_the_loop():
    lp = started_loop()
    stopped = []

    def stop_from_callback():
        stopped.append(lp.stop(WAIT))

    lp.call_later(0.02, stop_from_callback)
    assert lp.wait_for(lambda: stopped, WAIT) or stopped
    lp.thread.join(WAIT)
    assert not lp.thread.is_alive()
    assert stopped == [True]
    assert lp.finished


def test_wait_for_on_an_ended_loop_only_reads_the_predicate():
    lp = started_loop()
    assert lp.stop(WAIT)
    assert lp.wait_for(lambda: True, 1) is True
    assert lp.wait_for(lambda: False, 1) is False


def test_wait_for_runs_a_loop_that_was_never_started():
    lp = SelectorLoop()
    ours, peer = connected_pair()
    lines = []
    stream = Stream(lp, ours, LineDecoder(), lines.append)
    stream.start()
    peer.sendall(b"x\n")
    try:
        assert lp.wait_for(lambda: lines, WAIT)
        assert lines == [b"x"]
    finally:
        stream.close()
        peer.close()
        assert lp.stop(WAIT)
