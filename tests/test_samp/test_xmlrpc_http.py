"""HTTP framing of the XML-RPC server: parser limits, slow and idle peers, connection cap, TLS."""
import shutil
import socket
import ssl
import subprocess
import time
import xmlrpc.client

import pytest
from hypothesis import given, settings, strategies as st

from samp_compat import _http
from samp_compat.standard_profile import XMLRPCServer
from samp_compat.xmlrpc import SafeSafeTransport

WAIT = 10.0


def parse_all(data, max_body=1000):
    parser = _http.RequestParser(max_body)
    parser.feed(data)
    out = []
    while True:
        request = parser.next_request()
        if request is None:
            return out
        out.append(request)


def test_two_pipelined_requests_are_split():
    data = (b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    first, second = parse_all(data)
    assert (first.method, first.path, first.body) == ("POST", "/", b"abc")
    assert (second.method, second.path, second.headers["host"]) == ("GET", "/x", "h")


def test_incomplete_body_waits_for_more():
    assert parse_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc") == []


@pytest.mark.parametrize("data, status", [
    (b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400),
    (b"POST / HTTP/2.0\r\n\r\n", 505),
    (b"NONSENSE\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nno colon\r\n\r\n", 400),
    (b"GET /" + b"a" * (_http.MAX_HEADER_BYTES + 10), 431),
])
def test_bad_requests_raise_http_errors(data, status):
    with pytest.raises(_http.HTTPError) as info:
        parse_all(data)
    assert info.value.status == status


def test_keep_alive_defaults_follow_the_http_version():
    one_one, one_zero = parse_all(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n")
    assert one_one.keep_alive and not one_zero.keep_alive


HEAD_PARTS = st.lists(st.sampled_from([
    b"POST / HTTP/1.1", b"GET /x HTTP/1.0", b"Content-Length: ", b"Connection: close",
    b"\r\n", b"\r\n\r\n", b":", b" ", b"1", b"99", b"\xb2", b"abc", b"Transfer-Encoding: x",
]), max_size=12).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=400), HEAD_PARTS))
def test_any_bytes_give_requests_or_an_http_error(data):
    try:
        requests = parse_all(data)
    except _http.HTTPError as exc:
        assert 400 <= exc.status < 600
        return
    assert all(isinstance(r, _http.Request) for r in requests)


def read_until_closed(sock):
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def test_slow_request_is_dropped_after_idle_timeout():
    srv = XMLRPCServer(idle_timeout=0.3)
    srv.start()
    try:
        with socket.create_connection(srv.server_address, timeout=WAIT) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
            start = time.monotonic()
            assert read_until_closed(sock) == b""
            assert time.monotonic() - start < WAIT
    finally:
        assert srv.stop(WAIT)


def test_connections_over_the_cap_are_closed():
    srv = XMLRPCServer(max_connections=1)
    srv.register_function(lambda: "1", "ping")
    srv.start()
    try:
        with socket.create_connection(srv.server_address, timeout=WAIT) as first:
            body = xmlrpc.client.dumps((), "ping").encode()
            first.sendall(b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            assert first.recv(100).startswith(b"HTTP/1.1 200")
            with socket.create_connection(srv.server_address, timeout=WAIT) as second:
                assert read_until_closed(second) == b""
    finally:
        assert srv.stop(WAIT)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_server_and_safe_safe_transport(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(cert), str(key))
    srv = XMLRPCServer(ssl_context=server_ctx)
    srv.register_function(lambda x: x * 2, "double")
    srv.start()
    try:
        assert srv.url.startswith("https://127.0.0.1:")
        client_ctx = ssl.create_default_context(cafile=str(cert))
        transport = SafeSafeTransport(timeout=WAIT, context=client_ctx)
        with xmlrpc.client.ServerProxy(srv.url, transport=transport) as proxy:
            assert proxy.double(21) == 42
            assert proxy.double("a") == "aa"
    finally:
        assert srv.stop(WAIT)
