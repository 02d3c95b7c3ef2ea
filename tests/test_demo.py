"""The README's demo command: every package's example servers and clients run and exit 0."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_TIMEOUT = 120


def test_demo_script_runs_every_package_demo(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path))  # the SAMP demo must not touch a real ~/.samp
    env.pop("SAMP_HUB", None)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "demo.py")], cwd=str(tmp_path),
                            env=env, capture_output=True, text=True, timeout=DEMO_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("katcp_compat", "samp_compat", "protocompat.messaging", "sockproto"):
        assert "==== %s ====" % name in result.stdout
    assert result.stdout.rstrip().endswith("all demos ran")
