"""protocompat.netutil.Listener and Connector: accepting without a cap, connecting with retries."""
import os
import select
import socket
import subprocess
import sys
import textwrap
import threading

import pytest
from netutil_helpers import WAIT, started_loop

from protocompat.netutil import LOOPBACK, Connector, Listener, loopback_listener


@pytest.fixture
def loop():
    lp = started_loop()
    yield lp
    assert lp.stop(WAIT)


class Accepted:
    def __init__(self):
        self.socks = []
        self.cond = threading.Condition()

    def __call__(self, sock, address):
        with self.cond:
            self.socks.append(sock)
            self.cond.notify_all()

    def wait(self, count, timeout=WAIT):
        with self.cond:
            return self.cond.wait_for(lambda: len(self.socks) >= count, timeout)

    def close(self):
        for sock in self.socks:
            sock.close()


def close_listener(loop, listener):
    listener.close()
    done = threading.Event()
    loop.call_soon(done.set)
    assert done.wait(WAIT)


def test_listener_is_bound_when_created_and_reports_its_address(loop):
    accepted = Accepted()
    listener = Listener(loop, LOOPBACK, 0, accepted)
    host, port = listener.address
    assert host == LOOPBACK and port > 0
    listener.start()
    with socket.create_connection(listener.address, timeout=WAIT):
        assert accepted.wait(1)
    accepted.close()
    close_listener(loop, listener)


def test_listener_on_a_port_in_use_raises_at_creation(loop):
    with loopback_listener() as taken:
        with pytest.raises(OSError):
            Listener(loop, LOOPBACK, taken.getsockname()[1], Accepted(), reuse_address=False)


def test_accepted_sockets_are_non_blocking_with_nodelay(loop):
    accepted = Accepted()
    listener = Listener(loop, LOOPBACK, 0, accepted)
    listener.start()
    with socket.create_connection(listener.address, timeout=WAIT):
        assert accepted.wait(1)
        sock = accepted.socks[0]
        assert sock.getblocking() is False
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    accepted.close()
    close_listener(loop, listener)


def test_listener_holds_hundreds_of_simultaneous_connections(loop):
    accepted = Accepted()
    listener = Listener(loop, LOOPBACK, 0, accepted)
    listener.start()
    clients = []
    try:
        for _ in range(600):  # more than any fixed cap or a 128 backlog would take at once
            clients.append(socket.create_connection(listener.address, timeout=WAIT))
        assert accepted.wait(600, timeout=10)
    finally:
        for client in clients:
            client.close()
        accepted.close()
    close_listener(loop, listener)


def test_a_raising_on_accept_closes_that_connection_only(loop, caplog):
    good = Accepted()
    calls = []

    def on_accept(sock, address):
        calls.append(sock)
        if len(calls) == 1:
            raise RuntimeError("refused by the owner")
        good(sock, address)

    listener = Listener(loop, LOOPBACK, 0, on_accept)
    listener.start()
    with socket.create_connection(listener.address, timeout=WAIT) as first:
        first.settimeout(WAIT)
        assert first.recv(1) == b""  # closed by the listener
        with socket.create_connection(listener.address, timeout=WAIT):
            assert good.wait(1)
    assert "refused by the owner" in caplog.text
    good.close()
    close_listener(loop, listener)


def test_closed_listener_refuses_new_connections(loop):
    listener = Listener(loop, LOOPBACK, 0, Accepted())
    listener.start()
    address = listener.address
    close_listener(loop, listener)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=WAIT).close()


_SHORTAGE_SCRIPT = textwrap.dedent("""
    import os, resource, sys
    from protocompat.netutil import LOOPBACK, Listener, SelectorLoop

    TARGET = int(sys.argv[1])
    loop = SelectorLoop()
    held = []
    state = {"accepted": 0, "shortages": 0}

    def on_accept(sock, address):
        held.append(sock)
        state["accepted"] += 1
        if state["accepted"] == TARGET:
            print("accepted %d after %d shortage(s)" % (TARGET, state["shortages"]), flush=True)

    def on_shortage():
        state["shortages"] += 1
        freed = len(held)
        while held:
            held.pop().close()
        return freed

    listener = Listener(loop, LOOPBACK, 0, on_accept, on_shortage=on_shortage)
    listener.start()
    loop.start()
    open_now = len(os.listdir("/proc/self/fd"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 5, hard))
    print(listener.address[1], flush=True)
    sys.stdin.readline()
    loop.stop(5)
""")


def _read_line(proc, timeout):
    """One line of the child's output, or "" if none comes within ``timeout``."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().decode().strip() if ready else ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_NOFILE")
def test_listener_survives_running_out_of_descriptors():
    target = 20  # far more than the 5 descriptors the server has left
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    server = subprocess.Popen([sys.executable, "-c", _SHORTAGE_SCRIPT, str(target)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0)
    clients = []
    try:
        port = int(_read_line(server, WAIT))
        for _ in range(target):
            clients.append(socket.create_connection((LOOPBACK, port), timeout=WAIT))
        verdict = _read_line(server, WAIT)
        assert verdict.startswith("accepted %d after" % target)
        assert not verdict.endswith("after 0 shortage(s)")
    finally:
        for client in clients:
            client.close()
        server.stdin.write(b"\n")
        server.stdin.close()
        try:
            server.wait(WAIT)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(WAIT)
            server.stdout.close()
    assert server.returncode == 0


# -- Connector -----------------------------------------------------------------

class Outcome:
    def __init__(self):
        self.connected = []
        self.failures = []
        self.cond = threading.Condition()

    def on_connect(self, sock):
        with self.cond:
            self.connected.append(sock)
            self.cond.notify_all()

    def on_failure(self, error, retrying):
        with self.cond:
            self.failures.append((error, retrying))
            self.cond.notify_all()

    def wait(self, predicate, timeout=WAIT):
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)


def test_connector_hands_over_a_connected_configured_socket(loop):
    accepted = Accepted()
    listener = Listener(loop, LOOPBACK, 0, accepted)
    listener.start()
    outcome = Outcome()
    Connector(loop, listener.address, outcome.on_connect, outcome.on_failure).start()
    assert outcome.wait(lambda o: o.connected)
    sock = outcome.connected[0]
    assert sock.getpeername()[:2] == listener.address
    assert sock.getblocking() is False
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert accepted.wait(1)
    sock.close()
    accepted.close()
    close_listener(loop, listener)


_CONNECT_SHORTAGE_SCRIPT = textwrap.dedent("""
    import errno, os, resource, sys, threading
    from protocompat.netutil import LOOPBACK, Connector, SelectorLoop

    loop = SelectorLoop()
    loop.start()
    failed = threading.Event()
    errors = []

    def on_failure(error, retrying):
        errors.append(error)
        failed.set()

    def on_connect(sock):
        errors.append("connected")
        sock.close()
        failed.set()

    connector = Connector(loop, (LOOPBACK, int(sys.argv[1])), on_connect, on_failure)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
    filler = []
    while True:  # take every descriptor left
        try:
            filler.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    connector.start()
    if not failed.wait(10):
        print("nothing reported")
    else:
        print("failure: %s" % errno.errorcode.get(getattr(errors[0], "errno", None), errors[0]))
    for fd in filler:
        os.close(fd)
    loop.stop(5)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_NOFILE")
def test_connector_reports_running_out_of_descriptors_as_a_failure():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    with loopback_listener() as listener:
        result = subprocess.run([sys.executable, "-c", _CONNECT_SHORTAGE_SCRIPT,
                                 str(listener.getsockname()[1])],
                                capture_output=True, env=env, timeout=WAIT * 3)
    assert result.stdout.decode().strip() == "failure: EMFILE", result.stderr.decode()[-2000:]
    assert result.returncode == 0


def _free_port():
    with loopback_listener() as probe:
        return probe.getsockname()[1]


def test_connector_reports_refusal_once_without_retry(loop):
    outcome = Outcome()
    connector = Connector(loop, (LOOPBACK, _free_port()), outcome.on_connect, outcome.on_failure)
    connector.start()
    assert outcome.wait(lambda o: o.failures)
    error, retrying = outcome.failures[0]
    assert isinstance(error, ConnectionRefusedError) or getattr(error, "errno", None) == 111
    assert retrying is False
    assert not connector.connecting
    assert str(connector.address[1]) in str(error)


def test_connector_retries_with_backoff_until_the_server_appears(loop):
    port = _free_port()
    outcome = Outcome()
    connector = Connector(loop, (LOOPBACK, port), outcome.on_connect, outcome.on_failure,
                          retry=True, retry_delay=0.01, backoff=2.0, max_retry_delay=0.05)
    connector.start()
    assert outcome.wait(lambda o: len(o.failures) >= 3)
    assert all(retrying for _, retrying in outcome.failures)
    accepted = Accepted()
    listener = Listener(loop, LOOPBACK, port, accepted)
    listener.start()
    assert outcome.wait(lambda o: o.connected)
    assert connector.failures == 0  # reset by the success
    outcome.connected[0].close()
    assert accepted.wait(1)
    accepted.close()
    close_listener(loop, listener)


def test_connector_backoff_grows_by_the_factor_up_to_the_cap(loop):
    connector = Connector(loop, (LOOPBACK, 1), lambda sock: None, retry_delay=0.5, backoff=2.0,
                          max_retry_delay=3.0)
    delays = []
    for failures in range(1, 6):
        connector.failures = failures
        delays.append(connector.next_delay())
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_connector_times_out_when_nobody_answers(loop):
    # A listener whose accept queue is full leaves further connections unanswered.
    with socket.socket() as full:
        full.bind((LOOPBACK, 0))
        full.listen(0)
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(full.getsockname())
                fillers.append(filler)
            outcome = Outcome()
            connector = Connector(loop, full.getsockname()[:2], outcome.on_connect,
                                  outcome.on_failure, timeout=0.2)
            connector.start()
            assert outcome.wait(lambda o: o.failures or o.connected)
            for sock in outcome.connected:
                sock.close()
            if outcome.connected:
                pytest.skip("this kernel answered a connection to a full accept queue")
            error, retrying = outcome.failures[0]
            assert isinstance(error, socket.timeout) and "timed out" in str(error)
        finally:
            for filler in fillers:
                filler.close()


def test_cancelled_connector_stops_retrying_and_leaves_no_socket(loop):
    outcome = Outcome()
    connector = Connector(loop, (LOOPBACK, _free_port()), outcome.on_connect, outcome.on_failure,
                          retry=True, retry_delay=0.01)
    connector.start()
    assert outcome.wait(lambda o: len(o.failures) >= 2)
    connector.cancel()
    done = threading.Event()
    loop.call_soon(done.set)
    assert done.wait(WAIT)
    count = len(outcome.failures)
    later = threading.Event()
    loop.call_later(0.1, later.set)
    assert later.wait(WAIT)
    assert len(outcome.failures) == count
    assert not connector.connecting
