"""Connection behaviour in one process: bad input, limits, callbacks, threads."""
import json
import logging
import os
import queue
import socket
import threading
import tracemalloc

import pytest

from messaging_helpers import WAIT, LogWatcher, request

from lib import messaging
from lib.messaging import MessageManager


@messaging.message_callback("explode")
def _explode(connection):
    raise RuntimeError("action failed on purpose")


@messaging.request_callback("explode")
def _explode_request(connection):
    raise RuntimeError("request failed on purpose")


@messaging.request_callback("twice")
def _twice(connection, x):
    return 2 * x


def frame(header, content=b""):
    data = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(data).to_bytes(2, "big") + data + content


def header(**extra):
    base = {"byteorder": "little", "content-type": "json", "content-encoding": "utf-8",
            "content-length": 2, "message-type": "message"}
    base.update(extra)
    return base


@pytest.fixture
def server(node):
    """A listening node; yields (node, port, connected queue, disconnected queue)."""
    connected, gone = queue.Queue(), queue.Queue()
    loop = node("test-server", on_connect=connected.put, on_disconnect=gone.put)
    _, port = loop.listen()
    loop.start()
    return loop, port, connected, gone


@pytest.fixture
def pair(server, node):
    """A client connection and the server's end of it."""
    loop, port, connected, gone = server
    client_loop = node("test-client")
    client_loop.start()
    client = client_loop.connect("127.0.0.1", port)
    return client, connected.get(timeout=WAIT)


def raw_peer(port, data):
    """Send ``data`` on a plain socket; return True when the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(data)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
    return True


BAD_FRAMES = {
    "header_not_json": frame(b"{oops", b"{}"),
    "header_missing_key": frame({"byteorder": "little", "content-type": "json",
                                 "content-length": 2, "message-type": "message"}, b"{}"),
    "message_without_action": frame(header(), b"{}"),
    "content_invalid_utf8": frame(header(action="x"), b"\xff\xfe"),
    "content_length_over_limit": frame(header(**{"content-length": messaging.MAX_CONTENT_LENGTH + 1})),
    "request_without_id": frame(header(**{"message-type": "request", "content-length": 25}),
                                b'{"requested_value": "id"}'),
}


@pytest.mark.parametrize("kind", sorted(BAD_FRAMES))
def test_bad_frame_closes_only_that_connection_with_an_error_logged(kind, server, pair):
    loop, port, connected, gone = server
    client, server_end = pair
    with LogWatcher() as log:
        assert raw_peer(port, BAD_FRAMES[kind])
        bad_end = connected.get(timeout=WAIT)
        assert gone.get(timeout=WAIT) is bad_end
        assert log.messages(logging.ERROR)
    assert request(client, "twice", 21).result(WAIT) == 42
    assert server_end.socket is not None


def test_frames_queued_for_other_peers_survive_a_bad_peer(server, pair):
    loop, port, connected, gone = server
    client, server_end = pair
    replies = [request(client, "twice", i) for i in range(50)]
    raw_peer(port, BAD_FRAMES["header_not_json"])
    assert [r.result(WAIT) for r in replies] == [2 * i for i in range(50)]


def test_content_limit_is_configurable_per_connection(server, node):
    loop, port, connected, gone = server
    client_loop = node("small-client")
    client_loop.start()
    client = messaging.ConnectionManager()
    client.max_content_length = 100
    client_loop.connect("127.0.0.1", port, client)
    server_end = connected.get(timeout=WAIT)
    with LogWatcher() as log:
        server_end.send_message("big", ["x" * 200])
        log.wait_for("exceeds", logging.ERROR)
    assert gone.get(timeout=WAIT) is server_end


def test_limits_set_on_a_subclass_apply_to_its_connections(server, node):
    class Strict(messaging.ConnectionManager):
        max_json_content_length = 100
    loop, port, connected, gone = server
    client_loop = node("strict-client")
    client_loop.start()
    client_loop.connect("127.0.0.1", port, Strict())
    server_end = connected.get(timeout=WAIT)
    with LogWatcher() as log:
        server_end.send_message("big", ["x" * 200])
        log.wait_for("exceeds the maximum of 100 bytes for JSON", logging.ERROR)
    assert gone.get(timeout=WAIT) is server_end


def test_raising_action_is_logged_and_connection_lives(pair):
    client, server_end = pair
    with LogWatcher() as log:
        client.send_message("explode")
        assert request(client, "twice", 1).result(WAIT) == 2
        assert any("action failed on purpose" in m for m in log.messages(logging.ERROR))


def test_raising_request_sends_nothing_and_fails_at_its_timeout(pair):
    client, server_end = pair
    with LogWatcher() as log:
        failing = request(client, "explode", timeout=0.3)
        log.wait_for("expired", logging.WARNING)
        assert any("request failed on purpose" in m for m in log.messages(logging.ERROR))
    assert not failing.done()
    assert request(client, "twice", 2).result(WAIT) == 4


def test_unknown_action_and_request_are_logged_and_connection_lives(pair):
    client, server_end = pair
    with LogWatcher() as log:
        client.send_message("no-such-action")
        request(client, "no-such-request")
        assert request(client, "twice", 3).result(WAIT) == 6
        warnings = log.messages(logging.WARNING)
    assert "Action no-such-action does not exist!" in warnings
    assert "Request no-such-request does not exist!" in warnings



def test_raising_response_callback_is_logged_and_connection_lives(pair):
    client, server_end = pair

    def broken(connection, value):
        raise RuntimeError("response callback failed on purpose")
    with LogWatcher() as log:
        client.get_response("twice", broken, (5,))
        log.wait_for("response callback failed on purpose", logging.ERROR)
    assert request(client, "twice", 4).result(WAIT) == 8


@pytest.mark.parametrize("request_id, requested_value", [("no-such-id", "twice"), (None, "other")])
def test_unexpected_response_is_logged_and_dropped(pair, request_id, requested_value):
    client, server_end = pair
    pending = client.get_response("unanswered", None) if request_id is None else request_id
    with LogWatcher() as log:
        server_end._send(MessageManager.create_response(requested_value, pending, 1))
        log.wait_for("Unexpected response!", logging.WARNING)
    assert (pending in client._request_queue) == (request_id is None)  # still waits for its own
    assert request(client, "twice", 6).result(WAIT) == 12


def test_unknown_message_type_is_ignored_and_connection_lives(pair):
    client, server_end = pair
    with LogWatcher() as log:
        server_end._send(MessageManager.create_message(b"{}", "json", "status"))
        log.wait_for("Unknown message-type", logging.WARNING)
    assert request(client, "twice", 7).result(WAIT) == 14

def test_request_ids_are_unique_strings_per_connection(pair):
    client, server_end = pair
    ids = [client.get_response("twice", None, (i,)) for i in range(3000)]
    assert all(isinstance(i, str) for i in ids)
    assert len(set(ids)) == len(ids)


def test_sends_from_many_threads_are_never_stalled(pair):
    """Every reply must arrive although threads send while the loop is writing."""
    client, server_end = pair
    results = []

    def worker(base):
        results.extend(request(client, "twice", base + i) for i in range(100))
    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert sorted(f.result(WAIT) for f in results) == sorted(
        2 * (k * 1000 + i) for k in range(4) for i in range(100))



def test_file_transfer_streams_without_holding_the_file_in_memory(pair, tmp_path):
    """Sending and receiving 16 MiB allocates far less than the file (upstream: twice the file)."""
    client, server_end = pair
    size = 16 * 1024 * 1024
    src, dest = tmp_path / "big.bin", tmp_path / "copy.bin"
    with open(src, "wb") as f:
        f.truncate(size)
    arrived = queue.Queue()
    tracemalloc.start()
    try:
        client.send_file(str(src), str(dest))
        client.get_response("twice", lambda c, value: arrived.put(value), (1,))  # after the file
        assert arrived.get(timeout=WAIT) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert os.path.getsize(dest) == size
    assert peak < size // 4

def test_close_from_another_thread_disconnects_the_peer(server, pair):
    loop, port, connected, gone = server
    client, server_end = pair
    server_end.close()
    assert gone.get(timeout=WAIT) is server_end
    assert server_end.socket is None and server_end.selector is None


def test_sending_while_disconnected_queues_instead_of_raising():
    connection = messaging.ConnectionManager()
    connection.send_message("later")
    assert len(connection._send_queue) == 1


def test_received_file_for_pi_is_chowned_without_a_shell(pair, tmp_path, monkeypatch):
    client, server_end = pair
    client.whoami = "pi"
    monkeypatch.chdir(tmp_path)  # where a shell would run "touch injected"
    src = tmp_path / "src.txt"
    src.write_bytes(b"data")
    marker = tmp_path / "injected"
    dest = tmp_path / "x; touch injected"
    with LogWatcher() as log:
        server_end.send_file(str(src), str(dest))
        log.wait_for("successfully received")
    assert dest.read_bytes() == b"data"
    assert not marker.exists()


def test_received_file_replaces_destination_keeping_its_mode(pair, tmp_path):
    client, server_end = pair
    src = tmp_path / "src.txt"
    src.write_bytes(b"new")
    dest = tmp_path / "dest.txt"
    dest.write_bytes(b"old")
    os.chmod(dest, 0o640)
    server_end.send_file(str(src), str(dest))
    assert request(client, "twice", 0).result(WAIT) == 0
    assert request(server_end, "twice", 0).result(WAIT) == 0  # the file frame went first
    assert dest.read_bytes() == b"new"
    assert os.stat(dest).st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_file_to_unwritable_path_is_logged_and_connection_lives(pair, tmp_path):
    client, server_end = pair
    src = tmp_path / "src.txt"
    src.write_bytes(b"x")
    with LogWatcher() as log:
        server_end.send_file(str(src), str(tmp_path / "no-such-dir" / "f.txt"))
        log.wait_for("can not be written", logging.ERROR)
    assert request(server_end, "twice", 5).result(WAIT) == 10


def test_notifier_listens_on_loopback_only_on_an_os_chosen_port(node):
    node("notifier-check")  # initialises the notifier for its selector
    sock = messaging.NotifierSock().get_sock()
    address, port = sock.getsockname()
    assert address == "127.0.0.1"
    assert sock.getpeername()[0] == "127.0.0.1"
    assert not 26000 <= port <= 26100 or port != sock.getpeername()[1]


def test_singleton_returns_one_instance():
    class Only(messaging.Singleton):
        pass
    assert Only() is Only()


def test_singleton_may_create_another_singleton_while_initialising():
    class Server(messaging.Singleton):  # clever-show's server is a Singleton using the notifier
        def __init__(self):
            self.notifier = messaging.NotifierSock()
    assert Server().notifier is messaging.NotifierSock()


def test_namespace_supports_items_and_attributes():
    ns = messaging.PendingRequest(a=1)
    ns["b"] = 2
    assert (ns.a, ns["b"]) == (1, 2)


def test_module_never_runs_a_shell():
    package_dir = os.path.dirname(messaging.__file__)
    paths = [os.path.join(package_dir, name) for name in sorted(os.listdir(package_dir))
             if name.endswith(".py")]
    assert len(paths) >= 8  # the package's modules, one concept each
    for path in paths:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        assert "os.system" not in source and "subprocess" not in source, path
