"""python -m sockproto: demo, serve and call."""
import json
import subprocess
import sys

import pytest

from sockproto.__main__ import main

CLI_TIMEOUT = 30


def test_demo_runs_exchanges_and_exits_zero(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "authentificate() -> True" in out
    assert '"status": 3' in out  # the request before authentification
    assert '{"answer": 42}' in out


@pytest.fixture
def serve():
    proc = subprocess.Popen([sys.executable, "-m", "sockproto", "serve", "--port", "0",
                             "--secret", "cli-secret"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("sockproto listening on "), line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(CLI_TIMEOUT)
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _call(address, *args):
    result = subprocess.run([sys.executable, "-m", "sockproto", "call", address, *args],
                            capture_output=True, text=True, timeout=CLI_TIMEOUT)
    return result.returncode, result.stdout


def test_call_writes_then_reads_from_server(serve):
    assert _call(serve, "20", "3", '{"a": 1}', "--secret", "cli-secret") == \
        (0, '{"status": 0, "service_id": 21, "data_id": 3, "data": true}\n')
    assert _call(serve, "10", "3", "null", "--secret", "cli-secret") == \
        (0, '{"status": 0, "service_id": 11, "data_id": 3, "data": {"a": 1}}\n')


def test_call_without_secret_prints_auth_required(serve):
    code, out = _call(serve, "30", "0", '"echo"')
    assert code == 0 and json.loads(out)["status"] == 3


def test_call_with_wrong_secret_fails(serve):
    assert _call(serve, "30", "0", '"echo"', "--secret", "wrong")[0] == 1


def test_call_with_invalid_json_fails(serve):
    assert _call(serve, "30", "0", "{not json")[0] == 2
