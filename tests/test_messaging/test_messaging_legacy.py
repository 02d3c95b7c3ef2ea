"""clever-show's own server and drone loops, re-enacted against this module.

The server is ``server_core``'s pattern: a ``Client(messaging.ConnectionManager)``
subclass with a class-level ``clients`` dict, ``close(inner=False)``, a
``_send`` guarded by ``connected``, ``_send_queue`` reset in ``connect`` and
``get_response("id")``/``"clover_dir"`` on connect, driven by a "Client
processor" thread that accepts, reuses the ``Client`` of a known IP
(``close(True)``) and calls ``close(True)`` when ``process_events`` raises.
The drone is ``client_core``'s pattern: ``_reconnect()`` (blocking connect,
after three failures the UDP ``server_ip`` datagram parsed with
``MessageManager``) and ``_process_connections()`` (``_close()`` on an error,
return when only the notifier is left), reusing one ``ConnectionManager``.
"""
import collections
import logging
import queue
import selectors
import socket
import threading
import time

import pytest

from messaging_helpers import WAIT, DirectLink, LogWatcher

from lib import messaging

POLL = 0.2  # the loops' select timeout (clever-show uses 1 s)
ATTEMPTS = 3  # failed connects before the drone listens for the server's datagram
CLOVER_DIR = "/home/pi/catkin_ws/src/clover/clover"


class Client(messaging.ConnectionManager):
    """The server's view of one drone, as in clever-show's server_core."""

    clients = {}
    on_connect = None
    on_first_connect = None
    on_disconnect = None

    def __init__(self, ip):
        super(Client, self).__init__()
        self.copter_id = None
        self.clover_dir = None
        self.connected = False
        self.clients[ip] = self
        self.answers = queue.Queue()  # (name, value) per response; for the tests only

    def connect(self, client_selector, client_socket, client_addr):
        if not self.resume_queue:
            self._send_queue = collections.deque()
        super(Client, self).connect(client_selector, client_socket, client_addr)
        self.connected = True
        self.get_response("id", self._got_id)
        if self.on_connect:
            self.on_connect(self)

    def _got_id(self, _client, value):
        old_id = self.copter_id
        self.copter_id = value
        self.answers.put(("id", value))
        if old_id is None:
            self.get_response("clover_dir", self._got_clover_dir)
        if old_id is None and self.on_first_connect:
            self.on_first_connect(self)

    def _got_clover_dir(self, _client, value):
        self.clover_dir = value
        self.answers.put(("clover_dir", value))

    def close(self, inner=False):
        self.connected = False
        if self.on_disconnect:
            self.on_disconnect(self)
        if inner:
            super(Client, self)._close()
        else:
            super(Client, self).close()

    def _send(self, data):  # clever-show wraps it in @requires_connect
        if not self.connected:
            messaging.logger.warning("Function requires client to be connected!")
            return
        super(Client, self)._send(data)
        logging.debug("Queued data to send (first 256 bytes): {}".format(data[:256]))

    @staticmethod
    def broadcast(message, force_all=False):
        for client in Client.clients.values():
            if client.connected or force_all:
                client._send(message)

    @classmethod
    def broadcast_message(cls, command, args=(), kwargs=None, force_all=False):
        cls.broadcast(messaging.MessageManager.create_action_message(command, args, kwargs), force_all)


class Server:
    """The "Client processor" thread of clever-show's server."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        messaging.set_keepalive(self.listener)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.errors = queue.Queue()
        self.accepted = queue.Queue()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._client_processor, name="Client processor")

    def server_ip_datagram(self):
        return messaging.MessageManager.create_action_message(
            "server_ip", kwargs={"host": "127.0.0.1", "port": str(self.port), "id": "0001",
                                 "start_time": "1600000000.0"})

    def _client_processor(self):
        messaging.NotifierSock().init(self.sel)
        self.sel.register(self.listener, selectors.EVENT_READ, data=None)
        while not self._stop.is_set():
            for key, mask in self.sel.select(timeout=POLL):
                if key.data is None:
                    self._connect_client(key.fileobj)
                    continue
                client = key.data
                try:
                    client.process_events(mask)
                except Exception as error:
                    self.errors.put(error)
                    client.close(True)

    def _connect_client(self, listener):
        conn, addr = listener.accept()
        conn.setblocking(False)
        messaging.set_keepalive(conn)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = Client.clients.get(addr[0])
        if client is not None:
            client.close(True)
        else:
            client = Client(addr[0])
            client.buffer_size = 1024
        self.sel.register(conn, selectors.EVENT_READ, data=client)
        client.connect(self.sel, conn, addr)
        self.accepted.put(client)

    def stop(self):
        self._stop.set()
        messaging.NotifierSock().notify()
        self.thread.join(WAIT)
        for client in list(Client.clients.values()):
            client._close()
        self.listener.close()
        self.sel.close()
        return not self.thread.is_alive()


class Drone:
    """clever-show's drone client loop: _reconnect() and _process_connections()."""

    def __init__(self, port):
        self.selector = selectors.DefaultSelector()
        self.server_connection = messaging.ConnectionManager()
        self.server_host, self.server_port = "127.0.0.1", port
        self.connected = False
        self.connections = queue.Queue()  # one item per successful connect
        self.failures = queue.Queue()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(POLL)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.start, name="drone")

    def start(self):
        messaging.NotifierSock().init(self.selector)
        while not self._stop.is_set():
            self._reconnect()
            self._process_connections()

    def _reconnect(self, timeout=2):
        while not self.connected and not self._stop.is_set():
            for _ in range(ATTEMPTS):
                try:
                    sock = socket.create_connection((self.server_host, self.server_port), timeout)
                except OSError as error:
                    self.failures.put(error)
                    continue
                messaging.set_keepalive(sock)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, data=self.server_connection)
                self.server_connection.connect(self.selector, sock, sock.getpeername())
                self.connected = True
                self.connections.put(self.server_connection)
                return
            self._broadcast_bind()

    def _broadcast_bind(self):
        try:
            data, _ = self.udp.recvfrom(1024)
        except socket.timeout:
            return
        message = messaging.MessageManager()
        message.income_raw = data
        message.process_message()
        if message.content and message.jsonheader["action"] == "server_ip":
            kwargs = message.content["kwargs"]
            self.server_host, self.server_port = kwargs["host"], int(kwargs["port"])

    def _process_connections(self):
        while not self._stop.is_set():
            for key, mask in self.selector.select(timeout=POLL):
                try:
                    key.data.process_events(mask)
                except Exception:
                    self.server_connection._close()
                    self.connected = False
            mapping_fds = self.selector.get_map().keys()
            notifier_fd = messaging.NotifierSock().get_sock().fileno()
            if (len(mapping_fds) == 1 and notifier_fd in mapping_fds) or not mapping_fds:
                return  # "No active connections left!"

    def stop(self):
        self._stop.set()
        messaging.NotifierSock().notify()
        self.thread.join(WAIT)
        self.server_connection._close()
        self.udp.close()
        self.selector.close()
        return not self.thread.is_alive()


@pytest.fixture
def drone_callbacks():
    """The drone's module-level callbacks; the registries are restored afterwards."""
    received = queue.Queue()
    saved = (dict(messaging.ConnectionManager.messages_callbacks),
             dict(messaging.ConnectionManager.requests_callbacks))

    @messaging.request_callback("id")
    def _response_id(*args, **kwargs):
        return kwargs.get("new_id", "copter01")

    @messaging.request_callback("clover_dir")
    def _response_clover_dir(*args, **kwargs):
        return CLOVER_DIR

    @messaging.request_callback("time")
    def _response_time(*args, **kwargs):
        return 1234.5

    @messaging.message_callback("led_test")
    def _led_test(*args, **kwargs):
        received.put(("led_test", list(args[1:]), kwargs))

    @messaging.message_callback("takeoff")
    def _takeoff(*args, **kwargs):
        received.put(("takeoff", list(args[1:]), kwargs))
    yield received
    for registry, old in zip((messaging.ConnectionManager.messages_callbacks,
                              messaging.ConnectionManager.requests_callbacks), saved):
        registry.clear()
        registry.update(old)


@pytest.fixture
def server():
    Client.clients = {}
    started = Server()
    started.thread.start()
    yield started
    try:
        assert started.stop()
    finally:
        Client.clients = {}
        messaging.NotifierSock().close()


@pytest.fixture
def drone(server, drone_callbacks):
    """A drone connected to ``server``; yields (drone, the server's Client for it)."""
    started = Drone(server.port)
    started.thread.start()
    yield started
    assert started.stop()


def connected_client(server, drone):
    assert drone.connections.get(timeout=WAIT) is drone.server_connection
    client = server.accepted.get(timeout=WAIT)
    assert client.answers.get(timeout=WAIT) == ("id", "copter01")
    assert client.answers.get(timeout=WAIT) == ("clover_dir", CLOVER_DIR)
    return client


def test_server_asks_id_then_clover_dir_when_a_drone_connects(server, drone):
    client = connected_client(server, drone)
    assert Client.clients == {"127.0.0.1": client}
    assert client.copter_id == "copter01"
    assert client.clover_dir == CLOVER_DIR


def test_gui_thread_actions_and_broadcast_reach_the_drone(server, drone, drone_callbacks):
    connected_client(server, drone).send_message("takeoff", kwargs={"z": 1.5})
    assert drone_callbacks.get(timeout=WAIT) == ("takeoff", [], {"z": 1.5})
    Client.broadcast_message("led_test", args=(1, 2), kwargs={"color": "red"})
    assert drone_callbacks.get(timeout=WAIT) == ("led_test", [1, 2], {"color": "red"})


def test_gui_thread_request_calls_back_with_callback_arguments(server, drone):
    answers = queue.Queue()
    connected_client(server, drone).get_response(
        "time", lambda c, value, *a, **k: answers.put((c, value, a, k)),
        callback_args=("x",), callback_kwargs={"y": 1})
    connection, value, args, kwargs = answers.get(timeout=WAIT)
    assert (value, args, kwargs) == (1234.5, ("x",), {"y": 1})
    assert isinstance(connection, Client)


def test_gui_thread_pushes_and_pulls_files(server, drone, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "client.ini").write_text("[PRIVATE]\nid = copter01\n")
    (tmp_path / "animation.csv").write_bytes(bytes(range(256)) * 64)
    client = connected_client(server, drone)
    client.send_file(str(tmp_path / "animation.csv"), str(tmp_path / "pushed.csv"))
    pulled = queue.Queue()
    client.get_file("config/client.ini", str(tmp_path / "pulled.ini"),
                    lambda c, value, **kwargs: pulled.put((value, kwargs)))
    assert pulled.get(timeout=WAIT) == (True, {"filepath": str(tmp_path / "pulled.ini")})
    assert (tmp_path / "pulled.ini").read_text() == "[PRIVATE]\nid = copter01\n"
    assert (tmp_path / "pushed.csv").read_bytes() == bytes(range(256)) * 64


def test_drone_pulls_a_file_the_server_sends_through_its_send_override(server, drone, tmp_path):
    connected_client(server, drone)
    (tmp_path / "animation.csv").write_bytes(bytes(range(256)) * 64)
    pulled = queue.Queue()
    drone.server_connection.get_file(str(tmp_path / "animation.csv"), str(tmp_path / "pulled.csv"),
                                     lambda c, value, **kwargs: pulled.put(value))
    assert pulled.get(timeout=WAIT) is True
    assert (tmp_path / "pulled.csv").read_bytes() == bytes(range(256)) * 64
    assert server.errors.empty()


def test_server_close_runs_the_hook_and_the_drone_reconnects_with_the_same_objects(server, drone,
                                                                                   drone_callbacks):
    client = connected_client(server, drone)
    disconnected = queue.Queue()
    client.on_disconnect = disconnected.put
    client.close()  # GUI thread, inner=False
    assert disconnected.get(timeout=WAIT) is client
    assert drone.connections.get(timeout=WAIT) is drone.server_connection
    assert server.accepted.get(timeout=WAIT) is client  # the Client of that IP, reused
    assert disconnected.get(timeout=WAIT) is client  # close(True) before reconnecting
    assert client.answers.get(timeout=WAIT) == ("id", "copter01")  # asked again, not clover_dir
    assert client.connected and Client.clients == {"127.0.0.1": client}
    client.send_message("takeoff", kwargs={"z": 2})
    assert drone_callbacks.get(timeout=WAIT) == ("takeoff", [], {"z": 2})


def test_drone_leaving_makes_the_server_close_the_client_inner(server, drone):
    client = connected_client(server, drone)
    disconnected = queue.Queue()
    client.on_disconnect = disconnected.put
    drone.server_connection.close()
    error = server.errors.get(timeout=WAIT)
    assert isinstance(error, RuntimeError) and str(error) == "Peer closed."
    assert disconnected.get(timeout=WAIT) is client
    assert client.socket is None and not client.connected


def test_guarded_send_of_a_disconnected_client_sends_nothing(server, drone, drone_callbacks):
    client = connected_client(server, drone)
    client.connected = False  # the connection stays; only the guard is checked
    with LogWatcher() as log:
        client.send_message("takeoff")
        client.get_response("time", None)
    assert log.messages().count("Function requires client to be connected!") == 2
    assert not client._send_queue
    client.connected = True
    client.send_message("led_test")
    assert drone_callbacks.get(timeout=WAIT) == ("led_test", [], {})  # no takeoff before it


def test_drone_finds_the_server_from_its_server_ip_datagram(drone_callbacks):
    Client.clients = {}
    srv = Server()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    wrong_port = closed.getsockname()[1]
    closed.close()
    lost = Drone(wrong_port)
    srv.thread.start()
    lost.thread.start()
    try:
        for _ in range(ATTEMPTS):
            assert isinstance(lost.failures.get(timeout=WAIT), OSError)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sender.sendto(srv.server_ip_datagram(), lost.udp.getsockname())
        assert lost.connections.get(timeout=WAIT) is lost.server_connection
        client = srv.accepted.get(timeout=WAIT)
        assert client.answers.get(timeout=WAIT) == ("id", "copter01")
        assert lost.server_port == srv.port
    finally:
        assert lost.stop()
        assert srv.stop()
        Client.clients = {}
        messaging.NotifierSock().close()


class SendRecorder(messaging.ConnectionManager):
    """Keeps every frame given to ``_send``, as clever-show's server looks at ``data[:256]``."""

    def __init__(self):
        super().__init__()
        self.frames = []

    def _send(self, data):
        self.frames.append(data)
        super()._send(data)


@pytest.mark.parametrize("index", [slice(None, 256), slice(None), slice(3, 200, 7), slice(-10, None),
                                   slice(None, None, -1), slice(300, 2), 0, 5, -1])
def test_queued_file_frame_indexes_like_the_bytes_of_the_frame(tmp_path, index):
    content = bytes(range(256)) * 2
    (tmp_path / "f.bin").write_bytes(content)
    whole = messaging.MessageManager.create_message(
        content, "binary", "message", additional_headers={"action": "filetransfer",
                                                          "filepath": "dest.bin"})
    connection = SendRecorder()
    connection.send_file(str(tmp_path / "f.bin"), "dest.bin")
    [frame] = connection.frames
    assert len(frame) == len(whole)
    assert frame[index] == whole[index]
    connection.resume_queue = True  # keep the frame queued before connect()
    with DirectLink(connection) as link:  # indexing did not disturb sending
        assert receive_exactly(link, len(whole)) == whole


def receive_exactly(link, size):
    """Run the link's events until its peer has received ``size`` bytes; return them."""
    received = b""
    link.peer.settimeout(0.01)
    deadline = time.monotonic() + WAIT
    while len(received) < size and time.monotonic() < deadline:
        link.pump(timeout=0)
        try:
            received += link.peer.recv(65536)
        except socket.timeout:
            pass
    return received


def test_each_loop_thread_finds_its_own_notifier_socket_in_its_selector():
    """The drone's "only the notifier is left" check works with another loop in the process."""
    selectors_ = [selectors.DefaultSelector(), selectors.DefaultSelector()]
    found = {}
    initialised = threading.Barrier(2, timeout=WAIT)

    def loop_thread(index):
        messaging.NotifierSock().init(selectors_[index])
        initialised.wait()  # both are initialised before either asks
        found[index] = messaging.NotifierSock().get_sock().fileno() in selectors_[index].get_map()
    threads = [threading.Thread(target=loop_thread, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        assert found == {0: True, 1: True}
    finally:
        messaging.NotifierSock().close()
        for sel in selectors_:
            sel.close()
