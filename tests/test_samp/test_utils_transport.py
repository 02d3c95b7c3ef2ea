"""The lean XML-RPC transport behind SAMPXXEServerProxy, against scripted HTTP peers."""
import gzip
import socket
import threading
import xmlrpc.client

import pytest

from samp_compat import SAMPXXEServerProxy
from samp_compat.standard_profile import XMLRPCServer

OK_BODY = xmlrpc.client.dumps(("pong",), methodresponse=True).encode()


class ScriptedPeer:
    """Accepts connections and answers the n-th request with ``script[n]`` (raw bytes).

    A ``None`` entry closes the connection without answering; a
    ``("close", data)`` entry sends ``data`` and then closes.
    """

    def __init__(self, script):
        self.script = list(script)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d/" % self.sock.getsockname()[1]
        self.connections = 0
        self.requests = []
        self._open = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0]
                     .split(b":")[1])
        while len(body) < length:
            body += conn.recv(65536)
        return head, body

    def _serve(self):
        while self.script:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            while self.script:
                request = self._read_request(conn)
                if request is None:
                    break
                self.requests.append(request)
                answer = self.script.pop(0)
                if answer is None:
                    conn.close()
                    break
                if isinstance(answer, tuple):
                    conn.sendall(answer[1])
                    conn.close()
                    break
                conn.sendall(answer)

    def close(self):
        self.sock.close()
        self.thread.join(5)
        for conn in self._open:
            conn.close()


def _response(body=OK_BODY, status="200 OK", headers=(), length=True, version="HTTP/1.1"):
    lines = ["%s %s" % (version, status), "Content-Type: text/xml"] + list(headers)
    if length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def peer():
    made = []

    def make(script):
        p = ScriptedPeer(script)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def _proxy(url):
    return SAMPXXEServerProxy(url, timeout=5)


def test_request_is_one_http_post_with_length(peer):
    p = peer([_response()])
    proxy = _proxy(p.url)
    try:
        assert proxy.samp.hub.ping() == "pong"
    finally:
        proxy("close")()
    head, body = p.requests[0]
    assert head.startswith(b"POST / HTTP/1.1\r\n")
    assert xmlrpc.client.loads(body)[1] == "samp.hub.ping"


def test_connection_is_kept_alive_between_calls(peer):
    p = peer([_response(), _response()])
    proxy = _proxy(p.url)
    try:
        proxy.samp.hub.ping()
        proxy.samp.hub.ping()
    finally:
        proxy("close")()
    assert p.connections == 1


def test_stale_kept_alive_connection_is_retried_once(peer):
    p = peer([_response(), None, _response()])
    proxy = _proxy(p.url)
    try:
        proxy.samp.hub.ping()
        assert proxy.samp.hub.ping() == "pong"
    finally:
        proxy("close")()
    assert p.connections == 2


def test_http_1_0_response_without_length_is_read_to_close(peer):
    p = peer([("close", _response(length=False, version="HTTP/1.0"))])
    proxy = _proxy(p.url)
    try:
        assert proxy.samp.hub.ping() == "pong"
    finally:
        proxy("close")()


def test_chunked_response_is_decoded(peer):
    half = len(OK_BODY) // 2
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, OK_BODY[:half],
                                                      len(OK_BODY) - half, OK_BODY[half:])
    p = peer([_response(chunked, headers=["Transfer-Encoding: chunked"], length=False)])
    proxy = _proxy(p.url)
    try:
        assert proxy.samp.hub.ping() == "pong"
    finally:
        proxy("close")()


def test_gzip_response_is_decoded(peer):
    p = peer([_response(gzip.compress(OK_BODY), headers=["Content-Encoding: gzip"])])
    proxy = _proxy(p.url)
    try:
        assert proxy.samp.hub.ping() == "pong"
    finally:
        proxy("close")()


def test_non_200_status_is_protocol_error(peer):
    p = peer([_response(b"", status="401 Unauthorized")])
    proxy = _proxy(p.url)
    try:
        with pytest.raises(xmlrpc.client.ProtocolError) as info:
            proxy.samp.hub.ping()
    finally:
        proxy("close")()
    assert info.value.errcode == 401


def test_fault_response_is_raised_as_fault(peer):
    fault = xmlrpc.client.dumps(xmlrpc.client.Fault(5, "bad key"), methodresponse=True).encode()
    p = peer([_response(fault)])
    proxy = _proxy(p.url)
    try:
        with pytest.raises(xmlrpc.client.Fault) as info:
            proxy.samp.hub.ping()
    finally:
        proxy("close")()
    assert info.value.faultCode == 5


def test_oversized_content_length_is_refused_before_reading(peer):
    p = peer([b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n"])
    proxy = _proxy(p.url)
    try:
        with pytest.raises(xmlrpc.client.ResponseError):
            proxy.samp.hub.ping()
    finally:
        proxy("close")()


def test_first_connection_closed_without_answer_is_connection_error(peer):
    p = peer([None])
    proxy = _proxy(p.url)
    try:
        with pytest.raises(ConnectionError):
            proxy.samp.hub.ping()
    finally:
        proxy("close")()


def test_works_against_samp_compat_server_over_many_calls():
    server = XMLRPCServer(("127.0.0.1", 0))
    server.register_function(lambda x: x, "echo")
    server.start()
    proxy = _proxy(server.url)
    try:
        for i in range(200):
            assert proxy.echo({"i": str(i)}) == {"i": str(i)}
    finally:
        proxy("close")()
        server.stop()


def test_busy_call_can_be_interrupted_through_connection_socket():
    silent = socket.socket()  # accepts and reads, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    url = "http://127.0.0.1:%d/" % silent.getsockname()[1]
    proxy = SAMPXXEServerProxy(url, timeout=30)
    errors = []
    started = threading.Event()

    def call():
        started.set()
        try:
            proxy.samp.hub.ping()
        except Exception as exc:  # the interrupted call must fail, not hang
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    conn, _ = silent.accept()
    try:
        assert started.wait(5)
        conn.recv(65536)  # the request arrived; the caller now waits for the answer
        handle = proxy("transport")._connection[1]
        handle.sock.shutdown(socket.SHUT_RDWR)
        worker.join(5)
        assert not worker.is_alive() and len(errors) == 1
    finally:
        conn.close()
        silent.close()
        proxy("close")()
