"""The runnable example: ``python -m lib.messaging demo|serve|client``."""
import os
import re
import subprocess
import sys

from messaging_helpers import WAIT

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


def run_module(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "lib.messaging"] + list(args), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_demo_runs_the_whole_exchange_and_exits_zero():
    out, err = run_module("demo").communicate(timeout=WAIT)
    assert "client: action takeoff(z=1.5)" in out
    assert "server: drone id is 'copter01'" in out
    assert "client: got file animation.csv" in out
    assert out.rstrip().endswith("demo: exchange complete")


def test_demo_flag_is_the_same_as_the_demo_command():
    proc = run_module("--demo")
    out, _ = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0 and "exchange complete" in out


def test_client_and_server_commands_talk_across_processes():
    server = run_module("serve", "--host", "127.0.0.1", "--port", "0", stdin=subprocess.PIPE)
    try:
        first = server.stdout.readline()
        port = re.search(r"listening on 127\.0\.0\.1:(\d+)", first).group(1)
        client = run_module("client", "127.0.0.1", "--port", port)
        out, err = client.communicate(timeout=WAIT)
        assert client.returncode == 0, err
        assert "client: server time is" in out and "client: got file animation.csv" in out
    finally:
        server.terminate()
        server.communicate(timeout=WAIT)


def test_demo_runs_as_top_level_module_with_lib_on_the_path():
    proc = subprocess.Popen([sys.executable, "-m", "messaging", "demo"], cwd=os.path.join(ROOT, "lib"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("demo: exchange complete")
