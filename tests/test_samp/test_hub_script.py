"""The samp-compat-hub command line and ``python -m samp_compat``."""
import os
import re
import subprocess
import sys

import pytest

from protocompat.netutil import LOOPBACK, loopback_listener

from samp_compat.hub_script import hub_script

from _hub_support import private_env  # noqa: F401

RUN_TIMEOUT = 30


def run(args, env_dir):
    env = dict(os.environ, HOME=str(env_dir))
    env.pop("SAMP_HUB", None)
    return subprocess.run([sys.executable, "-m", "samp_compat"] + args, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, env=env, cwd=str(env_dir))


def test_help_lists_the_samp_hub_options(tmp_path):
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for option in ("--secret", "--addr", "--port", "--lockfile", "--no-web-profile",
                   "--pool-size", "--timeout", "--client-timeout", "--log-level",
                   "--log-output", "--label", "--multi"):
        assert option in result.stdout


def test_help_shows_the_demo_and_every_default(tmp_path):
    result = run(["-h"], tmp_path)
    assert result.returncode == 0
    # Python 3.13 shows "-k, --secret CODE" where older ones show "-k CODE, --secret CODE".
    text = re.sub(r"-(\w) [A-Z]+, --", r"-\1, --", " ".join(result.stdout.split()))
    for fragment in ("--demo", "-k, --secret CODE custom secret code (default: a random one)",
                     "-d, --addr ADDR listening address (or IP) (default: 127.0.0.1)",
                     "(0: any free port) (default: 0)", "-f, --lockfile FILE custom "
                     "lockfile (default: $SAMP_HUB", "pool size (default: 20)",
                     "Hub inactivity timeout (0: never) (default: 0)",
                     "client inactivity timeout (0: never) (default: 0)", "-v, --verbose",
                     "(default: INFO)", "(default: standard error)", "(default: none)",
                     "Web Profile port (0: any free port) (default: 21012)"):
        assert fragment in text, fragment


def test_port_in_use_is_one_line_and_status_1(tmp_path):
    with loopback_listener() as taken:
        port = taken.getsockname()[1]
        result = run(["-f", str(tmp_path / "lock"), "-w", "-p", str(port)], tmp_path)
    assert result.returncode == 1
    assert result.stderr == "samp-compat-hub: address %s:%d is already in use\n" % (LOOPBACK,
                                                                                     port)
    assert not (tmp_path / "lock").exists()


def test_unknown_host_is_one_line_and_status_1(tmp_path):
    result = run(["-f", str(tmp_path / "lock"), "-w", "-d", "nonexistent.invalid"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("samp-compat-hub: unknown host 'nonexistent.invalid'")
    assert len(result.stderr.splitlines()) == 1


def test_verbose_logs_in_the_one_format(tmp_path):
    result = run(["-f", str(tmp_path / "lock"), "-w", "-t", "1", "-vv"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any(" DEBUG samp_compat" in line for line in lines), lines
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ samp_compat\S*: ", line)
               for line in lines), lines


def test_sigterm_stops_the_hub_and_removes_its_lockfile(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("SAMP_HUB", None)
    lock = tmp_path / "lock"
    proc = subprocess.Popen([sys.executable, "-m", "samp_compat", "-f", str(lock), "-w"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(tmp_path))
    try:
        assert "Hub running at" in proc.stderr.readline() + proc.stderr.readline()
        proc.terminate()
        assert proc.wait(RUN_TIMEOUT) == 0
        assert not lock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(RUN_TIMEOUT)
        proc.stdout.close()
        proc.stderr.close()


def test_hub_with_inactivity_timeout_exits_and_removes_its_lockfile(tmp_path):
    lock = tmp_path / "lock"
    log = tmp_path / "hub.log"
    result = run(["-f", str(lock), "-w", "-t", "1", "-L", "debug", "-O", str(log),
                  "-l", "cli-hub"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Hub running at http://127.0.0.1:" in log.read_text()
    assert not lock.exists()


def test_bad_option_is_a_usage_error(tmp_path):
    result = run(["--no-such-option"], tmp_path)
    assert result.returncode == 2 and "usage: samp-compat-hub" in result.stderr


def test_hub_script_runs_for_the_given_time(private_env, caplog):
    lock = private_env / "lock"
    hub_script(timeout=0.2, argv=["-f", str(lock), "-w", "-k", "s3cret"])
    assert not lock.exists()
    assert "Hub running at" in caplog.text


def test_demo_sends_a_table_and_exits_zero(tmp_path):
    result = run(["--demo"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "receiver: table.load.votable from cli#1" in result.stdout
    assert "hub stopped" in result.stdout


def test_log_level_option_sets_the_module_logger(private_env, monkeypatch):
    import logging

    import samp_compat.hub_script as script
    replacement = logging.getLogger("samp_compat.test_hub_script")
    monkeypatch.setattr(script, "log", replacement)
    monkeypatch.setattr(replacement, "level", logging.NOTSET)
    hub_script(timeout=0.2, argv=["-f", str(private_env / "lock"), "-w", "-L", "CRITICAL"])
    assert replacement.level == logging.CRITICAL



@pytest.mark.parametrize("level", ["WARN", "FATAL", "NOTSET", "debug"])
def test_every_logging_level_name_is_accepted(private_env, monkeypatch, level):
    import logging

    import samp_compat.hub_script as script
    replacement = logging.getLogger("samp_compat.test_hub_script_levels")
    monkeypatch.setattr(script, "log", replacement)
    monkeypatch.setattr(replacement, "level", logging.INFO)
    hub_script(timeout=0.1, argv=["-f", str(private_env / "lock"), "-w", "-L", level])
    assert replacement.level == logging.getLevelName(level.upper())
