"""utils: arity helper, internet probe switch, proxies with safe parsing and timeouts."""
import socket
import threading
import xmlrpc.client

import pytest

import samp_compat
from samp_compat import SAMPMsgReplierWrapper, SAMPProxyError, SAMPXXEServerProxy
from samp_compat.utils import (
    ServerProxyPool, get_num_args, get_safe_parser, internet_on)
from samp_compat.standard_profile import XMLRPCServer

from _xxe_payloads import response_payloads


def test_get_num_args_counts_function_and_method_arguments():
    class K:
        def m(self, a, b):
            pass

    assert get_num_args(lambda a, b, c: None) == 3
    assert get_num_args(K().m) == 2
    with pytest.raises(TypeError):
        get_num_args(len)


def test_internet_on_is_false_without_conf(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network must not be touched")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with samp_compat.conf.set_temp("use_internet", False):
        assert internet_on() is False


def test_get_safe_parser_parses_plain_and_refuses_dtd():
    parser, unmarshaller = get_safe_parser()
    parser.feed(xmlrpc.client.dumps(("a",), methodresponse=True).encode())
    parser.close()
    assert unmarshaller.close() == ("a",)
    parser, _ = get_safe_parser()
    with pytest.raises(Exception):
        parser.feed(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "v">]><methodResponse/>')
        parser.close()


@pytest.fixture
def server():
    srv = XMLRPCServer(("127.0.0.1", 0))

    def fail():
        raise xmlrpc.client.Fault(7, "Bad secret code")

    srv.register_function(lambda x: x, "samp.hub.echo")
    srv.register_function(fail, "samp.hub.fail")
    srv.start()
    yield srv
    srv.stop()


def test_pool_calls_dotted_methods(server):
    pool = ServerProxyPool(2, SAMPXXEServerProxy, server.url, allow_none=1)
    try:
        assert pool.samp.hub.echo({"a": ["1"]}) == {"a": ["1"]}
    finally:
        pool.shutdown()


def test_pool_turns_faults_into_samp_proxy_error(server):
    pool = ServerProxyPool(1, SAMPXXEServerProxy, server.url)
    try:
        with pytest.raises(SAMPProxyError) as info:
            pool.samp.hub.fail()
    finally:
        pool.shutdown()
    assert info.value.faultCode == 7


def test_pool_is_usable_from_many_threads(server):
    pool = ServerProxyPool(3, SAMPXXEServerProxy, server.url)
    results = []

    def work(i):
        results.append(pool.samp.hub.echo(str(i)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        pool.shutdown()
    assert sorted(results, key=int) == [str(i) for i in range(12)]


def test_pool_runs_at_most_size_calls_at_once():
    srv = XMLRPCServer(pool_size=8)
    lock, release = threading.Lock(), threading.Event()
    state = {"now": 0, "max": 0}

    def slow():
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            if state["now"] == 3:
                release.set()
        release.wait(10)
        with lock:
            state["now"] -= 1
        return ""
    srv.register_function(slow, "samp.hub.slow")
    srv.start()
    pool = ServerProxyPool(3, SAMPXXEServerProxy, srv.url)
    threads = [threading.Thread(target=pool.samp.hub.slow) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    finally:
        pool.shutdown()
        assert srv.stop(10)
    assert state["max"] == 3


class _OneShotHTTP:
    """Answers each connection with a fixed HTTP response (or never answers)."""

    def __init__(self, body=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.body = body
        self.url = "http://127.0.0.1:%d/" % self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        conn.recv(65536)
        if self.body is not None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(self.body), self.body))

    def close(self):
        self.sock.close()
        self.thread.join(5)
        for conn in self.conns:
            conn.close()


@pytest.mark.parametrize("name", sorted(response_payloads("file:///x", "http://127.0.0.1:9/x")))
def test_proxy_rejects_unsafe_responses(name, tmp_path):
    body = response_payloads((tmp_path / "x").as_uri(), "http://127.0.0.1:9/x")[name]
    peer = _OneShotHTTP(body)
    proxy = SAMPXXEServerProxy(peer.url, timeout=5)
    try:
        with pytest.raises((xmlrpc.client.ResponseError, ValueError)):
            proxy.samp.hub.ping()
    finally:
        proxy("close")()
        peer.close()


def test_proxy_times_out_on_silent_server():
    peer = _OneShotHTTP(None)
    proxy = SAMPXXEServerProxy(peer.url, timeout=0.3)
    try:
        with pytest.raises((socket.timeout, TimeoutError)):
            proxy.samp.hub.ping()
    finally:
        proxy("close")()
        peer.close()


class _FakeHub:
    def __init__(self):
        self.replies = []

    def reply(self, key, msg_id, response):
        self.replies.append((key, msg_id, response))


class _FakeClient:
    def __init__(self):
        self.hub = _FakeHub()

    def get_private_key(self):
        return "key"


def test_replier_wrapper_reports_success_as_ok():
    cli = _FakeClient()

    @SAMPMsgReplierWrapper(cli)
    def answer(private_key, sender_id, msg_id, mtype, params, extra):
        return {"value": "1"}

    answer("key", "cli#1", "msg-1", "x.y", {}, {})
    assert cli.hub.replies == [("key", "msg-1", {"samp.status": "samp.ok",
                                                 "samp.result": {"value": "1"}})]


def test_replier_wrapper_reports_exception_as_error_with_traceback():
    cli = _FakeClient()

    @SAMPMsgReplierWrapper(cli)
    def answer(private_key, sender_id, msg_id, mtype, params, extra):
        raise RuntimeError("boom")

    answer("key", "cli#1", "msg-2", "x.y", {}, {})
    (key, msg_id, response), = cli.hub.replies
    assert response["samp.status"] == "samp.error"
    assert "RuntimeError: boom" in response["samp.result"]["txt"]
    assert "boom" in response["samp.error"]["samp.errortxt"]


def test_replier_wrapper_on_notification_only_calls_function():
    cli = _FakeClient()
    seen = []

    @SAMPMsgReplierWrapper(cli)
    def note(private_key, sender_id, mtype, params, extra):
        seen.append(mtype)
        return {"ignored": "1"}

    note("key", "cli#1", "x.y", {}, {})
    assert seen == ["x.y"] and cli.hub.replies == []
