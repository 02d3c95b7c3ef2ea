"""SAMPClient: construction, bindings, the callable endpoint and its safety."""
import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import xmlrpc.client

import pytest

import samp_compat
from samp_compat import SAMPClient, SAMPClientError, SAMPHubProxy

from _xxe_payloads import SECRET_MARK, _definitions
from samp_client_support import call_and_wait, Recorder, make_client, hub, samp_env  # noqa: F401


@pytest.fixture
def started_client():
    """Factory of started SAMPClients (not registered), stopped at the end."""
    made = []

    def make(**kwargs):
        client = SAMPClient(SAMPHubProxy(), **kwargs)
        client.start()
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


def _post(url, body, timeout=10.0):
    """POST raw bytes to an http:// endpoint; return (status, body)."""
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", "/", body, {"Content-Type": "text/xml"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_name_and_description_go_into_metadata():
    client = SAMPClient(SAMPHubProxy(), name="n", description="d", metadata={"k": "v"},
                        callable=False)
    assert client._metadata == {"k": "v", "samp.name": "n", "samp.description.text": "d"}


def test_not_callable_client_refuses_bindings():
    client = SAMPClient(SAMPHubProxy(), callable=False)
    with pytest.raises(SAMPClientError, match="not callable"):
        client.bind_receive_notification("x.y", lambda *a: None)
    with pytest.raises(SAMPClientError, match="not callable"):
        client.bind_receive_response("tag", lambda *a: None)


def test_not_callable_client_has_no_endpoint_and_runs():
    client = SAMPClient(SAMPHubProxy(), callable=False)
    client.start()
    assert client.is_running and client.client is None
    client.stop()
    assert not client.is_running


def test_register_without_connected_hub_raises():
    client = SAMPClient(SAMPHubProxy(), callable=False)
    with pytest.raises(SAMPClientError, match="not connected"):
        client.register()


def test_binding_before_registration_without_declare_is_kept(started_client):
    client = started_client()
    client.bind_receive_call("x.y", lambda *a: None, declare=False)
    assert "x.y" in client._call_bindings


def test_binding_with_declare_before_registration_raises(started_client):
    client = started_client()
    with pytest.raises(SAMPClientError, match="declare subscriptions"):
        client.bind_receive_notification("x.y", lambda *a: None)


def test_endpoint_listens_on_loopback_by_default(started_client):
    client = started_client()
    assert client._xmlrpcAddr.startswith("http://127.0.0.1:")
    assert client._port != 0


def test_endpoint_answers_introspection(started_client):
    client = started_client()
    proxy = xmlrpc.client.ServerProxy(client._xmlrpcAddr)
    try:
        methods = proxy.system.listMethods()
    finally:
        proxy("close")()
    assert {"samp.client.receiveNotification", "samp.client.receiveCall",
            "samp.client.receiveResponse"} <= set(methods)


def test_endpoint_ignores_messages_with_wrong_private_key(started_client):
    client = started_client()
    rec = Recorder()
    client.bind_receive_notification("x.y", rec, declare=False)
    client._private_key = "right"
    proxy = xmlrpc.client.ServerProxy(client._xmlrpcAddr)
    try:
        assert proxy.samp.client.receiveNotification(
            "wrong", "cli#1", {"samp.mtype": "x.y", "samp.params": {}}) == ""
        assert proxy.samp.client.receiveNotification(
            "right", "cli#1", {"samp.mtype": "x.y", "samp.params": {}}) == ""
    finally:
        proxy("close")()
    assert len(rec.wait_for(1)) == 1 and rec.calls[0][0] == "right"


def test_wildcard_binding_catches_specific_mtype(started_client):
    client = started_client()
    rec = Recorder()
    client.bind_receive_notification("table.*", rec, declare=False)
    client._private_key = "k"
    client.receive_notification("k", "cli#1", {"samp.mtype": "table.load.votable",
                                               "samp.params": {"url": "u"}, "x": "1"})
    # a 5-argument-free callable (Recorder) is called with 6 arguments
    assert rec.wait_for(1)[0] == ("k", "cli#1", None, "table.load.votable", {"url": "u"},
                                  {"x": "1"})


def test_five_argument_notification_binding_gets_five_arguments(started_client):
    client = started_client()
    got = []
    client.bind_receive_notification("a.b", lambda k, s, m, p, e: got.append((k, s, m, p, e)),
                                     declare=False)
    client._private_key = "k"
    client.receive_notification("k", "s", {"samp.mtype": "a.b", "samp.params": {}})
    assert got == [("k", "s", "a.b", {}, {})]


def test_subclass_override_of_receive_notification_is_served(started_client):
    got = []

    class Mine(SAMPClient):
        def receive_notification(self, private_key, sender_id, message):
            got.append(message["samp.mtype"])
            return "mine"

    client = Mine(SAMPHubProxy())
    client.start()
    try:
        proxy = xmlrpc.client.ServerProxy(client._xmlrpcAddr)
        try:
            assert proxy.samp.client.receiveNotification("k", "s", {"samp.mtype": "q.r"}) == "mine"
        finally:
            proxy("close")()
    finally:
        client.stop()
    assert got == ["q.r"]


def test_client_env_get_is_not_bound_by_default():
    client = SAMPClient(SAMPHubProxy(), callable=False)
    assert "client.env.get" not in client._call_bindings
    assert "samp.app.ping" in client._call_bindings


def test_client_env_get_answers_once_bound_explicitly(hub, make_client, monkeypatch):
    monkeypatch.setenv("SAMP_COMPAT_TEST_VAR", "value-1")
    monkeypatch.delenv("SAMP_COMPAT_UNSET_VAR", raising=False)
    a = make_client()
    b = make_client()
    b.bind_receive_call("client.env.get", b.client._client_env_get)
    found = call_and_wait(hub, a, b.get_public_id(), {
        "samp.mtype": "client.env.get", "samp.params": {"name": "SAMP_COMPAT_TEST_VAR"}})
    assert found == {"samp.status": "samp.ok", "samp.result": {"value": "value-1"}}
    missing = call_and_wait(hub, a, b.get_public_id(), {
        "samp.mtype": "client.env.get", "samp.params": {"name": "SAMP_COMPAT_UNSET_VAR"}})
    assert missing["samp.status"] == "samp.warning"
    assert missing["samp.result"] == {"value": ""}


def test_stop_closes_endpoint(started_client):
    client = SAMPClient(SAMPHubProxy())
    client.start()
    port = client._port
    client.stop(timeout=5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _client_payloads(secret_url, http_url):
    out = {}
    for name, (dtd, ref) in _definitions(secret_url, http_url).items():
        out[name + "-in-method"] = (
            '<?xml version="1.0"?>\n%s\n<methodCall><methodName>samp.client.%s'
            '</methodName><params/></methodCall>' % (dtd, ref)).encode()
        out[name + "-in-param"] = (
            '<?xml version="1.0"?>\n%s\n<methodCall><methodName>samp.client.receiveNotification'
            '</methodName><params><param><value><string>KEY</string></value></param>'
            '<param><value><string>cli#1</string></value></param><param><value><struct>'
            '<member><name>samp.mtype</name><value><string>x.y</string></value></member>'
            '<member><name>samp.params</name><value><struct><member><name>v</name><value>'
            '<string>%s</string></value></member></struct></value></member></struct></value>'
            '</param></params></methodCall>' % (dtd, ref)).encode()
    return out


def test_xxe_payloads_to_endpoint_are_rejected_without_leak_or_fetch(started_client, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_MARK)
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.setblocking(False)
    http_url = "http://127.0.0.1:%d/evil.dtd" % trap.getsockname()[1]
    client = started_client()
    client._private_key = "KEY"
    rec = Recorder()
    client.bind_receive_notification("x.y", rec, declare=False)
    try:
        for name, body in _client_payloads(secret.as_uri(), http_url).items():
            status, reply = _post(client._xmlrpcAddr, body)
            assert SECRET_MARK.encode() not in reply, name
            assert b"INTERNAL-ENTITY-MARK" not in reply, name
            if status == 200:
                with pytest.raises(xmlrpc.client.Fault):
                    xmlrpc.client.loads(reply)
            else:
                assert 400 <= status < 500, name
        with pytest.raises(BlockingIOError):
            trap.accept()
    finally:
        trap.close()
    assert rec.calls == []
    # the endpoint still serves ordinary requests afterwards
    client.receive_notification("KEY", "s", {"samp.mtype": "x.y", "samp.params": {}})
    assert len(rec.wait_for(1)) == 1


def _make_cert(directory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    key = directory / "key.pem"
    cert = directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return str(key), str(cert)


def test_https_endpoint_serves_over_tls(started_client, tmp_path):
    key, cert = _make_cert(tmp_path)
    client = started_client(https=True, key_file=key, cert_file=cert)
    assert client._xmlrpcAddr.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=cert)
    proxy = xmlrpc.client.ServerProxy(client._xmlrpcAddr, context=context)
    try:
        assert "samp.client.receiveCall" in proxy.system.listMethods()
    finally:
        proxy("close")()


def test_https_endpoint_with_cert_required_refuses_anonymous_peer(started_client, tmp_path):
    key, cert = _make_cert(tmp_path)
    client = started_client(https=True, key_file=key, cert_file=cert,
                            cert_reqs=ssl.CERT_REQUIRED, ca_certs=cert)
    context = ssl.create_default_context(cafile=cert)
    proxy = xmlrpc.client.ServerProxy(client._xmlrpcAddr, context=context)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            proxy.system.listMethods()
    finally:
        proxy("close")()
    context.load_cert_chain(cert, key)
    proxy = xmlrpc.client.ServerProxy(client._xmlrpcAddr, context=context)
    try:
        assert "samp.client.receiveCall" in proxy.system.listMethods()
    finally:
        proxy("close")()


def test_https_without_certificate_is_an_error():
    with pytest.raises(SAMPClientError, match="cert_file"):
        SAMPClient(SAMPHubProxy(), https=True)


def test_cert_reqs_without_ca_certs_is_an_error(tmp_path):
    key, cert = _make_cert(tmp_path)
    with pytest.raises(SAMPClientError, match="ca_certs"):
        SAMPClient(SAMPHubProxy(), https=True, key_file=key, cert_file=cert,
                   cert_reqs=ssl.CERT_OPTIONAL)


def test_call_binding_that_raises_sends_error_response(hub, make_client):
    a = make_client()
    b = make_client()

    def broken(*args):
        raise ValueError("broken binding")

    b.bind_receive_call("test.broken", broken)
    response = call_and_wait(hub, a, b.get_public_id(),
                             {"samp.mtype": "test.broken", "samp.params": {}})
    assert response["samp.status"] == samp_compat.SAMP_STATUS_ERROR
    assert "broken binding" in response["samp.error"]["samp.errortxt"]


def test_register_twice_raises(hub, make_client):
    a = make_client()
    with pytest.raises(SAMPClientError, match="already registered"):
        a.client.register()


def test_unregister_twice_sends_one_unregister_and_raises_nothing(hub, make_client):
    sent = []

    class RecordingProxy(SAMPHubProxy):
        def unregister(self, private_key):
            sent.append(private_key)
            return super().unregister(private_key)

    proxy = RecordingProxy()
    proxy.connect()
    client = SAMPClient(proxy, callable=False)
    try:
        client.register()
        key = client.get_private_key()
        client.unregister()
        client.unregister()
        assert sent == [key] and not client.is_registered
    finally:
        proxy.disconnect()


def test_unbind_call_unsubscribes(hub, make_client):
    a = make_client()
    b = make_client()
    b.bind_receive_call("x.y", lambda *args: None)
    assert "x.y" in a.get_subscriptions(b.get_public_id())
    b.unbind_receive_call("x.y")
    assert "x.y" not in a.get_subscriptions(b.get_public_id())


def test_malformed_callbacks_are_ignored(started_client):
    client = started_client()
    rec = Recorder()
    client.bind_receive_notification("*", rec, declare=False)
    client._private_key = "k"
    assert client.receive_notification("k", "s", {"samp.mtype": 7}) == ""
    assert client.receive_notification("k", "s", ["not", "a", "map"]) == ""
    assert client.receive_call("k", "s", "m", {"samp.params": {}}) == ""
    assert rec.calls == []


def test_unregistered_client_ignores_callbacks_without_key(started_client):
    client = started_client()
    rec = Recorder()
    client.bind_receive_notification("x.y", rec, declare=False)
    assert client.receive_notification(None, "s", {"samp.mtype": "x.y"}) == ""
    assert rec.calls == []


class PollingClient(SAMPClient):
    """A subclass written like astropy's SAMPWebClient: its own __init__ and serving thread."""

    def __init__(self, hub):
        self._is_running = False
        self._is_registered = False
        self._metadata = {}
        self._callable = True
        self.client = None
        self._public_id = None
        self._private_key = None
        self._hub_id = None
        self._notification_bindings = {}
        self._call_bindings = {"samp.app.ping": [self._ping, {}]}
        self._response_bindings = {}
        self.hub = hub
        self.rounds = 0
        self.wake = threading.Event()
        self._thread = threading.Thread(target=self._serve_forever, name="PollingClient")

    def _serve_forever(self):
        while self.is_running:
            self.rounds += 1
            self.wake.wait(0.01)


def test_start_runs_the_thread_a_subclass_made_around_its_serve_forever():
    client = PollingClient(SAMPHubProxy())
    client.start()
    assert client.is_running and client._thread.is_alive()
    client.stop()
    assert not client.is_running and not client._thread.is_alive()
    assert client.rounds > 0


def test_start_serves_the_endpoint_through_the_thread_made_in_init():
    client = SAMPClient(SAMPHubProxy())
    assert client._thread.ident is None
    client.start()
    try:
        assert client._thread.ident is not None
        assert _post(client._xmlrpcAddr, xmlrpc.client.dumps((), "system.listMethods"))[0] == 200
    finally:
        client.stop()
    assert not client._thread.is_alive()
    with pytest.raises(OSError):
        _post(client._xmlrpcAddr, xmlrpc.client.dumps((), "system.listMethods"), timeout=2)


def test_a_stopped_client_cannot_start_again():
    client = SAMPClient(SAMPHubProxy())
    client.start()
    client.stop()
    with pytest.raises(SAMPClientError, match="create a new client"):
        client.start()
    assert not client.is_running
