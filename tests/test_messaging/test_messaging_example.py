"""The runnable example: ``python -m protocompat.messaging demo|serve|client``."""
import concurrent.futures
import logging
import os
import re
import subprocess
import sys

import pytest

from messaging_helpers import WAIT, LogWatcher

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


def run_module(*args, module="protocompat.messaging", cwd=None, **kwargs):
    env = dict(os.environ, PYTHONPATH=ROOT)  # this checkout's protocompat, from any directory
    return subprocess.Popen([sys.executable, "-m", module] + list(args), cwd=cwd or ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture
def example_server(tmp_path):
    """``serve`` with its defaults but an OS-chosen port, run in ``tmp_path``; yields its port."""
    server = run_module("serve", "--port", "0", cwd=str(tmp_path), stdin=subprocess.PIPE)
    try:
        first = server.stdout.readline()
        match = re.search(r"listening on (\S+):(\d+), files confined to (\S+)", first)
        assert match, first + server.stderr.read()
        yield match
    finally:
        server.terminate()
        server.communicate(timeout=WAIT)


def test_demo_runs_the_whole_exchange_and_exits_zero(tmp_path):
    out, err = run_module("demo", cwd=str(tmp_path)).communicate(timeout=WAIT)
    assert "client: action takeoff(z=1.5)" in out
    assert "server: drone id is 'copter01'" in out
    assert "client: got file animation.csv" in out
    assert out.rstrip().endswith("demo: exchange complete")
    assert os.listdir(str(tmp_path)) == []  # nothing left behind


def test_demo_flag_is_the_same_as_the_demo_command():
    proc = run_module("--demo")
    out, _ = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0 and "exchange complete" in out


def test_example_server_listens_on_loopback_and_confines_files_to_its_directory(example_server,
                                                                                tmp_path):
    host, _, root = example_server.groups()
    assert host == "127.0.0.1"
    assert root == os.path.realpath(str(tmp_path))


def test_example_server_removes_its_sample_file_when_terminated(tmp_path):
    server = run_module("serve", "--port", "0", cwd=str(tmp_path))
    assert "listening on" in server.stdout.readline()
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith(".messaging-example-")]
    server.terminate()
    server.communicate(timeout=WAIT)
    assert os.listdir(str(tmp_path)) == []


def test_client_and_server_commands_talk_across_processes(example_server):
    client = run_module("client", "127.0.0.1", "--port", example_server.group(2))
    out, err = client.communicate(timeout=WAIT)
    assert client.returncode == 0, err
    assert "client: server time is" in out and "client: got file animation.csv" in out


def test_example_server_refuses_to_send_files_outside_its_directory(example_server, node, tmp_path):
    (tmp_path / "inside.txt").write_text("inside")
    outside = tmp_path.parent / ("outside-%s.txt" % tmp_path.name)
    outside.write_text("outside")
    loop = node("example-client")
    loop.start()
    connection = loop.connect("127.0.0.1", int(example_server.group(2)))
    got = concurrent.futures.Future()
    try:
        with LogWatcher() as log:
            connection.get_file(str(outside), str(tmp_path / "copy-outside.txt"),
                                callback=lambda c, value, filepath: got.set_result(filepath))
            connection.get_file(str(tmp_path / "inside.txt"), str(tmp_path / "copy-inside.txt"),
                                callback=lambda c, value, filepath: got.set_result(filepath))
            assert got.result(WAIT) == str(tmp_path / "copy-inside.txt")  # answered, in order
            assert not log.messages(logging.ERROR)
        assert (tmp_path / "copy-inside.txt").read_text() == "inside"
        assert not (tmp_path / "copy-outside.txt").exists()
        assert len(connection._request_queue) == 1  # the refused pull is never answered
    finally:
        outside.unlink()


def test_legacy_module_command_still_runs_the_example():
    proc = run_module("demo", module="lib.messaging")
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("demo: exchange complete")
