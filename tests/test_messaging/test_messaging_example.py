"""The runnable example: ``python -m protocompat.messaging demo|serve|client``."""
import concurrent.futures
import logging
import os
import re
import socket
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


# -- the command line: help, logging options, one-line errors, transfers ----------------

def closed_port():
    """A loopback port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_line_error(proc, out, err, *fragments, logged=False):
    """Exit 1, no traceback, and the error in one line: alone, or after log records if ``logged``."""
    assert proc.returncode == 1, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    if logged:
        assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in lines[:-1]), err
        lines = lines[-1:]
    assert len(lines) == 1, err
    assert lines[0].startswith("protocompat.messaging: ")
    for fragment in fragments:
        assert fragment in lines[0]


def option_entries(help_text):
    """The help entry of each option (its first line and the continuation lines), but -h."""
    entries = []
    for line in help_text.splitlines():
        if line.startswith("  -"):
            entries.append(line)
        elif entries and line.startswith("      ") and line.strip():
            entries[-1] += " " + line.strip()
        elif not line.strip():
            entries.append("")
    return [e for e in entries if e and not e.lstrip().startswith("-h,")]


@pytest.mark.parametrize("command", ["serve", "client", "demo"])
def test_help_of_each_command_states_the_default_of_every_option(command):
    proc = run_module(command, "--help")
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    entries = option_entries(out)
    assert any("--log-level" in e for e in entries) and any("--verbose" in e for e in entries)
    for entry in entries:
        assert "(default: " in entry, entry


def test_serve_help_says_it_listens_on_loopback_in_the_working_directory():
    out, _ = run_module("serve", "--help").communicate(timeout=WAIT)
    assert "(default: 127.0.0.1)" in out and "(default: the working directory)" in out


def test_client_refused_connection_is_one_line_and_exit_one():
    port = closed_port()
    proc = run_module("client", "127.0.0.1", "--port", str(port))
    out, err = proc.communicate(timeout=WAIT)
    assert_one_line_error(proc, out, err, "connection refused", "127.0.0.1:%d" % port)


def test_client_unknown_host_is_one_line_and_exit_one():
    proc = run_module("client", "no-such-host.invalid", "--port", "1")
    out, err = proc.communicate(timeout=WAIT)
    assert_one_line_error(proc, out, err, "unknown host", "no-such-host.invalid")


def test_serve_on_a_port_in_use_is_one_line_and_exit_one(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_module("serve", "--port", str(port), cwd=str(tmp_path))
        out, err = proc.communicate(timeout=WAIT)
    assert_one_line_error(proc, out, err, "already in use", "127.0.0.1:%d" % port)
    assert os.listdir(str(tmp_path)) == []


def test_client_of_a_server_that_leaves_mid_exchange_says_so(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        proc = run_module("client", "127.0.0.1", "--port", str(listener.getsockname()[1]))
        conn, _ = listener.accept()
        conn.close()
        out, err = proc.communicate(timeout=WAIT)
    assert_one_line_error(proc, out, err, "closed the connection", logged=True)


@pytest.mark.parametrize("flags", [["-v"], ["--log-level", "info"]])
def test_verbose_and_log_level_show_info_records_in_the_shared_format(example_server, flags):
    client = run_module("client", "127.0.0.1", "--port", example_server.group(2), *flags)
    out, err = client.communicate(timeout=WAIT)
    assert client.returncode == 0, err
    assert re.search(r"^\d{4}-\d\d-\d\d [\d:,]+ INFO protocompat\.messaging\S*: ", err, re.M), err


def test_client_sends_and_gets_large_files_showing_progress(example_server, tmp_path):
    root = example_server.group(3)
    payload = os.urandom(2 * 1024 * 1024 + 5)
    with open(os.path.join(root, "remote.bin"), "wb") as f:
        f.write(payload)
    work = tmp_path / "client"
    work.mkdir()
    (work / "local.bin").write_bytes(payload[::-1])
    client = run_module("client", "127.0.0.1", "--port", example_server.group(2),
                        "--send", "local.bin", "--get", "remote.bin", cwd=str(work))
    out, err = client.communicate(timeout=WAIT)
    assert client.returncode == 0, err
    for label in ("sending local.bin", "receiving remote.bin"):
        final = [line for line in out.splitlines() if label in line and "(100%)" in line]
        assert final, out
        assert re.search(r"2\.1 of 2\.1 MB \(100%\), [\d.]+ MB/s$", final[-1]), final
    assert (work / "remote.bin").read_bytes() == payload
    with open(os.path.join(root, "local.bin"), "rb") as f:
        assert f.read() == payload[::-1]


def test_small_files_are_moved_without_progress_lines(example_server, tmp_path):
    (tmp_path / "small.txt").write_text("small")
    client = run_module("client", "127.0.0.1", "--port", example_server.group(2),
                        "--send", "small.txt", cwd=str(tmp_path))
    out, err = client.communicate(timeout=WAIT)
    assert client.returncode == 0, err
    assert "client: sent small.txt (5 bytes)" in out and "%)" not in out


def test_example_server_refuses_a_pushed_file_outside_its_directory(example_server, node, tmp_path):
    outside = tmp_path.parent / ("pushed-outside-%s.txt" % tmp_path.name)
    (tmp_path / "src.txt").write_text("payload")
    loop = node("example-client")
    loop.start()
    connection = loop.connect("127.0.0.1", int(example_server.group(2)))
    sizes = concurrent.futures.Future()
    connection.send_file(str(tmp_path / "src.txt"), str(outside))
    connection.send_file(str(tmp_path / "src.txt"), "inside.txt")
    connection.get_response("size", lambda c, value: sizes.set_result(value), ("inside.txt",))
    assert sizes.result(WAIT) == len("payload")  # handled after both pushes
    assert not outside.exists()
    assert (tmp_path / "inside.txt").read_text() == "payload"


def test_client_asking_for_a_file_outside_the_server_directory_fails_with_one_line(example_server):
    client = run_module("client", "127.0.0.1", "--port", example_server.group(2),
                        "--get", "../outside.txt")
    out, err = client.communicate(timeout=WAIT)
    assert_one_line_error(client, out, err, "no file '../outside.txt'")
