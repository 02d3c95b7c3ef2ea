"""The suite-wide check: a test that leaves a thread or socket behind fails."""
import os

import pytest

CONFTEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conftest.py")


@pytest.fixture(autouse=True)
def short_grace(monkeypatch):
    monkeypatch.setenv("PROTOCOMPAT_LEAK_GRACE", "0.5")


def _run(pytester, body):
    with open(CONFTEST, encoding="utf-8") as f:
        pytester.makeconftest(f.read())
    pytester.makepyfile(test_subject=body)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")


def test_leftover_thread_fails_the_test(pytester):
    result = _run(pytester, """
import threading
stop = threading.Event()

def test_leaks_a_thread():
    threading.Thread(target=stop.wait, name="leaky-worker", daemon=True).start()
""")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*threads left running: leaky-worker*"])


def test_leftover_socket_fails_the_test(pytester):
    result = _run(pytester, """
import socket
kept = []

def test_leaks_a_socket():
    kept.append(socket.socket())
""")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 socket(s) left open*"])


def test_clean_test_passes(pytester):
    result = _run(pytester, """
import socket, threading

def test_clean():
    with socket.socket():
        pass
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
""")
    result.assert_outcomes(passed=1)


def test_allow_leaks_marker_skips_the_check(pytester):
    result = _run(pytester, """
import socket, pytest
kept = []

@pytest.mark.allow_leaks("third-party peer")
def test_marked():
    kept.append(socket.socket())
""")
    result.assert_outcomes(passed=1)
