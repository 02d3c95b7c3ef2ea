"""Two processes over loopback: this one and ``peer.py``, in both roles."""
import hashlib
import logging
import queue

from messaging_helpers import WAIT, LogWatcher, PeerProcess, request

from lib import messaging

ALL_BYTES_MIB = bytes(range(256)) * 4096  # 1 MiB holding every byte value


def test_action_reaches_peer_and_its_reply_comes_back(link):
    link.connection.send_message("ping", [7])
    assert link.inbox.wait("pong") == [7]


def test_request_to_peer_gets_its_value(link):
    assert request(link.connection, "add", 2, 3).result(WAIT) == 5


def test_request_from_peer_is_answered_by_our_callback(link):
    link.connection.send_message("ask", ["square", [9]])
    assert link.inbox.wait("answer") == [["square", 81]]


def test_two_hundred_messages_arrive_in_order(link):
    for i in range(200):
        link.connection.send_message("record", [i])
    assert request(link.connection, "records").result(WAIT) == list(range(200))


def test_ten_requests_in_flight_each_get_their_own_answer(link):
    futures = [request(link.connection, "add", i, 100) for i in range(10)]
    assert [f.result(WAIT) for f in futures] == [i + 100 for i in range(10)]


def test_send_file_delivers_every_byte_value(link, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(ALL_BYTES_MIB)
    dest = tmp_path / "on_peer.bin"
    link.connection.send_file(str(src), str(dest))
    digest = request(link.connection, "sha256", str(dest)).result(WAIT)
    assert digest == hashlib.sha256(ALL_BYTES_MIB).hexdigest()


def test_get_file_fetches_every_byte_value_and_passes_filepath(link, tmp_path):
    remote = tmp_path / "remote.bin"
    remote.write_bytes(ALL_BYTES_MIB)
    local = tmp_path / "local.bin"
    got = queue.Queue()
    link.connection.get_file(str(remote), str(local),
                             callback=lambda c, value, filepath: got.put((value, filepath)))
    assert got.get(timeout=WAIT) == (True, str(local))
    assert local.read_bytes() == ALL_BYTES_MIB


def test_peer_pulls_a_file_from_us(link, tmp_path):
    ours = tmp_path / "ours.bin"
    ours.write_bytes(ALL_BYTES_MIB)
    copy = tmp_path / "peer_copy.bin"
    link.connection.send_message("pull_file", [str(ours), str(copy)])
    assert link.inbox.wait("pulled") == [[str(copy), hashlib.sha256(ALL_BYTES_MIB).hexdigest()]]


def test_peer_pushes_a_file_to_us(link, tmp_path):
    theirs = tmp_path / "theirs.bin"
    theirs.write_bytes(ALL_BYTES_MIB)
    dest = tmp_path / "pushed.bin"
    link.connection.send_message("push_file", [str(theirs), str(dest)])
    # The peer queues the file before the answer to this later request.
    assert request(link.connection, "add", 1, 1).result(WAIT) == 2
    assert dest.read_bytes() == ALL_BYTES_MIB


def test_send_file_of_missing_file_logs_a_warning_and_sends_nothing(link, tmp_path):
    with LogWatcher() as log:
        link.connection.send_file(str(tmp_path / "missing.bin"), str(tmp_path / "dest.bin"))
        assert any("can not be opened" in m for m in log.messages(logging.WARNING))
    assert request(link.connection, "add", 1, 2).result(WAIT) == 3
    assert not (tmp_path / "dest.bin").exists()


def test_get_file_of_missing_file_expires_without_calling_back(link, tmp_path):
    called = []
    link.connection.request_timeout = 0.5
    with LogWatcher() as log:
        link.connection.get_file(str(tmp_path / "missing.bin"), str(tmp_path / "local.bin"),
                                 callback=lambda *a, **k: called.append(a))
        log.wait_for("expired", logging.WARNING)
    assert request(link.connection, "add", 1, 2).result(WAIT) == 3
    assert called == []
    assert not (tmp_path / "local.bin").exists()


def test_peer_disconnecting_mid_frame_leaves_the_server_serving(node, peers, inbox):
    gone = queue.Queue()
    connected = queue.Queue()
    loop = node(on_connect=connected.put, on_disconnect=gone.put)
    host, port = loop.listen()
    loop.start()
    with LogWatcher() as log:
        half = peers("halfframe", port)
        assert half.first_line()["sent"] > 0
        gone.get(timeout=WAIT)
        assert any("lost" in m for m in log.messages(logging.WARNING))
    peers("client", port)
    connected.get(timeout=WAIT)  # the half-frame peer
    good = connected.get(timeout=WAIT)
    good.send_message("ping", [1])
    assert inbox.wait("pong") == [1]


def test_reconnect_with_resume_queue_delivers_what_was_queued(node, peers):
    peer = peers("server")
    port = peer.first_line()["port"]
    gone = queue.Queue()
    loop = node(on_disconnect=gone.put)
    loop.start()
    connection = messaging.ConnectionManager()
    connection.resume_queue = True
    loop.connect("127.0.0.1", port, connection)
    for i in range(5):
        connection.send_message("record", [i])
    assert request(connection, "records").result(WAIT) == list(range(5))
    connection.close()
    assert gone.get(timeout=WAIT) is connection
    for i in range(5, 10):
        connection.send_message("record", [i])  # queued while disconnected
    records = request(connection, "records")
    loop.connect("127.0.0.1", port, connection)
    assert records.result(WAIT) == list(range(10))


def test_reconnect_resends_pending_requests_with_their_arguments(node, peers):
    peer = peers("server")
    port = peer.first_line()["port"]
    loop = node()
    loop.start()
    connection = messaging.ConnectionManager()
    answer = request(connection, "add", 20, 22)  # not connected yet: kept pending
    loop.connect("127.0.0.1", port, connection)
    assert answer.result(WAIT) == 42



def test_reconnect_resends_a_pending_file_pull_with_its_path(node, peers, tmp_path):
    peer = peers("server")
    port = peer.first_line()["port"]
    loop = node()
    loop.start()
    remote = tmp_path / "remote.bin"
    remote.write_bytes(ALL_BYTES_MIB)
    local = tmp_path / "local.bin"
    got = queue.Queue()
    connection = messaging.ConnectionManager()
    connection.get_file(str(remote), str(local),  # not connected yet: kept pending
                        callback=lambda c, value, filepath: got.put((value, filepath)))
    loop.connect("127.0.0.1", port, connection)
    assert got.get(timeout=WAIT) == (True, str(local))
    assert local.read_bytes() == ALL_BYTES_MIB

def test_both_import_styles_give_the_one_module_of_this_checkout():
    peer = PeerProcess("importcheck")
    result = peer.first_line()
    peer.stop()
    assert result["same"] and result["registry_shared"]
    assert result["names"] == ["lib.messaging", "messaging", "protocompat.messaging"]
    assert result["file"] == messaging.__file__
