"""Fixtures for hub tests: a hub with a private lockfile, and raw XML-RPC clients."""
import threading
import time
import xmlrpc.client

import pytest

from samp_compat.hub import SAMPHubServer
from samp_compat.standard_profile import XMLRPCServer
from samp_compat.xmlrpc import SafeTransport

WAIT = 10.0


@pytest.fixture
def private_env(tmp_path, monkeypatch):
    """HOME and SAMP_HUB inside a temporary directory."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    return tmp_path


@pytest.fixture
def make_hub(private_env):
    """Factory of started hubs with private lockfiles; all stopped at the end."""
    hubs = []

    def make(**kw):
        kw.setdefault("lockfile", str(private_env / ("lock-%d" % len(hubs))))
        kw.setdefault("web_profile", False)
        kw.setdefault("web_port", 0)
        hub = SAMPHubServer(**kw)
        hub.start()
        hubs.append(hub)
        return hub
    yield make
    for hub in hubs:
        hub.stop()


@pytest.fixture
def hub(make_hub):
    return make_hub()


@pytest.fixture
def make_client(hub):
    clients = []

    def make(target=None, **kw):
        client = RawClient(target or hub, **kw)
        clients.append(client)
        return client
    yield make
    for client in clients:
        client.close()


def hub_proxy(url):
    return xmlrpc.client.ServerProxy(url, transport=SafeTransport(timeout=WAIT), allow_none=True)


class RawClient:
    """A SAMP client made of a hub proxy and a callback server, recording every callback."""

    def __init__(self, hub, callable=True, name=None, on_call=None, on_notify=None):
        self._url = hub.params["samp.hub.xmlrpc.url"]
        self._local = threading.local()
        self._proxies = []
        self._proxies_lock = threading.Lock()
        reg = self.hub.register(hub.params["samp.secret"])
        self.key, self.id = reg["samp.private-key"], reg["samp.self-id"]
        self.hub_id = reg["samp.hub-id"]
        self.received = []
        self._cond = threading.Condition()
        self._on_call = on_call
        self._on_notify = on_notify
        self.server = None
        if callable:
            self.server = XMLRPCServer(pool_size=4, name="RawClient")
            self.server.register_function(self._notification, "samp.client.receiveNotification")
            self.server.register_function(self._call, "samp.client.receiveCall")
            self.server.register_function(self._response, "samp.client.receiveResponse")
            self.server.start()
            self.hub.setXmlrpcCallback(self.key, self.server.url)
        if name:
            self.hub.declareMetadata(self.key, {"samp.name": name})

    @property
    def hub(self):
        """The hub's ``samp.hub`` namespace through this thread's own proxy."""
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            proxy = self._local.proxy = hub_proxy(self._url)
            with self._proxies_lock:
                self._proxies.append(proxy)
        return proxy.samp.hub

    def _record(self, item):
        with self._cond:
            self.received.append(item)
            self._cond.notify_all()

    def _notification(self, key, sender, message):
        assert key == self.key
        if self._on_notify:
            self._on_notify(sender, message)
        self._record(("notification", sender, message))
        return ""

    def _call(self, key, sender, msg_id, message):
        assert key == self.key
        self._record(("call", sender, msg_id, message))
        if self._on_call:
            self._on_call(self, sender, msg_id, message)
        return ""

    def _response(self, key, responder, tag, response):
        self._record(("response", responder, tag, response))
        return ""

    def subscribe(self, *mtypes):
        self.hub.declareSubscriptions(self.key, {m: {} for m in mtypes})

    def wait_for(self, predicate, timeout=WAIT):
        """Return the received items matching ``predicate`` once there is one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [item for item in self.received if predicate(item)]
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self._cond.wait(left)

    def wait_mtype(self, mtype, timeout=WAIT):
        return self.wait_for(lambda item: item[0] in ("notification", "call")
                             and item[-1].get("samp.mtype") == mtype, timeout)

    def close(self):
        try:
            self.hub.unregister(self.key)
        except (xmlrpc.client.Fault, OSError):
            pass
        if self.server is not None:
            assert self.server.stop(WAIT)
            self.server = None
        with self._proxies_lock:
            for proxy in self._proxies:
                proxy("close")()
        if self.server is not None:
            assert self.server.stop(WAIT)


def reply_ok(result=None):
    def on_call(client, sender, msg_id, message):
        client.hub.reply(client.key, msg_id, {"samp.status": "samp.ok",
                                              "samp.result": result or {}})
    return on_call
