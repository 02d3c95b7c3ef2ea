"""Entity and DTD payloads sent to the hub's Standard and Web Profile endpoints are refused."""
import http.client
import socket
import time
import xmlrpc.client

import pytest

from samp_compat.xmlrpc import safe_xmlrpc_loads

from _hub_support import WAIT, hub_proxy, make_hub, private_env  # noqa: F401
from _xxe_payloads import INTERNAL_MARK, SECRET_MARK, request_payloads


@pytest.fixture
def canary():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    sock.setblocking(False)
    yield sock, "http://127.0.0.1:%d/evil.dtd" % sock.getsockname()[1]
    sock.close()


def contacted(sock):
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def post(address, body):
    conn = http.client.HTTPConnection(*address, timeout=WAIT)
    try:
        conn.request("POST", "/", body, {"Content-Type": "text/xml"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def assert_refused(name, status, reply):
    assert SECRET_MARK.encode() not in reply, name
    assert INTERNAL_MARK.encode() not in reply, name
    if status == 200:
        with pytest.raises(xmlrpc.client.Fault, match="forbidden|malformed"):
            safe_xmlrpc_loads(reply)
    else:
        assert 400 <= status < 500, name


def test_standard_and_web_endpoints_refuse_every_payload(make_hub, tmp_path, canary):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET_MARK)
    sock, url = canary
    hub = make_hub(web_profile=True, web_port=0)
    standard = ("127.0.0.1", int(hub.params["samp.hub.xmlrpc.url"].rsplit(":", 1)[1]))
    web = ("127.0.0.1", hub._web_port)
    for name, body in request_payloads(secret.as_uri(), url).items():
        for address in (standard, web):
            start = time.monotonic()
            status, reply = post(address, body)
            assert time.monotonic() - start < 5.0, name
            assert_refused(name, status, reply)
    assert not contacted(sock)
    with hub_proxy(hub.params["samp.hub.xmlrpc.url"]) as proxy:
        assert proxy.samp.hub.ping() == "1"


def test_oversized_request_gets_413(make_hub):
    hub = make_hub()
    address = ("127.0.0.1", int(hub.params["samp.hub.xmlrpc.url"].rsplit(":", 1)[1]))
    with socket.create_connection(address, timeout=WAIT) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 413")
