"""The samp-compat-hub command line and ``python -m samp_compat``."""
import os
import subprocess
import sys

import pytest

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
