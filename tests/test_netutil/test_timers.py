"""The loop's timers and the shared timer thread."""
import threading
import time

from netutil_helpers import WAIT, started_loop

from protocompat.netutil import SelectorLoop, call_later_shared


def _timer_threads():
    return [t for t in threading.enumerate() if t.name == "protocompat-timers" and t.is_alive()]


def _wait_no_timer_thread(timeout=WAIT):
    deadline = time.monotonic() + timeout
    while _timer_threads():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        _timer_threads()[0].join(min(remaining, 0.05))
    return True


def test_equal_deadlines_run_in_the_order_scheduled():
    loop = SelectorLoop()
    order = []
    when = loop.time() + 0.01
    for i in range(20):
        loop.call_at(when, order.append, i)
    done = threading.Event()
    loop.call_at(when + 0.001, done.set)
    loop.start()
    assert done.wait(WAIT)
    assert order == list(range(20))
    assert loop.stop(WAIT)


def test_a_timer_added_earlier_than_the_current_wait_runs_on_time():
    loop = started_loop()
    loop.call_later(60, lambda: None)  # the loop now waits up to a minute
    fired = threading.Event()
    start = time.monotonic()
    loop.call_later(0.01, fired.set)
    assert fired.wait(WAIT)
    assert time.monotonic() - start < 1.0
    assert loop.stop(WAIT)


def test_call_soon_after_the_loop_ended_runs_in_the_calling_thread():
    loop = started_loop()
    assert loop.stop(WAIT)
    ran = []
    loop.call_soon(lambda: ran.append(threading.current_thread()))
    assert ran == [threading.current_thread()]
    assert loop.finished


def test_timers_after_the_loop_ended_are_returned_cancelled():
    loop = started_loop()
    assert loop.stop(WAIT)
    handle = loop.call_later(0, lambda: None)
    assert handle.cancelled


def test_cancel_releases_the_callback():
    loop = SelectorLoop()
    handle = loop.call_later(10, lambda: None)
    handle.cancel()
    assert handle.callback is None
    assert loop.stop(WAIT)


def test_shared_timer_runs_on_its_thread_which_ends_when_no_timer_is_left():
    fired = threading.Event()
    where = []

    def fire():
        where.append(threading.current_thread().name)
        fired.set()

    call_later_shared(0.01, fire)
    assert fired.wait(WAIT)
    assert where == ["protocompat-timers"]
    assert _wait_no_timer_thread()


def test_shared_timers_start_again_after_going_idle():
    for _ in range(3):
        fired = threading.Event()
        call_later_shared(0, fired.set)
        assert fired.wait(WAIT)
        assert _wait_no_timer_thread()


def test_cancelled_shared_timer_never_runs_and_lets_the_thread_end():
    ran = []
    handle = call_later_shared(30, ran.append, 1)
    assert _timer_threads()
    handle.cancel()
    # The thread notices only when it wakes; a second, short timer wakes it.
    woke = threading.Event()
    call_later_shared(0, woke.set)
    assert woke.wait(WAIT)
    assert _wait_no_timer_thread()
    assert ran == []


def test_many_shared_timers_from_many_threads_all_run():
    count = 200
    lock = threading.Lock()
    done = threading.Event()
    ran = []

    def fire(i):
        with lock:
            ran.append(i)
            if len(ran) == count:
                done.set()

    def schedule(base):
        for i in range(base, base + 50):
            call_later_shared(0.001 * (i % 7), fire, i)

    threads = [threading.Thread(target=schedule, args=(b,)) for b in range(0, count, 50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert done.wait(WAIT)
    assert sorted(ran) == list(range(count))
    assert _wait_no_timer_thread()
