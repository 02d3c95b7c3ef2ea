"""The hub holds as many clients as descriptors allow, and survives running out of them."""
import os
import select
import socket
import subprocess
import sys
import textwrap
import threading
import xmlrpc.client

import pytest

from samp_compat.standard_profile import XMLRPCServer

from _hub_support import WAIT, hub, hub_proxy, make_client, make_hub, private_env  # noqa: F401

NOTE = {"samp.mtype": "test.note", "samp.params": {"n": "1"}}


class SharedEndpoint:
    """One callback server for many registered clients; records who got a notification."""

    def __init__(self):
        self.received = set()
        self.cond = threading.Condition()
        self.server = XMLRPCServer(name="SharedEndpoint")
        self.server.register_function(self._notification, "samp.client.receiveNotification")
        self.server.start()

    def _notification(self, key, sender, message):
        with self.cond:
            self.received.add(key)
            self.cond.notify_all()
        return ""

    def wait_for(self, keys):
        with self.cond:
            return self.cond.wait_for(lambda: self.received >= keys, WAIT)

    def stop(self):
        assert self.server.stop(WAIT)


@pytest.fixture
def endpoint():
    shared = SharedEndpoint()
    yield shared
    shared.stop()


@pytest.fixture
def proxies():
    made = []

    def make(url):
        proxy = hub_proxy(url)
        made.append(proxy)
        return proxy
    yield make
    for proxy in made:
        proxy("close")()


def test_300_clients_register_and_a_notify_all_reaches_every_one(
        hub, endpoint, proxies, make_client):
    url, secret = hub.params["samp.hub.xmlrpc.url"], hub.params["samp.secret"]
    keys = set()
    for _ in range(300):  # each keeps its connection to the hub open
        samp_hub = proxies(url).samp.hub
        key = samp_hub.register(secret)["samp.private-key"]
        samp_hub.setXmlrpcCallback(key, endpoint.server.url)
        samp_hub.declareSubscriptions(key, {"test.note": {}})
        keys.add(key)
    sender = make_client()
    assert len(sender.hub.notifyAll(sender.key, NOTE)) == 300
    assert endpoint.wait_for(keys)


def test_260_idle_sockets_do_not_stop_a_new_client_from_registering(hub, make_client):
    host, port = hub.params["samp.hub.xmlrpc.url"].rsplit("/", 1)[-1].rsplit(":", 1)
    idle = []
    try:
        for _ in range(260):
            idle.append(socket.create_connection((host, int(port)), timeout=WAIT))
        client = make_client(name="late")
        assert client.id in client.hub.getRegisteredClients(make_client().key)
        body = xmlrpc.client.dumps((), "samp.hub.ping").encode()
        idle[0].sendall(b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert idle[0].recv(100).startswith(b"HTTP/1.1 200")  # the idle ones are still held
    finally:
        for sock in idle:
            sock.close()


_HUB_SCRIPT = textwrap.dedent("""
    import logging, os, resource, sys
    from samp_compat.hub import SAMPHubServer

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    hub = SAMPHubServer(lockfile=sys.argv[1], web_profile=False)
    hub.start()
    spare = int(sys.argv[2])
    open_now = len(os.listdir("/proc/self/fd"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + spare, hard))
    print(hub.params["samp.hub.xmlrpc.url"], hub.params["samp.secret"], flush=True)
    sys.stdin.readline()
    hub.stop()
    print("stopped", flush=True)
""")


def _line(stream, timeout=WAIT):
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().strip() if ready else ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_NOFILE")
def test_hub_out_of_descriptors_closes_idle_connections_and_keeps_registering(
        private_env, proxies):
    spare = 20  # descriptors the hub has left; the test opens three times as many connections
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen(
        [sys.executable, "-c", _HUB_SCRIPT, str(private_env / "hub.lock"), str(spare)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        text=True)
    try:
        url, secret = _line(process.stdout).split()
        hubs = [proxies(url).samp.hub for _ in range(3 * spare)]
        keys = [samp_hub.register(secret)["samp.private-key"] for samp_hub in hubs]
        # The first clients' connections were closed for the later ones; they reconnect.
        for samp_hub, key in zip(hubs, keys):
            assert samp_hub.ping(key) == "1"
        assert len(hubs[0].getRegisteredClients(keys[0])) == len(keys)  # the others + the hub
        process.stdin.write("\n")
        process.stdin.flush()
        assert _line(process.stdout) == "stopped"
        assert process.wait(WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT)
        errors = process.stderr.read()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    assert "out of file descriptors; closing" in errors
