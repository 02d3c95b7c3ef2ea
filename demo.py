"""Run each package's demo: example servers and a client talking to them, on loopback.

Usage: ``python demo.py`` (after ``pip install .``). Exits non-zero if any demo fails.
"""
import subprocess
import sys

DEMO_TIMEOUT = 60  # seconds one demo may take

DEMOS = [
    ("katcp_compat", [sys.executable, "-m", "katcp_compat", "--demo"]),
    ("samp_compat", [sys.executable, "-m", "samp_compat", "--demo"]),
    ("protocompat.messaging", [sys.executable, "-m", "protocompat.messaging", "demo"]),
    ("sockproto", [sys.executable, "-m", "sockproto", "demo"]),
]


def main() -> int:
    failed = []
    for name, command in DEMOS:
        print("==== %s ====" % name, flush=True)
        try:
            code = subprocess.run(command, timeout=DEMO_TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        if code != 0:
            failed.append("%s (%s)" % (name, code))
    if failed:
        print("failed demos:", ", ".join(failed))
        return 1
    print("all demos ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
