"""protocompat.netutil: threads with hooks, wake-up sockets, the selector loop, socket options."""
import ipaddress
import logging
import platform
import selectors
import socket
import statistics
import sys
import threading
import time

import pytest

from protocompat import _sockets, netutil
from protocompat.netutil import (ExcepthookThread, SelectorLoop, WakeupSocket, get_ip_address,
                         loopback_listener, set_keepalive)

WAIT = 5.0  # upper bound of any wait in these tests


@pytest.fixture
def loop():
    lp = SelectorLoop(name="test-loop")
    lp.start()
    yield lp
    assert lp.stop(timeout=WAIT)


@pytest.fixture
def socket_pair():
    listener = loopback_listener()
    a = socket.create_connection(listener.getsockname(), timeout=WAIT)
    b, _ = listener.accept()
    listener.close()
    yield a, b
    a.close()
    b.close()


# -- ExcepthookThread --------------------------------------------------------

def test_exception_in_thread_reaches_its_hook():
    caught = []
    done = threading.Event()

    def hook(etype, value, tb):
        caught.append((etype, value, tb))
        done.set()

    def boom():
        raise ValueError("bad value 42")

    t = ExcepthookThread(hook, target=boom)
    t.start()
    assert done.wait(WAIT)
    t.join(WAIT)
    etype, value, tb = caught[0]
    assert etype is ValueError and str(value) == "bad value 42" and tb is not None


def test_hook_is_inherited_from_creating_thread():
    caught = []
    done = threading.Event()

    def hook(etype, value, tb):
        caught.append(etype)
        done.set()

    def child_raises():
        raise KeyError("child")

    def parent():
        child = ExcepthookThread(target=child_raises)
        child.start()
        child.join(WAIT)

    parent_thread = ExcepthookThread(excepthook=hook, target=parent)
    parent_thread.start()
    assert done.wait(WAIT)
    parent_thread.join(WAIT)
    assert caught == [KeyError]


def test_hook_applies_to_subclass_overriding_run():
    caught = []

    class Worker(ExcepthookThread):
        def run(self):
            raise RuntimeError("in subclass")

    w = Worker(lambda *exc: caught.append(exc[0]))
    w.start()
    w.join(WAIT)
    assert caught == [RuntimeError]


def test_without_hook_exception_goes_to_threading_excepthook(monkeypatch):
    seen = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_type))
    t = ExcepthookThread(target=lambda: 1 / 0)
    t.start()
    t.join(WAIT)
    assert seen == [ZeroDivisionError]


def test_positional_excepthook_then_thread_args():
    result = []
    t = ExcepthookThread(None, None, result.append, "worker", ("x",))
    t.start()
    t.join(WAIT)
    assert result == ["x"] and t.name == "worker"


def test_stop_returns_within_timeout_when_thread_blocked_in_select():
    class Blocked(ExcepthookThread):
        def __init__(self):
            super().__init__()
            self.waker = WakeupSocket()
            self.in_select = threading.Event()

        def _wake(self):
            self.waker.wake()

        def run(self):
            sel = selectors.DefaultSelector()
            sel.register(self.waker.recv_socket, selectors.EVENT_READ)
            try:
                while not self.stopping:
                    self.in_select.set()
                    sel.select()  # no timeout: only a wake-up ends it
            finally:
                sel.close()

    t = Blocked()
    t.start()
    assert t.in_select.wait(WAIT)
    start = time.monotonic()
    assert t.stop(timeout=1.0)
    assert time.monotonic() - start < 1.0
    t.waker.close()


def test_stop_of_never_started_thread_is_true():
    assert ExcepthookThread(target=lambda: None).stop(0.1)


def test_stop_reports_false_when_thread_ignores_it():
    release = threading.Event()
    t = ExcepthookThread(target=release.wait, args=(WAIT,))
    t.start()
    start = time.monotonic()
    assert t.stop(timeout=0.2) is False
    assert time.monotonic() - start < WAIT
    release.set()
    t.join(WAIT)


# -- WakeupSocket --------------------------------------------------------------

def test_wakeup_socket_is_bound_to_loopback_only():
    with WakeupSocket() as w:
        assert w.recv_socket.getsockname()[0] == "127.0.0.1"
        assert w.recv_socket.getpeername()[0] == "127.0.0.1"


def test_wake_makes_fileno_readable_and_drain_clears_it():
    with WakeupSocket() as w, selectors.DefaultSelector() as sel:
        sel.register(w, selectors.EVENT_READ)
        assert sel.select(0) == []
        w.wake()
        assert len(sel.select(WAIT)) == 1
        w.drain()
        assert sel.select(0) == []


def test_wake_never_blocks_when_nobody_drains():
    with WakeupSocket() as w:
        done = threading.Event()

        def flood():
            for _ in range(100_000):  # far more than a socket buffer holds
                w.wake()
            done.set()

        t = threading.Thread(target=flood)
        t.start()
        t.join(WAIT * 4)
        assert done.is_set()


def test_wake_after_close_is_ignored():
    w = WakeupSocket()
    w.close()
    w.close()
    w.wake()
    assert w.closed


# -- SelectorLoop ------------------------------------------------------------

def test_write_from_another_thread_wakes_the_loop_within_50ms(loop, socket_pair):
    reader, writer = socket_pair
    reader.setblocking(False)
    arrived = threading.Event()
    latencies = []
    sent_at = []

    def on_read(sock, mask):
        sock.recv(64)
        latencies.append(time.perf_counter() - sent_at[-1])
        arrived.set()

    loop.call_soon(loop.register, reader, selectors.EVENT_READ, on_read)
    registered = threading.Event()
    loop.call_soon(registered.set)
    assert registered.wait(WAIT)
    for _ in range(9):
        arrived.clear()
        sent_at.append(time.perf_counter())
        writer.send(b"x")
        assert arrived.wait(WAIT)
    loop.call_soon(loop.unregister, reader)
    assert statistics.median(latencies) < 0.050


def test_call_soon_from_another_thread_wakes_the_loop_within_50ms(loop):
    latencies = []
    for _ in range(9):
        ran = threading.Event()
        start = time.perf_counter()
        loop.call_soon(lambda: (latencies.append(time.perf_counter() - start), ran.set()))
        assert ran.wait(WAIT)
    assert statistics.median(latencies) < 0.050


def test_stop_returns_within_timeout_while_loop_waits_in_select():
    lp = SelectorLoop()
    lp.start()
    idle = threading.Event()
    lp.call_soon(idle.set)
    assert idle.wait(WAIT)  # the loop is now in select() with no timeout
    start = time.monotonic()
    assert lp.stop(timeout=1.0)
    assert time.monotonic() - start < 1.0
    assert not lp.thread.is_alive()


def test_call_later_runs_in_deadline_order(loop):
    order = []
    done = threading.Event()
    loop.call_later(0.06, lambda: (order.append(3), done.set()))
    loop.call_later(0.02, order.append, 1)
    loop.call_later(0.04, order.append, 2)
    assert done.wait(WAIT)
    assert order == [1, 2, 3]


def test_cancelled_timer_does_not_run(loop):
    ran = []
    done = threading.Event()
    handle = loop.call_later(0.01, ran.append, "cancelled")
    handle.cancel()
    loop.call_later(0.03, done.set)
    assert done.wait(WAIT)
    assert ran == []


def test_callbacks_run_on_the_loop_thread(loop):
    seen = []
    done = threading.Event()
    loop.call_soon(lambda: (seen.append(loop.in_loop_thread()), done.set()))
    assert done.wait(WAIT)
    assert seen == [True] and not loop.in_loop_thread()


def _ready_masks(loop, sock, events):
    """The masks of the first callback for ``sock`` watched for ``events``."""
    masks = []
    done = threading.Event()

    def on_ready(fileobj, mask):
        masks.append(mask)
        loop.unregister(fileobj)
        done.set()
    loop.call_soon(loop.register, sock, events, on_ready)
    assert done.wait(WAIT)
    return masks


def test_a_socket_only_writable_is_reported_writable_only(loop, socket_pair):
    a, _b = socket_pair
    assert _ready_masks(loop, a, selectors.EVENT_READ | selectors.EVENT_WRITE) == [
        selectors.EVENT_WRITE]


def test_a_socket_readable_and_writable_is_reported_both(loop, socket_pair):
    a, b = socket_pair
    b.sendall(b"x")
    assert _wait_readable(a)
    assert _ready_masks(loop, a, selectors.EVENT_READ | selectors.EVENT_WRITE) == [
        selectors.EVENT_READ | selectors.EVENT_WRITE]


def test_a_readable_socket_watched_for_reading_is_reported_readable(loop, socket_pair):
    a, b = socket_pair
    b.sendall(b"x")
    assert _ready_masks(loop, a, selectors.EVENT_READ) == [selectors.EVENT_READ]


def _wait_readable(sock):
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(WAIT))


def test_raising_callback_is_logged_and_loop_goes_on(loop, caplog):
    done = threading.Event()
    with caplog.at_level(logging.ERROR, logger="protocompat.netutil"):
        loop.call_soon(lambda: 1 / 0)
        loop.call_soon(done.set)
        assert done.wait(WAIT)
    assert loop.is_running()
    assert any("ZeroDivisionError" in r.exc_text for r in caplog.records if r.exc_text)


def test_work_queued_before_stop_still_runs():
    lp = SelectorLoop()
    lp.start()
    ran = threading.Event()
    lp.call_soon(ran.set)
    assert lp.stop(timeout=WAIT)
    assert ran.is_set()


def test_stop_from_a_loop_callback_ends_the_loop():
    lp = SelectorLoop()
    lp.start()
    lp.call_soon(lp.stop)
    lp.thread.join(WAIT)
    assert not lp.thread.is_alive()
    assert lp.stop(timeout=WAIT)


def test_loop_run_in_calling_thread():
    lp = SelectorLoop()
    order = []
    lp.call_soon(order.append, "first")
    lp.call_later(0.01, lambda: (order.append("second"), lp.stop()))
    lp.run()
    assert order == ["first", "second"]


def test_start_twice_is_an_error(loop):
    with pytest.raises(RuntimeError):
        loop.start()


def test_loop_accepts_and_echoes_on_loopback(loop):
    listener = loopback_listener()
    listener.setblocking(False)
    conns = []

    def on_data(conn, mask):
        data = conn.recv(4096)
        if data:
            conn.sendall(data.upper())
        else:
            loop.unregister(conn)
            conn.close()

    def on_accept(sock, mask):
        conn, _ = sock.accept()
        conns.append(conn)
        loop.register(conn, selectors.EVENT_READ, on_data)

    loop.call_soon(loop.register, listener, selectors.EVENT_READ, on_accept)
    with socket.create_connection(listener.getsockname(), timeout=WAIT) as client:
        client.sendall(b"hello")
        assert client.recv(5) == b"HELLO"
    closed = threading.Event()

    def close_listener():
        loop.unregister(listener)
        listener.close()
        for c in conns:
            if c.fileno() != -1:
                loop.unregister(c)
                c.close()
        closed.set()

    loop.call_soon(close_listener)
    assert closed.wait(WAIT)


# -- addresses and socket options ----------------------------------------------

def test_get_ip_address_is_an_ip_or_localhost():
    address = get_ip_address()
    if address != "localhost":
        ipaddress.IPv4Address(address)


def test_get_ip_address_falls_back_to_localhost_without_route(monkeypatch):
    # Connecting a UDP socket to the broadcast address is refused (EACCES).
    monkeypatch.setattr(_sockets, "_ROUTE_PROBE_ADDR", ("255.255.255.255", 9))
    assert get_ip_address() == "localhost"


def test_get_ip_address_makes_no_dns_lookup(monkeypatch):
    def no_dns(*args, **kwargs):
        raise AssertionError("DNS look-up attempted")

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "getfqdn"):
        monkeypatch.setattr(socket, name, no_dns)
    get_ip_address()


@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux TCP options")
def test_set_keepalive_sets_linux_options():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        set_keepalive(s, after_idle_sec=7, interval_sec=4, max_fails=9)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 4
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 9


@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux TCP options")
def test_set_keepalive_defaults_on_connected_socket(socket_pair):
    a, _ = socket_pair
    set_keepalive(a)
    assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 1
    assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
    assert a.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 5


@pytest.mark.parametrize("system", ["", "SunOS", "FreeBSD"])
def test_set_keepalive_unknown_platform_raises(monkeypatch, system):
    monkeypatch.setattr(platform, "system", lambda: system)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(NotImplementedError):
            set_keepalive(s)


def test_loopback_listener_uses_os_chosen_port_on_loopback():
    with loopback_listener() as a, loopback_listener() as b:
        assert a.getsockname()[0] == "127.0.0.1"
        assert a.getsockname()[1] != 0 and a.getsockname()[1] != b.getsockname()[1]
