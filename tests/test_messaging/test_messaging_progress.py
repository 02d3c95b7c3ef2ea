"""The progress callback of send_file and get_file (an addition to clever-show's API)."""
import logging
import queue
import threading

import pytest

from messaging_helpers import WAIT, LogWatcher

from lib import messaging

SIZE = 3 * 1024 * 1024 + 17  # several pieces of the stream, not a multiple of any


@messaging.request_callback("progress-done")
def _done(connection):
    return True


@pytest.fixture
def pair(node):
    """A client connection and the server's end of it, on two loops of this process."""
    connected = queue.Queue()
    server = node("progress-server", on_connect=connected.put)
    _, port = server.listen()
    server.start()
    client_loop = node("progress-client")
    client_loop.start()
    client = client_loop.connect("127.0.0.1", port)
    return client, connected.get(timeout=WAIT)


def recorder():
    calls = []
    complete = threading.Event()

    def progress(done, total):
        calls.append((done, total, threading.current_thread().name))
        if done == total:
            complete.set()
    return calls, complete, progress


def wait_for_answer(connection):
    answered = queue.Queue()
    connection.get_response("progress-done", lambda c, value: answered.put(value))
    return answered.get(timeout=WAIT)


def test_send_file_reports_growing_progress_up_to_the_file_size(pair, tmp_path):
    client, _ = pair
    src = tmp_path / "src.bin"
    src.write_bytes(b"\x01" * SIZE)
    calls, complete, progress = recorder()
    client.send_file(str(src), str(tmp_path / "dest.bin"), progress=progress)
    assert complete.wait(WAIT)
    assert wait_for_answer(client)  # the file was handled before this answer
    done = [c[0] for c in calls]
    assert len(calls) > 1 and done == sorted(done) and done[-1] == SIZE
    assert {c[1] for c in calls} == {SIZE}
    assert (tmp_path / "dest.bin").read_bytes() == b"\x01" * SIZE


def test_get_file_reports_received_bytes_on_the_loop_thread_before_its_callback(pair, tmp_path):
    client, _ = pair
    remote = tmp_path / "remote.bin"
    remote.write_bytes(b"\x02" * SIZE)
    calls, _, progress = recorder()
    arrived = queue.Queue()
    client.get_file(str(remote), str(tmp_path / "local.bin"), progress=progress,
                    callback=lambda c, value, filepath: arrived.put(list(calls)))
    seen = arrived.get(timeout=WAIT)
    assert seen and seen[-1][:2] == (SIZE, SIZE)
    assert [c[0] for c in seen] == sorted(c[0] for c in seen)
    assert {c[2] for c in seen} == {"progress-client"}
    assert (tmp_path / "local.bin").read_bytes() == b"\x02" * SIZE


def test_empty_file_reports_zero_of_zero(pair, tmp_path):
    client, _ = pair
    (tmp_path / "empty.bin").write_bytes(b"")
    calls, complete, progress = recorder()
    client.send_file(str(tmp_path / "empty.bin"), str(tmp_path / "copy.bin"), progress=progress)
    assert complete.wait(WAIT)
    assert [c[:2] for c in calls] == [(0, 0)]


def test_raising_progress_callback_is_logged_and_the_file_still_arrives(pair, tmp_path):
    client, _ = pair
    src = tmp_path / "src.bin"
    src.write_bytes(b"\x03" * SIZE)

    def progress(done, total):
        raise RuntimeError("progress failed on purpose")
    with LogWatcher() as log:
        client.send_file(str(src), str(tmp_path / "dest.bin"), progress=progress)
        assert wait_for_answer(client)
        assert log.count("Progress callback", logging.ERROR) >= 1
    assert (tmp_path / "dest.bin").read_bytes() == b"\x03" * SIZE


def test_progress_is_keyword_only_and_the_original_signatures_still_work(pair, tmp_path):
    client, _ = pair
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    with pytest.raises(TypeError):
        client.send_file(str(src), str(tmp_path / "x.bin"), print)
    client.send_file(str(src), str(tmp_path / "positional.bin"))
    arrived = queue.Queue()
    client.get_file(str(src), str(tmp_path / "got.bin"), lambda c, v, extra, filepath: arrived.put(extra),
                    ("extra",), {})
    assert arrived.get(timeout=WAIT) == "extra"
    assert (tmp_path / "positional.bin").read_bytes() == b"abc"
