"""The katcp 0.5 threaded API and the 0.9.3 no-op calls, as legacy scripts use them."""

import inspect
import logging
import queue
import threading

import pytest

import katcp_compat as katcp
from katcp_compat.client import BlockingClient
from katcp_compat.core import ExcepthookThread, Message
from katcp_compat.server import AsyncDeviceServer, DeviceLogger
from katcp_io_helpers import WAIT, ExampleDevice, RawClient, started


class LegacyDevice(ExampleDevice):
    """The example device with handlers that use the katcp 0.5 server API."""

    def setup_sensors(self):
        super().setup_sensors()
        self.late_errors = []
        self.late_calls_done = threading.Event()
        self.received = queue.Queue()

    def request_reply_twice(self, req, msg):
        """Reply, then try to reply and inform again."""
        req.reply("ok")
        for late_call in (lambda: req.reply("ok"), lambda: req.inform("late"),
                          lambda: req.reply_with_message(req.make_reply("ok")),
                          lambda: req.reply_again("ok"), lambda: req.inform_after_reply("x")):
            try:
                late_call()
            except RuntimeError as exc:
                self.late_errors.append(str(exc))
        self.late_calls_done.set()

    def inform_note(self, conn, msg):
        """Record an inform from a client."""
        self.received.put(("inform", conn, str(msg)))

    def reply_answer(self, conn, msg):
        """Record a reply from a client."""
        self.received.put(("reply", conn, str(msg)))

    def request_forget_sampling(self, req, msg):
        """Clear this client's strategies through the server method."""
        self.clear_strategies(req.client_connection)
        return req.make_reply("ok")


@pytest.fixture
def server():
    srv = started(LegacyDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)
    srv.join(WAIT)


@pytest.fixture
def client(server):
    c = BlockingClient(*server.bind_address)
    c.start(timeout=WAIT)
    assert c.wait_protocol(WAIT)
    yield c
    c.stop(WAIT)
    c.join(WAIT)


class InformRecorder(BlockingClient):
    """A client that records ``#hello`` informs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hellos = []
        self.got_two = threading.Event()

    def inform_hello(self, msg):
        """Record a hello inform."""
        self.hellos.append(str(msg))
        if len(self.hellos) == 2:
            self.got_two.set()


def _threads_named(prefix):
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_excepthook_thread_has_the_katcp05_is_alive_spelling():
    release = threading.Event()
    thread = ExcepthookThread(target=release.wait, args=(WAIT,))
    assert thread.isAlive() is False
    thread.start()
    try:
        assert thread.isAlive() is True
    finally:
        release.set()
        thread.join(WAIT)
    assert thread.isAlive() is False


def test_server_start_with_daemon_and_excepthook_arguments():
    srv = LegacyDevice("127.0.0.1", 0)
    assert srv.start(timeout=WAIT, daemon=False, excepthook=lambda *exc: None)
    try:
        threads = _threads_named("katcp-server")
        assert threads and all(not t.daemon for t in threads)
        assert srv.wait_running(WAIT) and srv.running()
    finally:
        srv.stop(WAIT)
        srv.join(WAIT)
    assert not srv.running() and not _threads_named("katcp-server")


def test_client_start_with_daemon_and_excepthook_then_stop_and_join(server):
    c = BlockingClient(*server.bind_address)
    c.start(timeout=WAIT, daemon=False, excepthook=lambda *exc: None)
    try:
        assert c.wait_running(WAIT) and c.running()
        threads = _threads_named("katcp-client")
        assert threads and all(not t.daemon for t in threads)
        assert c.bindaddr == server.bind_address
    finally:
        c.stop(WAIT)
        c.join(WAIT)
    assert not c.running() and not _threads_named("katcp-client")


def test_get_sockets_and_tcp_sends_reach_each_client(server):
    c = InformRecorder(*server.bind_address)
    c.start(timeout=WAIT)
    try:
        assert c.wait_protocol(WAIT)
        (sock,) = server.get_sockets()
        assert sock.getpeername() == c.sockname
        server.tcp_inform(sock, Message.inform("hello", "async"))
        server.tcp_reply_inform(sock, Message.inform("hello", "part"), Message.request("hello", mid=5))
        assert c.got_two.wait(WAIT)
        assert c.hellos == ["#hello async", "#hello[5] part"]
    finally:
        c.stop(WAIT)
        c.join(WAIT)


class ReplyRecorder(BlockingClient):
    """A client that records replies no request is waiting for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.replies = []
        self.got_one = threading.Event()

    def unhandled_reply(self, msg):
        self.replies.append(str(msg))
        self.got_one.set()


def test_tcp_reply_copies_the_request_id(server):
    c = ReplyRecorder(*server.bind_address)
    c.start(timeout=WAIT)
    try:
        assert c.wait_protocol(WAIT)
        (sock,) = server.get_sockets()
        server.tcp_reply(sock, Message.reply("spontaneous", "ok"), Message.request("spontaneous", mid=9))
        assert c.got_one.wait(WAIT)
        assert c.replies == ["!spontaneous[9] ok"]
    finally:
        c.stop(WAIT)
        c.join(WAIT)


class ReplyHandlerClient(katcp.DeviceClient):
    """The katcp 0.5 way: a DeviceClient subclass with ``reply_*`` methods."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.replies = []
        self.got_two = threading.Event()

    def reply_echo(self, msg):
        """Record an echo reply."""
        self.replies.append(str(msg))
        if len(self.replies) == 2:
            self.got_two.set()


def test_device_client_reply_handlers_receive_replies(server):
    c = ReplyHandlerClient(*server.bind_address)
    c.start(timeout=WAIT)
    try:
        assert c.wait_protocol(WAIT)
        c.send_request(Message.request("echo", "plain"))
        mid = c.request(Message.request("echo", "with id"))
        assert c.got_two.wait(WAIT)
        assert c.replies == ["!echo ok plain", "!echo[%s] ok with\\_id" % mid.decode()]
    finally:
        c.stop(WAIT)
        c.join(WAIT)


def test_second_reply_and_late_informs_raise_in_the_handler(server, client):
    reply, _ = client.blocking_request(Message.request("reply-twice"), use_mid=False)
    assert str(reply) == "!reply-twice ok"
    assert server.late_calls_done.wait(WAIT)
    assert server.late_errors == [
        "Reply to request <Message request reply-twice > already sent.",
        "Cannot send inform for request <Message request reply-twice > after sending reply.",
        "Reply to request <Message request reply-twice > already sent.",
        "Reply to request <Message request reply-twice > already sent.",
        "Cannot send inform for request <Message request reply-twice > after sending reply.",
    ]


def test_clear_strategies_sets_the_clients_strategies_to_none(client):
    reply, _ = client.blocking_request(Message.request("sensor-sampling", "an.int", "event"))
    assert reply.reply_ok()
    assert client.blocking_request(Message.request("forget-sampling"))[0].reply_ok()
    reply, _ = client.blocking_request(Message.request("sensor-sampling", "an.int"), use_mid=False)
    assert str(reply) == "!sensor-sampling ok an.int none"


def test_device_logger_level_names(server):
    logger = DeviceLogger(server)
    assert logger.level_name() == "warn"
    assert logger.level_from_name("info") == DeviceLogger.INFO
    assert logger.level_name(DeviceLogger.ERROR) == "error"
    logger.set_log_level_by_name("debug")
    assert logger.level_name() == "debug"
    with pytest.raises(ValueError):
        logger.level_from_name("nonsense")
    with pytest.raises(ValueError):
        logger.set_log_level_by_name("nonsense")


def test_log_to_python_maps_katcp_levels(caplog):
    python_logger = logging.getLogger("katcp_compat.tests.log_to_python")
    with caplog.at_level(logging.DEBUG, logger=python_logger.name):
        DeviceLogger.log_to_python(python_logger, Message.inform("log", "warn", "12.5", "dev.x", "hot"))
        DeviceLogger.log_to_python(python_logger, Message.inform("log", "error", "13.0", "dev.y", "off"))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "12.5 dev.x: hot"), (logging.ERROR, "13.0 dev.y: off")]


def test_tornado_only_calls_are_accepted_as_no_ops():
    srv = LegacyDevice("127.0.0.1", 0)
    srv.set_ioloop()
    srv.set_concurrency_options(thread_safe=False, handler_thread=False)
    srv.setDaemon(True)
    started(srv)
    c = BlockingClient(*srv.bind_address)
    try:
        srv.sync_with_ioloop(timeout=WAIT)
        c.set_ioloop()
        c.enable_thread_safety()
        assert c.threadsafe is True
        c.start(timeout=WAIT)
        assert c.wait_protocol(WAIT)
        reply, _ = c.blocking_request(Message.request("double", 21), use_mid=False)
        assert str(reply) == "!double ok 42"
    finally:
        c.stop(WAIT)
        c.join(WAIT)
        srv.stop(WAIT)
        srv.join(WAIT)


def test_async_device_server_is_a_device_server():
    assert issubclass(AsyncDeviceServer, katcp.DeviceServer)
    assert katcp.AsyncDeviceServer is AsyncDeviceServer


def test_sensor_type_hints_name_the_builtin_float():
    assert inspect.signature(katcp.Sensor.set).parameters["timestamp"].annotation is float


def test_names_katcp_modules_re_export_are_importable_from_the_same_modules():
    from katcp_compat import core, kattypes, sampling
    from katcp_compat import client as client_module
    from katcp_compat import server as server_module
    for name in ("DeviceMetaclass", "KatcpClientDisconnected", "KatcpVersionError",
                 "MessageParser", "ProtocolFlags"):
        assert getattr(client_module, name) is getattr(core, name)
    for name in ("request", "return_reply", "minimum_katcp_version", "has_katcp_protocol_flags"):
        assert getattr(server_module, name) is getattr(kattypes, name)
    assert server_module.SampleStrategy is sampling.SampleStrategy
    assert server_module.format_inform_v5 is sampling.format_inform_v5
    assert server_module.SEC_TO_MS_FAC == core.SEC_TO_MS_FAC == 1000
    assert {"watchdog", "sensor-sampling", "version-list"} <= server_module.BASE_REQUESTS
    assert server_module.DeviceServerMetaclass is core.DeviceServerMetaclass


def test_server_inform_and_reply_handlers_get_the_connection_and_message(server):
    raw = RawClient(server.bind_address)
    own_port = raw.sock.getsockname()[1]
    try:
        raw.skip_greeting()
        raw.send("#note hello")
        raw.send("!answer ok")
        kind1, conn1, text1 = server.received.get(timeout=WAIT)
        kind2, conn2, text2 = server.received.get(timeout=WAIT)
    finally:
        raw.close()
    assert (kind1, text1, kind2, text2) == ("inform", "#note hello", "reply", "!answer ok")
    assert conn1 is conn2 and conn1.address == "127.0.0.1:%d" % own_port


def test_ioloop_thread_id_is_the_io_thread(client):
    ran_on = []
    done = threading.Event()
    client.ioloop.add_callback(lambda: (ran_on.append(threading.get_ident()), done.set()))
    assert done.wait(WAIT)
    assert client.ioloop_thread_id == ran_on[0] != threading.get_ident()
