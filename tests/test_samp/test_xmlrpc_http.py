"""HTTP framing of the XML-RPC server: parser limits, pipelining, slow, idle and many peers, TLS."""
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import xmlrpc.client

import pytest
from hypothesis import given, settings, strategies as st

from samp_compat import _http
from samp_compat.standard_profile import XMLRPCServer
from samp_compat.xmlrpc import SafeSafeTransport

WAIT = 10.0


def parse_all(data, max_body=1000):
    """The requests in ``data``; the parser's HTTPError, if it returns one, is raised."""
    items = _http.RequestParser(max_body).feed(data)
    for item in items:
        if isinstance(item, _http.HTTPError):
            raise item
    return [item for item in items if isinstance(item, _http.Request)]


def feed_bytewise(data, max_body=1000):
    parser = _http.RequestParser(max_body)
    items = []
    for i in range(len(data)):
        items.extend(parser.feed(data[i:i + 1]))
    return items


def summary(items):
    return [(i.method, i.path, i.body) if isinstance(i, _http.Request) else
            (i.status if isinstance(i, _http.HTTPError) else i) for i in items]


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
def test_any_bytes_give_requests_then_at_most_one_http_error(data):
    items = _http.RequestParser(1000).feed(data)
    errors = [i for i in items if isinstance(i, _http.HTTPError)]
    assert len(errors) <= 1 and (not errors or items[-1] is errors[0])
    assert all(400 <= e.status < 600 for e in errors)
    assert all(isinstance(i, _http.Request) or i is _http.CONTINUE for i in items[:-1])


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.binary(max_size=200), HEAD_PARTS))
def test_bytes_fed_one_at_a_time_give_what_one_chunk_gives(data):
    whole = [i for i in _http.RequestParser(1000).feed(data) if i is not _http.CONTINUE]
    bytewise = [i for i in feed_bytewise(data) if i is not _http.CONTINUE]
    assert summary(bytewise) == summary(whole)


def test_nothing_is_returned_after_an_http_error():
    parser = _http.RequestParser(1000)
    assert summary(parser.feed(b"NONSENSE\r\n\r\n")) == [400]
    assert parser.feed(b"GET / HTTP/1.1\r\n\r\n") == []
    assert parser.buffered == 0


def test_expect_100_continue_is_announced_once_before_the_body():
    parser = _http.RequestParser(1000)
    head = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    assert parser.feed(head) == [_http.CONTINUE]
    assert parser.feed(b"a") == []
    assert summary(parser.feed(b"bc")) == [("POST", "/", b"abc")]


def test_expect_100_continue_with_the_body_already_there_is_just_a_request():
    data = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"
    assert summary(_http.RequestParser(1000).feed(data)) == [("POST", "/", b"x")]


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=4096))
def test_parser_holds_at_most_a_head_and_a_body(chunk):
    parser = _http.RequestParser(1000)
    for _ in range(40):
        parser.feed(chunk)
        assert parser.buffered <= _http.MAX_HEADER_BYTES + 1000 + len(chunk)


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


def ping_request(version=b"HTTP/1.1", extra=b""):
    body = xmlrpc.client.dumps((), "ping").encode()
    return (b"POST / %s\r\nContent-Length: %d\r\n%s\r\n" % (version, len(body), extra)
            + body)


class Responses:
    """Reads whole responses (head and Content-Length body) from a socket, one at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.data = b""

    def _more(self, what):
        chunk = self.sock.recv(4096)
        assert chunk, "connection closed %s" % what
        self.data += chunk

    def next(self):
        while b"\r\n\r\n" not in self.data:
            self._more("before a response")
        head, _, self.data = self.data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(self.data) < length:
            self._more("inside a response")
        body, self.data = self.data[:length], self.data[length:]
        return head, body


def read_response(sock):
    """The one response ``sock`` receives next."""
    responses = Responses(sock)
    head, body = responses.next()
    assert responses.data == b"", "more than one response arrived"
    return head, body


@pytest.fixture
def ping_server():
    srv = XMLRPCServer()
    srv.register_function(lambda: "pong", "ping")
    srv.start()
    yield srv
    assert srv.stop(WAIT)


def test_server_holds_and_serves_hundreds_of_kept_alive_connections(ping_server):
    socks = []
    try:
        for _ in range(300):  # more than any fixed cap would hold
            sock = socket.create_connection(ping_server.server_address, timeout=WAIT)
            socks.append(sock)
            sock.sendall(ping_request())
            head, body = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200") and b"pong" in body
        for sock in socks:  # every one is still open and served
            sock.sendall(ping_request())
            assert read_response(sock)[0].startswith(b"HTTP/1.1 200")
    finally:
        for sock in socks:
            sock.close()


def test_pipelined_requests_are_answered_in_order_one_at_a_time():
    seen = []
    srv = XMLRPCServer(pool_size=4)
    srv.register_function(lambda n: seen.append(n) or n, "echo")
    srv.start()
    try:
        requests = b"".join(
            b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            for body in (xmlrpc.client.dumps((n,), "echo").encode() for n in range(5)))
        with socket.create_connection(srv.server_address, timeout=WAIT) as sock:
            sock.sendall(requests)
            responses = Responses(sock)
            answers = [xmlrpc.client.loads(responses.next()[1])[0][0] for _ in range(5)]
        assert answers == seen == [0, 1, 2, 3, 4]
    finally:
        assert srv.stop(WAIT)


def test_peer_that_stops_sending_still_gets_its_response(ping_server):
    with socket.create_connection(ping_server.server_address, timeout=WAIT) as sock:
        sock.sendall(ping_request())
        sock.shutdown(socket.SHUT_WR)
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200") and b"pong" in data


def test_connection_close_request_is_answered_then_closed(ping_server):
    with socket.create_connection(ping_server.server_address, timeout=WAIT) as sock:
        sock.sendall(ping_request(extra=b"Connection: close\r\n"))
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data


def test_request_expecting_100_continue_gets_it_before_sending_the_body(ping_server):
    body = xmlrpc.client.dumps((), "ping").encode()
    with socket.create_connection(ping_server.server_address, timeout=WAIT) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                     % len(body))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        head, reply = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and b"pong" in reply


def test_bad_request_after_a_good_one_is_answered_in_order_then_closed(ping_server):
    with socket.create_connection(ping_server.server_address, timeout=WAIT) as sock:
        sock.sendall(ping_request() + b"NONSENSE\r\n\r\n")
        data = read_until_closed(sock)
    first, _, second = data.partition(b"HTTP/1.1 400")
    assert first.startswith(b"HTTP/1.1 200") and b"pong" in first and second


def test_idle_kept_alive_connection_is_closed_after_idle_timeout():
    srv = XMLRPCServer(idle_timeout=0.3)
    srv.register_function(lambda: "pong", "ping")
    srv.start()
    try:
        with socket.create_connection(srv.server_address, timeout=WAIT) as sock:
            sock.sendall(ping_request())
            assert read_response(sock)[0].startswith(b"HTTP/1.1 200")
            assert read_until_closed(sock) == b""
    finally:
        assert srv.stop(WAIT)


_SERVER_SCRIPT = textwrap.dedent("""
    import os, resource, sys
    from samp_compat.standard_profile import XMLRPCServer

    srv = XMLRPCServer()
    srv.register_function(lambda: "pong", "ping")
    srv.start()
    open_now = len(os.listdir("/proc/self/fd"))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + int(sys.argv[1]), hard))
    print(srv.server_address[1], flush=True)
    sys.stdin.readline()
    print("stopped" if srv.stop(5) else "not stopped", flush=True)
""")


def _child_line(process):
    ready, _, _ = select.select([process.stdout], [], [], WAIT)
    return process.stdout.readline().strip() if ready else ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_NOFILE")
def test_out_of_descriptors_the_least_recently_used_idle_connections_close_first():
    spare = 8  # descriptors the server has left for connections
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-c", _SERVER_SCRIPT, str(spare)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    socks = []
    try:
        address = ("127.0.0.1", int(_child_line(process)))
        for _ in range(spare):  # every descriptor left is taken by an idle connection
            socks.append(socket.create_connection(address, timeout=WAIT))
            socks[-1].sendall(ping_request())
            read_response(socks[-1])
        socks[0].sendall(ping_request())  # the first becomes the most recently used
        read_response(socks[0])
        socks.append(socket.create_connection(address, timeout=WAIT))
        socks[-1].sendall(ping_request())
        assert b"pong" in read_response(socks[-1])[1]  # the newcomer is served
        assert read_until_closed(socks[1]) == b""  # the least recently used was closed
        socks[0].sendall(ping_request())
        assert b"pong" in read_response(socks[0])[1]  # the most recently used was kept
        process.stdin.write("\n")
        process.stdin.flush()
        assert _child_line(process) == "stopped"
        assert process.wait(WAIT) == 0
    finally:
        for sock in socks:
            sock.close()
        if process.poll() is None:
            process.kill()
            process.wait(WAIT)
        process.stdin.close()
        process.stdout.close()


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
