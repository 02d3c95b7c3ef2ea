"""python -m sockproto: demo, serve and call, their options and their one-line errors."""
import json
import logging
import socket
import subprocess
import sys
from typing import List, Tuple

import pytest

from sockproto.__main__ import main

CLI_TIMEOUT = 30
SECRET = "cli-secret"
# A host name that never resolves (RFC 6761).
UNKNOWN_HOST = "no-such-host.invalid"


@pytest.fixture
def root_logger_restored():
    """main() sets up the root logger for its process: put it back for the other tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_demo_runs_exchanges_and_exits_zero(capsys, root_logger_restored):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "authentificate() -> True" in out
    assert '"status": 3' in out  # the request before authentification
    assert '{"answer": 42}' in out


def _start_server(*args: str) -> Tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "sockproto", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("sockproto listening on "):
        _stop(proc)
        raise AssertionError("server did not start: %r" % line)
    return proc, line.rsplit(" ", 1)[1].strip()


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(CLI_TIMEOUT)
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def serve():
    proc, address = _start_server("--secret", SECRET)
    try:
        yield address
    finally:
        _stop(proc)


@pytest.fixture
def serve_open():
    proc, address = _start_server()
    try:
        yield address
    finally:
        _stop(proc)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sockproto", *args],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT)


def _call(address: str, *args: str) -> Tuple[int, str]:
    result = _run("call", address, *args)
    return result.returncode, result.stdout


def _one_error_line(result: subprocess.CompletedProcess, command: str) -> str:
    """The failed command's only stderr line, checked to be one line without a traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m sockproto %s: " % command), lines
    return lines[0]


def _free_port() -> int:
    """A port nobody listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- call --------------------------------------------------------------------------------

def test_call_writes_then_reads_from_server(serve):
    assert _call(serve, "20", "3", '{"a": 1}', "--secret", SECRET) == \
        (0, '{"status": 0, "service_id": 21, "data_id": 3, "data": true}\n')
    assert _call(serve, "10", "3", "null", "--secret", SECRET) == \
        (0, '{"status": 0, "service_id": 11, "data_id": 3, "data": {"a": 1}}\n')


def test_call_to_open_server_needs_no_secret(serve_open):
    assert _call(serve_open, "30", "0", '"echo"') == \
        (0, '{"status": 0, "service_id": 31, "data_id": 0, "data": "echo"}\n')


def test_call_refused_for_lack_of_authentification_exits_1_saying_so(serve):
    result = _run("call", serve, "30", "0", '"echo"')
    line = _one_error_line(result, "call")
    assert "needs authentification" in line and "--secret" in line
    assert json.loads(result.stdout)["status"] == 3  # the server's answer is still printed


def test_call_with_wrong_secret_exits_1_saying_authentification_failed(serve):
    line = _one_error_line(_run("call", serve, "30", "0", '"echo"', "--secret", "wrong"), "call")
    assert "authentification" in line and "failed" in line


def test_call_with_invalid_json_is_a_usage_error():
    result = _run("call", "127.0.0.1:1", "30", "0", "{not json")
    assert result.returncode == 2
    assert "invalid JSON data" in result.stderr and "Traceback" not in result.stderr


def test_call_to_refused_port_says_connection_refused():
    # The timeout is long: the refusal is reported when it happens, not when the wait ends.
    result = _run("call", "127.0.0.1:%d" % _free_port(), "30", "0", "null", "--timeout", "60")
    line = _one_error_line(result, "call")
    assert "connection refused" in line and "127.0.0.1" in line


def test_call_to_unknown_host_says_unknown_host():
    line = _one_error_line(_run("call", "%s:1234" % UNKNOWN_HOST, "30", "0", "null"), "call")
    assert "unknown host" in line and UNKNOWN_HOST in line


def test_call_verbose_logs_the_connection_in_the_common_format(serve_open):
    result = _run("call", serve_open, "30", "0", "null", "-v")
    assert result.returncode == 0
    assert " INFO sockproto.tcp.client: connected to " in result.stderr


def test_call_log_level_option_sets_the_level(serve):
    quiet = _run("call", serve, "30", "0", "null", "--secret", SECRET, "--log-level", "ERROR")
    debug = _run("call", serve, "30", "0", "null", "--secret", SECRET, "--log-level", "debug")
    assert quiet.returncode == debug.returncode == 0
    assert quiet.stderr == ""
    assert " DEBUG " in debug.stderr


# -- serve --------------------------------------------------------------------------------

def test_serve_on_port_in_use_says_so():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _one_error_line(_run("serve", "--port", str(port)), "serve")
    assert "already in use" in line and str(port) in line


def test_serve_on_unknown_host_says_unknown_host():
    line = _one_error_line(_run("serve", "--host", UNKNOWN_HOST), "serve")
    assert "unknown host" in line


def test_serve_listens_on_loopback_by_default(serve_open):
    assert serve_open.startswith("127.0.0.1:")


# -- help ------------------------------------------------------------------------------

def _option_lines(help_text: str) -> List[str]:
    """Each option's help entry (option strings and description) as one line."""
    entries: List[str] = []
    for line in help_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-"):
            entries.append(stripped)
        elif entries and line.startswith("    ") and stripped:
            entries[-1] += " " + stripped
        elif not stripped:
            entries.append("")
    return [entry for entry in entries if entry and not entry.startswith("-h, --help")]


@pytest.mark.parametrize("command", ["serve", "call", "demo"])
def test_every_option_shows_its_default(command):
    result = _run(command, "--help")
    assert result.returncode == 0
    options = _option_lines(result.stdout)
    assert any(entry.startswith("-v, --verbose") for entry in options)
    assert any(entry.startswith("--log-level") for entry in options)
    for entry in options:
        assert "(default:" in entry, entry
