"""Hostile peers: what a broken or malicious peer sends over loopback, and the server still serving.

Each test sends the bytes on a plain socket (or makes the server talk to a
peer that never reads) and then shows a healthy connection, and a new one,
still being served; memory and descriptors are measured where they are the
point.
"""
import itertools
import logging
import os
import queue
import socket
import tracemalloc

import pytest

from messaging_helpers import WAIT, DirectLink, LogWatcher, request

from lib import messaging
from lib.messaging import MessageManager

MiB = 1024 * 1024
needs_proc_fd = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                   reason="descriptors are counted in /proc/self/fd (Linux)")
HEADER = {"byteorder": "little", "content-type": "json", "content-encoding": "utf-8"}


@messaging.request_callback("twice")
def _twice(connection, x):
    return 2 * x


def frame(header, content=b""):
    data = MessageManager._json_encode(header)
    return len(data).to_bytes(2, "big") + data + content


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


class RawPeer:
    """A peer speaking the protocol by hand on a plain blocking socket."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.decoder = MessageManager()
        self.received = []
        self.ids = itertools.count(1)

    def send(self, data):
        """Send ``data``; the server may close the connection meanwhile (then ``request`` fails)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def pull(self, filepath):
        """Ask for the file ``filepath`` (a JSON value of any type); return the request id."""
        request_id = "pull%d" % next(self.ids)
        self.send(MessageManager.create_request("filetransfer", request_id, kwargs={"filepath": filepath}))
        return request_id

    def request(self, name, *args):
        """Send a request and return the value of its response."""
        request_id = "raw%d" % next(self.ids)
        self.send(MessageManager.create_request(name, request_id, args))
        while True:
            for message in self.received:
                if message.jsonheader.get("request_id") == request_id:
                    return message.content["value"]
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            self.received.extend(self.decoder.feed(data))

    def closed_by_server(self):
        """True once the server has closed the connection (what it sent before is skipped)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self):
        self.sock.close()


@pytest.fixture
def server(node):
    """A listening node with a healthy client; yields an object with the pieces."""
    class Server:
        pass
    s = Server()
    s.connected, s.gone = queue.Queue(), queue.Queue()
    s.loop = node("hostile-server", on_connect=s.connected.put, on_disconnect=s.gone.put)
    s.configure = None  # called with each new connection, on the loop thread

    def on_connect(connection):
        if s.configure is not None:
            s.configure(connection)
        s.connected.put(connection)
    s.loop.on_connect = on_connect
    _, s.port = s.loop.listen()
    s.loop.start()
    clients = node("healthy-clients")
    clients.start()
    s.healthy = clients.connect("127.0.0.1", s.port)
    s.healthy_end = s.connected.get(timeout=WAIT)
    s.peers = []

    def raw_peer():
        peer = RawPeer(s.port)
        s.peers.append(peer)
        return peer, s.connected.get(timeout=WAIT)
    s.raw_peer = raw_peer

    def still_serving():
        assert request(s.healthy, "twice", 21).result(WAIT) == 42
        newcomer = clients.connect("127.0.0.1", s.port)
        assert request(newcomer, "twice", 5).result(WAIT) == 10
        return True
    s.still_serving = still_serving
    yield s
    for peer in s.peers:
        peer.close()


# -- 1. paths must be strings without NUL ------------------------------------------------
def test_pull_of_a_descriptor_number_is_refused_and_the_listener_keeps_accepting(server):
    peer, _ = server.raw_peer()
    listener_fd = server.loop.listener.fileno()
    with LogWatcher() as log:
        peer.pull(listener_fd)  # open(fd) would adopt the listening socket, and close it
        log.wait_for("a path must be a string, not int: %d" % listener_fd, logging.ERROR)
    assert peer.request("twice", 1) == 2  # the same connection lives, without a response to the pull
    assert server.loop.listener.fileno() == listener_fd
    assert server.still_serving()


def test_pull_of_a_path_with_nul_is_refused(server, tmp_path):
    peer, _ = server.raw_peer()
    with LogWatcher() as log:
        peer.pull(str(tmp_path / "a\0b"))
        log.wait_for("must not contain a NUL character", logging.ERROR)
    assert peer.request("twice", 2) == 4
    assert server.still_serving()


def test_push_to_a_path_with_nul_is_refused_and_its_content_consumed(server, tmp_path):
    peer, _ = server.raw_peer()
    with LogWatcher() as log:
        peer.send(MessageManager.create_message(b"x" * 100_000, "binary", "message", additional_headers={
            "action": "filetransfer", "filepath": str(tmp_path / "a\0b")}))
        log.wait_for("must not contain a NUL character", logging.ERROR)
    assert peer.request("twice", 3) == 6  # the content did not stay in the stream
    assert os.listdir(str(tmp_path)) == []
    assert server.still_serving()


def test_push_without_a_string_path_is_a_frame_error(server, tmp_path):
    peer, _ = server.raw_peer()
    with LogWatcher() as log:
        peer.send(MessageManager.create_message(b"x", "binary", "message", additional_headers={
            "action": "filetransfer", "filepath": 5}))
        assert peer.closed_by_server()
        assert any("file transfer without a filepath: 5" in m for m in log.messages(logging.ERROR))
    assert server.still_serving()


def test_local_api_refuses_paths_that_are_not_strings(tmp_path):
    connection = messaging.ConnectionManager()
    with pytest.raises(TypeError):
        connection.send_file(5, "dest")
    with pytest.raises(ValueError):
        connection.get_file("remote", str(tmp_path / "a\0b"))
    assert not connection._send_queue and not connection._request_queue


# -- 2. files are opened when sent; queued pulls are bounded -----------------------------
@needs_proc_fd
def test_queued_pulls_hold_no_descriptors_and_are_bounded(server, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(64 * MiB)  # more than the socket buffers hold: the first pull stays in flight
    peer, _ = server.raw_peer()
    before = open_descriptors()
    pulls = 1100
    limit = messaging.MAX_QUEUED_FILES
    refusal = "refused: %d files already wait to be sent" % limit
    with LogWatcher() as log:
        peer.send(b"".join(MessageManager.create_request("filetransfer", "p%d" % i,
                                                         kwargs={"filepath": str(big)})
                           for i in range(pulls)))
        # All are refused but the bounded queue and the one file in flight.
        log.wait_for(refusal, logging.ERROR, count=pulls - limit - 1)
        assert open_descriptors() - before <= 1  # the file being sent, if any
        assert peer.sock.fileno() != -1
        assert server.still_serving()  # answered after every pull was handled
        assert pulls - limit - 1 <= log.count(refusal) <= pulls - limit


@needs_proc_fd
def test_a_file_is_read_as_it_is_when_its_turn_comes(tmp_path):
    source = tmp_path / "source.txt"
    source.write_bytes(b"old")
    connection = messaging.ConnectionManager()
    connection.resume_queue = True  # keep the queue until connect()
    before = open_descriptors()
    connection.send_file(str(source), "dest.txt")
    assert open_descriptors() == before  # queued, not opened
    source.write_bytes(b"new content")
    with DirectLink(connection) as link:
        expected = MessageManager.create_message(b"new content", "binary", "message", additional_headers={
            "action": "filetransfer", "filepath": "dest.txt"})
        received = b""
        link.peer.settimeout(0.01)
        while len(received) < len(expected):
            link.pump(timeout=0)
            try:
                received += link.peer.recv(65536)
            except socket.timeout:
                pass
        assert received == expected


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_only_regular_files_are_sent(server, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))  # opening it for reading would block the loop until a writer comes
    peer, _ = server.raw_peer()
    with LogWatcher() as log:
        peer.pull(str(fifo))
        log.wait_for("is not a regular file", logging.ERROR)
    assert peer.request("twice", 4) == 8
    assert server.still_serving()


# -- 3. JSON content has its own, smaller limit -------------------------------------------
def test_json_frame_over_the_json_limit_is_refused_from_its_header(server):
    peer, _ = server.raw_peer()
    content_length = 60_000_000  # under the 64 MiB limit of files
    head = frame(dict(HEADER, **{"content-length": content_length, "message-type": "message",
                                 "action": "x"}))
    tracemalloc.start()
    try:
        with LogWatcher() as log:
            peer.send(head + b"[" + b"{}," * 100_000)  # the start of the content only
            assert peer.closed_by_server()  # without waiting for the rest
            assert any("JSON content-length 60000000 exceeds the maximum of 1048576 bytes for JSON" in m
                       for m in log.messages(logging.ERROR))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB
    assert server.still_serving()


def test_largest_json_frame_of_empty_objects_costs_bounded_memory(server):
    peer, _ = server.raw_peer()
    items = (messaging.MAX_JSON_CONTENT_LENGTH - 40) // 3
    content = b'{"args": [' + b",".join([b"{}"] * items) + b'], "kwargs": {}}'
    assert len(content) <= messaging.MAX_JSON_CONTENT_LENGTH
    data = frame(dict(HEADER, **{"content-length": len(content), "message-type": "message",
                                 "action": "no-such-action"}), content)
    tracemalloc.start()
    try:
        with LogWatcher() as log:
            peer.send(data)
            log.wait_for("Action no-such-action does not exist!", logging.WARNING)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 128 * MiB  # about 50 bytes per byte of content, once (60 MB cost 2.8 GB)
    assert peer.request("twice", 5) == 10
    assert server.still_serving()


def test_binary_content_over_the_json_limit_still_streams_to_disk(server, tmp_path):
    peer, _ = server.raw_peer()
    data = os.urandom(3 * MiB)
    dest = tmp_path / "pushed.bin"
    peer.send(MessageManager.create_message(data, "binary", "message", additional_headers={
        "action": "filetransfer", "filepath": str(dest)}))
    assert peer.request("twice", 6) == 12
    assert dest.read_bytes() == data


def test_binary_content_that_is_not_a_file_is_refused_from_its_header(server):
    peer, _ = server.raw_peer()
    with LogWatcher() as log:
        peer.send(frame(dict(HEADER, **{"content-type": "binary", "content-length": 50_000_000,
                                        "message-type": "message", "action": "x"})))
        assert peer.closed_by_server()
        assert any("binary content for action 'x'" in m for m in log.messages(logging.ERROR))
    assert server.still_serving()


# -- 4. the send queue is bounded --------------------------------------------------------
def test_peer_that_never_reads_is_closed_once_its_send_queue_is_full(server):
    peer, server_end = server.raw_peer()  # never reads
    argument = "x" * 1_000_000
    tracemalloc.start()
    try:
        with LogWatcher() as log:
            for _ in range(200):
                server_end.get_response("blob", None, (argument,))
            log.wait_for("more than max_queued_output (%d)" % messaging.MAX_QUEUED_OUTPUT, logging.ERROR)
            assert server.gone.get(timeout=WAIT) is server_end
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * messaging.MAX_QUEUED_OUTPUT  # 200 MB without the bound
    assert server.still_serving()


def test_output_bound_set_on_the_class_applies_to_connections_made_after(server, monkeypatch):
    monkeypatch.setattr(messaging.ConnectionManager, "max_queued_output", 100_000)
    peer, server_end = server.raw_peer()  # never reads
    with LogWatcher() as log:
        for _ in range(100):  # 50 MB: more than the socket buffers take, then the bound
            server_end.send_message("blob", ["x" * 500_000])
            if server_end.socket is None:
                break
        log.wait_for("more than max_queued_output (100000)", logging.ERROR)
        assert server.gone.get(timeout=WAIT) is server_end
        [closing] = [m for m in log.messages(logging.ERROR) if m.startswith("Closing the connection")]
    queued = int(closing.split(": ")[1].split(" bytes")[0])
    assert queued <= 501_000  # one frame was queued when the next one overflowed (16 MiB: ~32)
    assert server.still_serving()


def test_one_frame_larger_than_the_bound_is_still_sent(server, node):
    client_loop = node("small-bound-client")
    client_loop.start()
    client = messaging.ConnectionManager()
    client.max_queued_output = 1000  # read by connect()
    client_loop.connect("127.0.0.1", server.port, client)
    got = queue.Queue()

    @messaging.message_callback("big-one")
    def big_one(connection, text):
        got.put(len(text))
    try:
        client.send_message("big-one", ["y" * 5000])
        assert got.get(timeout=WAIT) == 5000
    finally:
        messaging.ConnectionManager.messages_callbacks.pop("big-one")
    assert request(client, "twice", 8).result(WAIT) == 16
    assert server.still_serving()


# -- 5. deep nesting is a ValueError at a fixed depth, and closes the connection -----------
DEEP_HEADER_FRAME = b"\x07\xc8" + b"[" * 996 + b"]" * 996


def test_deeply_nested_header_raises_value_error_and_closes_the_connection():
    connection = messaging.ConnectionManager()
    with DirectLink(connection) as link:
        link.peer.sendall(DEEP_HEADER_FRAME)
        with pytest.raises(ValueError, match="nested 996 levels deep"):
            link.pump(lambda: connection.socket is None)
        assert connection.socket is None


@pytest.mark.parametrize("where", ["header", "content"])
def test_deeply_nested_frame_closes_only_that_connection(server, where):
    peer, _ = server.raw_peer()
    deep = b"[" * 5000 + b"]" * 5000
    if where == "header":
        data = DEEP_HEADER_FRAME
    else:
        data = frame(dict(HEADER, **{"content-length": len(deep), "message-type": "message",
                                     "action": "x"}), deep)
    with LogWatcher() as log:
        peer.send(data)
        assert peer.closed_by_server()
        assert any("levels deep, more than the maximum of 64" in m for m in log.messages(logging.ERROR))
    assert server.still_serving()


# -- 6. a response's request_id must be a string ------------------------------------------
@pytest.mark.parametrize("request_id", [[1, 2], {"a": 1}])
@pytest.mark.parametrize("content_type", ["binary", "json"])
def test_response_with_an_unhashable_request_id_is_a_frame_error(server, request_id, content_type):
    peer, _ = server.raw_peer()
    content = b"\x00\x01" if content_type == "binary" else b'{"value": 1}'
    data = frame(dict(HEADER, **{"content-type": content_type, "content-length": len(content),
                                 "message-type": "response", "requested_value": "filetransfer",
                                 "request_id": request_id}), content)
    with LogWatcher() as log:
        peer.send(data)
        assert peer.closed_by_server()
        assert any("response request_id is not a string" in m for m in log.messages(logging.ERROR))
    assert server.still_serving()


# -- 7. file access can be confined ------------------------------------------------------
@pytest.fixture
def confined(server, tmp_path):
    """The server confines its connections' file access to ``tmp_path / "root"``."""
    root = tmp_path / "root"
    root.mkdir()
    server.configure = lambda connection: setattr(connection, "file_access", messaging.FileAccess(root))
    return root


def test_unconfined_by_default(server, tmp_path):
    assert not messaging.ConnectionManager.file_access.confined
    anywhere = tmp_path / "anywhere.txt"
    anywhere.write_text("readable")
    got = queue.Queue()
    server.healthy.get_file(str(anywhere), str(tmp_path / "copy.txt"),
                            callback=lambda c, value, filepath: got.put(filepath))
    assert got.get(timeout=WAIT) == str(tmp_path / "copy.txt")


def test_confined_server_refuses_pulls_outside_its_root(server, confined, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    (confined / "public.txt").write_text("public")
    (confined / "link.txt").symlink_to(tmp_path / "secret.txt")
    peer, _ = server.raw_peer()
    with LogWatcher() as log:
        for path in (tmp_path / "secret.txt", confined / ".." / "secret.txt", confined / "link.txt"):
            peer.pull(str(path))
        assert peer.request("twice", 7) == 14  # answered after the three refusals
        refusals = [m for m in log.messages(logging.ERROR)
                    if "refused: outside %s" % os.path.realpath(str(confined)) in m]
    assert len(refusals) == 3
    assert not any(m.jsonheader.get("requested_value") == "filetransfer" for m in peer.received)
    peer.pull(str(confined / "public.txt"))
    assert peer.request("twice", 8) == 16
    [response] = [m for m in peer.received if m.jsonheader.get("requested_value") == "filetransfer"]
    assert response.content == b"public"


def test_confined_server_refuses_pushes_outside_its_root(server, confined, tmp_path):
    peer, _ = server.raw_peer()
    outside = tmp_path / "planted.txt"
    with LogWatcher() as log:
        peer.send(MessageManager.create_message(b"planted", "binary", "message", additional_headers={
            "action": "filetransfer", "filepath": str(outside)}))
        peer.send(MessageManager.create_message(b"kept", "binary", "message", additional_headers={
            "action": "filetransfer", "filepath": str(confined / "inside.txt")}))
        assert peer.request("twice", 9) == 18
        assert any("write of %r refused" % str(outside) in m for m in log.messages(logging.ERROR))
    assert not outside.exists()
    assert (confined / "inside.txt").read_bytes() == b"kept"
    assert server.still_serving()


def test_relative_paths_are_resolved_against_the_working_directory(server, confined, monkeypatch):
    monkeypatch.chdir(str(confined))
    peer, _ = server.raw_peer()
    peer.send(MessageManager.create_message(b"relative", "binary", "message", additional_headers={
        "action": "filetransfer", "filepath": "relative.txt"}))
    assert peer.request("twice", 10) == 20
    assert (confined / "relative.txt").read_bytes() == b"relative"


def test_approving_callable_decides_each_path_and_direction(server, tmp_path):
    asked = []

    def read_only(path, direction):
        asked.append((path, direction))
        return direction == "read"
    server.configure = lambda connection: setattr(
        connection, "file_access", messaging.FileAccess(allow=read_only))
    (tmp_path / "data.txt").write_text("data")
    peer, _ = server.raw_peer()
    with LogWatcher() as log:
        peer.send(MessageManager.create_message(b"w", "binary", "message", additional_headers={
            "action": "filetransfer", "filepath": str(tmp_path / "written.txt")}))
        peer.pull(str(tmp_path / "data.txt"))
        assert peer.request("twice", 11) == 22
        assert any("refused by the file access check" in m for m in log.messages(logging.ERROR))
    assert not (tmp_path / "written.txt").exists()
    assert asked == [(os.path.realpath(str(tmp_path / "written.txt")), "write"),
                     (os.path.realpath(str(tmp_path / "data.txt")), "read")]
    assert any(m.content == b"data" for m in peer.received)


def test_approving_callable_that_raises_refuses(server, tmp_path):
    def broken(path, direction):
        raise RuntimeError("policy bug")
    server.configure = lambda connection: setattr(
        connection, "file_access", messaging.FileAccess(allow=broken))
    (tmp_path / "data.txt").write_text("data")
    peer, _ = server.raw_peer()
    with LogWatcher() as log:
        peer.pull(str(tmp_path / "data.txt"))
        assert peer.request("twice", 12) == 24
        assert any("the file access check raised RuntimeError('policy bug')" in m
                   for m in log.messages(logging.ERROR))
    assert server.still_serving()
