"""Clients against a katcp_compat DeviceServer over loopback."""

import concurrent.futures
import logging
import queue
import socket
import threading
import time

import pytest

from katcp_compat.client import (AsyncClient, BlockingClient, CallbackClient, DeviceClient,
                                 request_check)
from katcp_compat.core import KatcpClientDisconnected, KatcpVersionError, Message, ProtocolFlags
from katcp_io_helpers import WAIT, ExampleDevice, V4Device, started


@pytest.fixture
def server():
    srv = started(ExampleDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


def _client(srv, cls=BlockingClient, **kwargs):
    client = cls(*srv.bind_address, **kwargs)
    client.start(timeout=WAIT)
    assert client.wait_protocol(WAIT)
    return client


@pytest.fixture
def client(server):
    c = _client(server)
    yield c
    c.stop(WAIT)
    c.join(WAIT)


def test_protocol_is_detected_from_version_connect(client):
    assert str(client.protocol_flags) == "5.0-IM"
    client.blocking_request(Message.request("watchdog"))  # the greeting precedes any reply
    assert client.versions["katcp-device"] == ("my-dev-2.3", "my-build-4.5rc1")


def test_v4_protocol_is_detected():
    srv = started(V4Device("127.0.0.1", 0))
    c = _client(srv)
    try:
        assert (c.protocol_flags.major, c.protocol_flags.minor) == (4, 0)
        reply, _ = c.blocking_request(Message.request("watchdog"))
        assert str(reply) == "!watchdog ok"
    finally:
        c.stop(WAIT)
        srv.stop(WAIT)


def test_blocking_request_uses_message_ids_by_default(client):
    reply, informs = client.blocking_request(Message.request("watchdog"))
    assert str(reply).startswith("!watchdog[") and str(reply).endswith("] ok")
    assert informs == []


def test_blocking_request_without_ids(client):
    reply, _ = client.blocking_request(Message.request("watchdog"), use_mid=False)
    assert str(reply) == "!watchdog ok"


def test_blocking_request_collects_informs(client):
    reply, informs = client.blocking_request(Message.request("two-informs"))
    assert reply.reply_ok()
    assert [inf.arguments for inf in informs] == [[b"first"], [b"second"]]


def test_blocking_request_timeout_is_a_fail_reply(server, client):
    reply, informs = client.blocking_request(Message.request("later"), timeout=0.2)
    assert reply.mtype == Message.REPLY and not reply.reply_ok()
    assert reply.arguments[1].startswith(b"Request later timed out after 0.2")
    assert informs == []


def test_blocking_request_keepalive_extends_while_informs_arrive(server, client):
    result = queue.Queue()
    threading.Thread(target=lambda: result.put(client.blocking_request(
        Message.request("later"), timeout=0.5, keepalive=True))).start()
    while not server.pending_async:
        server.sync_with_ioloop(WAIT)
    req = server.pending_async[0]
    pace = threading.Event()  # never set: its wait() paces the informs
    for _ in range(4):  # 4 x 0.25 s spans twice the 0.5 s timeout
        pace.wait(0.25)
        req.inform("tick")
    req.reply("ok")
    reply, informs = result.get(timeout=WAIT)
    assert reply.reply_ok() and len(informs) == 4


def test_blocking_request_when_server_goes_away(server, client):
    result = queue.Queue()
    threading.Thread(target=lambda: result.put(client.blocking_request(
        Message.request("later"), timeout=WAIT))).start()
    while not server.pending_async:
        server.sync_with_ioloop(WAIT)
    server.stop(WAIT)
    reply, _ = result.get(timeout=WAIT)
    assert reply.arguments == [b"fail", b"Connection closed before reply was received"]


def test_blocking_request_when_not_connected_never_raises():
    c = BlockingClient("127.0.0.1", 1, auto_reconnect=False)
    c.start(timeout=WAIT)
    try:
        reply, informs = c.blocking_request(Message.request("watchdog"), timeout=1)
        assert reply.mtype == Message.REQUEST and not reply.reply_ok()
        assert reply.arguments[0] == b"fail"
        assert reply.arguments[1].startswith(b"Not connected to device 127.0.0.1:1")
    finally:
        c.stop(WAIT)


def test_callback_request_with_user_data(client):
    got = queue.Queue()
    client.callback_request(Message.request("two-informs"),
                            reply_cb=lambda msg, tag: got.put(("reply", str(msg), tag)),
                            inform_cb=lambda msg, tag: got.put(("inform", msg.arguments, tag)),
                            user_data=("t",))
    items = [got.get(timeout=WAIT) for _ in range(3)]
    assert [i[0] for i in items] == ["inform", "inform", "reply"]
    assert all(i[2] == "t" for i in items)


def test_callback_request_runs_callbacks_on_the_io_thread(client):
    threads = queue.Queue()
    client.callback_request(Message.request("watchdog"),
                            reply_cb=lambda msg: threads.put(threading.get_ident()))
    assert threads.get(timeout=WAIT) == client.ioloop_thread_id


def test_callback_request_timeout(client):
    got = queue.Queue()
    client.callback_request(Message.request("later"), reply_cb=got.put, timeout=0.1)
    reply = got.get(timeout=WAIT)
    assert reply.arguments[0] == b"fail" and b"timed out" in reply.arguments[1]


def test_future_request_resolves_with_reply_and_informs(client):
    fut = client.future_request(Message.request("two-informs"))
    assert isinstance(fut, concurrent.futures.Future)
    reply, informs = fut.result(timeout=WAIT)
    assert reply.reply_ok() and len(informs) == 2


def test_requests_from_many_threads_get_their_own_replies(client):
    def ask(i):
        reply, _ = client.blocking_request(Message.request("echo", str(i)))
        return reply.arguments

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, range(200)))
    assert results == [[b"ok", str(i).encode()] for i in range(200)]


def test_replies_matched_by_name_without_ids(client):
    def ask(i):
        reply, _ = client.blocking_request(Message.request("echo", str(i)), use_mid=False)
        return reply.arguments[1]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(ask, range(40))) == sorted(str(i).encode() for i in range(40))


def test_inform_handlers_of_a_subclass(server):
    got = queue.Queue()

    class Listener(CallbackClient):
        def inform_interface_changed(self, msg):
            """Record it."""
            got.put(msg)

    c = _client(server, Listener)
    try:
        server.mass_inform(Message.inform("interface-changed", "x"))
        assert got.get(timeout=WAIT).arguments == [b"x"]
    finally:
        c.stop(WAIT)


def test_unhandled_inform_fallback(server):
    got = queue.Queue()

    class Fallback(DeviceClient):
        def unhandled_inform(self, msg):
            got.put(msg.name)

    c = _client(server, Fallback)
    try:
        server.mass_inform(Message.inform("odd-one"))
        assert got.get(timeout=WAIT) == "odd-one"
    finally:
        c.stop(WAIT)


def test_notify_connected_and_auto_reconnect(server):
    events = queue.Queue()

    class Watcher(BlockingClient):
        def notify_connected(self, connected):
            events.put(connected)

    c = Watcher(*server.bind_address)
    c.auto_reconnect_delay = 0.05
    c.start(timeout=WAIT)
    try:
        assert events.get(timeout=WAIT) is True
        port = server.bind_address[1]
        server.stop(WAIT)
        assert events.get(timeout=WAIT) is False
        assert not c.is_connected()
        again = started(ExampleDevice("127.0.0.1", port))
        try:
            assert events.get(timeout=WAIT) is True
            assert c.wait_protocol(WAIT)
            assert c.blocking_request(Message.request("watchdog"))[0].reply_ok()
        finally:
            again.stop(WAIT)
    finally:
        c.stop(WAIT)


class _FailureCounter(logging.Handler):
    """Counts the client's failed connection attempts (logged at debug level)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0
        self.changed = threading.Condition()

    def emit(self, record):
        if record.getMessage().startswith("Failed to connect"):
            with self.changed:
                self.count += 1
                self.changed.notify_all()


def test_failed_attempts_are_retried_every_reconnect_delay_without_backoff():
    # As katcp 0.9.3: after many refused attempts the next one still comes
    # auto_reconnect_delay later, not after a delay grown by backoff.
    logger = logging.getLogger("test-katcp-reconnect")
    logger.setLevel(logging.DEBUG)
    failures = _FailureCounter()
    logger.addHandler(failures)
    port_holder = socket.socket()  # bound, not listening: connections are refused
    port_holder.bind(("127.0.0.1", 0))
    c = BlockingClient(*port_holder.getsockname(), logger=logger)
    c.auto_reconnect_delay = 0.02
    c.start()
    try:
        with failures.changed:
            assert failures.changed.wait_for(lambda: failures.count >= 10, WAIT)
        port_holder.listen()
        started_at = time.monotonic()
        assert c.wait_connected(WAIT)
        # Doubling from 0.02 s, the eleventh retry would wait some 20 s.
        assert time.monotonic() - started_at < 1.0
    finally:
        c.stop(WAIT)
        c.join(WAIT)
        port_holder.close()
        logger.removeHandler(failures)


def test_send_request_with_mid_needs_server_support():
    srv = started(V4Device("127.0.0.1", 0))
    c = _client(srv, DeviceClient)
    try:
        with pytest.raises(KatcpVersionError):
            c.send_request(Message.request("watchdog", mid=5))
    finally:
        c.stop(WAIT)
        srv.stop(WAIT)


def test_preset_protocol_flags_skip_detection(server):
    c = BlockingClient(*server.bind_address)
    c.preset_protocol_flags(ProtocolFlags(5, 0, "M"))
    c.start(timeout=WAIT)
    try:
        assert c.wait_connected(WAIT)
        reply, _ = c.blocking_request(Message.request("watchdog"))
        assert str(reply) == "!watchdog ok"
    finally:
        c.stop(WAIT)


def test_until_futures(server):
    c = BlockingClient(*server.bind_address)
    c.start()
    try:
        c.until_connected(WAIT).result(WAIT)
        c.until_protocol(WAIT).result(WAIT)
        assert c.is_connected()
    finally:
        c.stop(WAIT)
    assert c.until_stopped().result(WAIT) is True  # as katcp's AsyncEvent.until_set


def test_request_check_raises_on_failure(client):
    assert request_check(client, KeyError, "watchdog")[0].reply_ok()
    with pytest.raises(KeyError):
        request_check(client, KeyError, "raise-fail")


def test_stop_fails_waiting_callbacks(server):
    c = _client(server, CallbackClient)
    got = queue.Queue()
    c.callback_request(Message.request("later"), reply_cb=got.put)
    while not server.pending_async:
        server.sync_with_ioloop(WAIT)
    c.stop(WAIT)
    assert got.get(timeout=WAIT).arguments == [b"fail", b"Client stopped before reply was received"]


def test_start_twice_raises(client):
    with pytest.raises(RuntimeError):
        client.start()


def test_stop_before_start_raises():
    with pytest.raises(RuntimeError):
        BlockingClient("127.0.0.1", 1).stop()


def test_addresses_and_aliases(client, server):
    assert client.bind_address == client.bindaddr == server.bind_address
    assert client.bind_address_string == "127.0.0.1:%d" % server.bind_address[1]
    assert client.sockname[1] > 0
    assert AsyncClient is CallbackClient and client.threadsafe


def test_ioloop_add_callback_runs_on_the_io_thread(client):
    ran = queue.Queue()
    client.ioloop.add_callback(lambda: ran.put(threading.get_ident()))
    assert ran.get(timeout=WAIT) == client.ioloop_thread_id


def test_client_stop_from_an_inform_handler(server):
    stopped = threading.Event()

    class SelfStopping(CallbackClient):
        def inform_interface_changed(self, msg):
            """Stop from the I/O thread."""
            self.stop()
            stopped.set()

    c = _client(server, SelfStopping)
    server.mass_inform(Message.inform("interface-changed"))
    assert stopped.wait(WAIT)
    c.join(WAIT)
    assert not c.running()


def test_client_stopped_right_after_start_is_not_running(server):
    for _ in range(20):
        c = BlockingClient(*server.bind_address)
        c.start()
        c.stop(WAIT)
        c.join(WAIT)
        assert not c.running()


def test_client_can_be_restarted_after_stop(server):
    c = BlockingClient(*server.bind_address)
    for _ in range(2):
        c.start(timeout=WAIT)
        assert c.wait_protocol(WAIT)
        assert c.blocking_request(Message.request("watchdog"))[0].reply_ok()
        c.stop(WAIT)
        c.join(WAIT)
        assert not c.running()


def test_stop_returns_in_time_while_a_callback_blocks(server):
    release, entered = threading.Event(), threading.Event()

    class Stuck(CallbackClient):
        def inform_interface_changed(self, msg):
            """Block the I/O thread."""
            entered.set()
            release.wait(WAIT)

    c = _client(server, Stuck)
    try:
        server.mass_inform(Message.inform("interface-changed"))
        assert entered.wait(WAIT)
        started_at = time.monotonic()
        c.stop(0.3)
        assert time.monotonic() - started_at < 1.5
    finally:
        release.set()
        c.join(WAIT)


def test_line_over_2_mib_from_the_device_closes_the_connection():
    from protocompat.netutil import loopback_listener
    listener = loopback_listener()
    c = DeviceClient(*listener.getsockname(), auto_reconnect=False)
    conn = None
    try:
        c.start(timeout=WAIT)
        listener.settimeout(WAIT)
        conn, _ = listener.accept()
        conn.settimeout(WAIT)
        assert c.wait_connected(WAIT)
        try:
            conn.sendall(b"#big " + b"x" * (c.MAX_MSG_SIZE + 1))
        except ConnectionError:
            pass  # the client may close before the last bytes are sent
        assert c.wait_disconnected(WAIT)
        try:
            assert conn.recv(1) == b""
        except ConnectionResetError:
            pass  # closed with unread bytes: a reset instead of an EOF
    finally:
        c.stop(WAIT)
        c.join(WAIT)
        if conn is not None:
            conn.close()
        listener.close()


def test_device_that_does_not_read_gets_disconnected_not_unbounded_output():
    from protocompat.netutil import loopback_listener
    from katcp_compat.core import KatcpClientError
    listener = loopback_listener()
    c = DeviceClient(*listener.getsockname(), auto_reconnect=False)
    conn = None
    blob = "x" * (1024 * 1024)
    try:
        c.start(timeout=WAIT)
        listener.settimeout(WAIT)
        conn, _ = listener.accept()
        assert c.wait_connected(WAIT)
        for _ in range(64):  # far more than the kernel buffers plus MAX_WRITE_BUFFER_SIZE
            try:
                c.send_message(Message.inform("blob", blob))
            except KatcpClientError:
                break
            if not c.is_connected():
                break
        assert c.wait_disconnected(WAIT)
    finally:
        c.stop(WAIT)
        c.join(WAIT)
        if conn is not None:
            conn.close()
        listener.close()


def test_client_is_not_connected_as_soon_as_it_is_told_to_disconnect(server):
    client = _client(server, auto_reconnect=False)
    try:
        assert client.is_connected()
        client.disconnect()
        assert not client.is_connected()
        with pytest.raises(KatcpClientDisconnected):
            client.send_message(Message.request("watchdog"))
        assert client.wait_disconnected(WAIT)
    finally:
        client.stop(WAIT)
        client.join(WAIT)
