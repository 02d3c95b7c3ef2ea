"""Checks applied to every test: no thread or socket may outlive it."""
import os
import threading
import time

import pytest

pytest_plugins = ["pytester"]

# Seconds a finished test's threads get to end.
LEAK_GRACE = float(os.environ.get("PROTOCOMPAT_LEAK_GRACE", "5"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "allow_leaks(reason): the test uses a real third-party peer whose threads or sockets "
        "it cannot stop; the leak check is skipped",
    )


def _socket_inodes():
    """Inodes of this process's open sockets (Linux only, else None)."""
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        return None
    found = set()
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def _wait_threads_gone(before, deadline):
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() >= deadline:
            return extra
        extra[0].join(max(0.0, min(0.05, deadline - time.monotonic())))


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail the test if it leaves a thread or a socket behind."""
    if request.node.get_closest_marker("allow_leaks"):
        yield
        return
    threads_before = set(threading.enumerate())
    sockets_before = _socket_inodes()
    yield
    deadline = time.monotonic() + LEAK_GRACE
    extra_threads = _wait_threads_gone(threads_before, deadline)
    problems = []
    if extra_threads:
        problems.append("threads left running: %s" % ", ".join(sorted(t.name for t in extra_threads)))
    if sockets_before is not None:
        extra_sockets = (_socket_inodes() or set()) - sockets_before
        if extra_sockets:
            problems.append("%d socket(s) left open" % len(extra_sockets))
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
