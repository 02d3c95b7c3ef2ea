"""XMLRPCServer and the safe transports, over real loopback sockets."""
import http.client
import socket
import threading
import time
import xmlrpc.client

import pytest

from samp_compat.standard_profile import DeferredResult, XMLRPCServer
from samp_compat.xmlrpc import SafeTransport, UnsafeXMLError, safe_xmlrpc_loads

from _xxe_payloads import INTERNAL_MARK, SECRET_MARK, request_payloads, response_payloads

WAIT = 10.0


@pytest.fixture
def server():
    srv = XMLRPCServer(pool_size=4, name="TestServer")
    yield srv
    assert srv.stop(WAIT)


def proxy(srv, **kw):
    transport = SafeTransport(timeout=WAIT)
    return xmlrpc.client.ServerProxy(srv.url, transport=transport, allow_none=True, **kw)


def post(srv, body, headers=None):
    conn = http.client.HTTPConnection(*srv.server_address, timeout=WAIT)
    try:
        conn.request("POST", "/", body, headers or {"Content-Type": "text/xml"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_registered_function_is_called(server):
    server.register_function(lambda a, b: a + b, "math.add")
    server.start()
    with proxy(server) as p:
        assert p.math.add(2, 3) == 5


def test_url_and_address_are_known_before_start(server):
    host, port = server.server_address
    assert host == "127.0.0.1" and port > 0
    assert server.url == "http://127.0.0.1:%d/" % port


def test_fault_from_function_passes_through(server):
    def fail():
        raise xmlrpc.client.Fault(7, "Bad secret code")
    server.register_function(fail)
    server.start()
    with proxy(server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        p.fail()
    assert (info.value.faultCode, info.value.faultString) == (7, "Bad secret code")


def test_other_exception_becomes_fault_1_with_class_and_text(server):
    def fail():
        raise ValueError("nope")
    server.register_function(fail)
    server.start()
    with proxy(server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        p.fail()
    assert (info.value.faultCode, info.value.faultString) == (1, "<class 'ValueError'>:nope")


def test_unknown_method_fault_does_not_echo_the_name(server):
    server.start()
    with proxy(server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        getattr(p, "secret-key-1234")()
    assert "secret-key-1234" not in info.value.faultString


def test_keep_alive_serves_many_calls_on_one_connection(server):
    ports = []
    server.set_dispatcher(lambda name, params, info: ports.append(info.client_address[1]) or "")
    server.start()
    with proxy(server) as p:
        for _ in range(5):
            p.anything()
    assert len(set(ports)) == 1


def test_dispatcher_receives_name_params_and_request_info(server):
    seen = []
    server.set_dispatcher(lambda name, params, info: seen.append((name, params, info)) or "ok")
    server.register_function(lambda: "not used", "samp.x")
    server.start()
    with proxy(server) as p:
        assert p.samp.x("k", {"a": "b"}) == "ok"
    name, params, info = seen[0]
    assert (name, params) == ("samp.x", ("k", {"a": "b"}))
    assert info.client_address[0] == "127.0.0.1"
    assert info.headers["content-type"] == "text/xml"
    assert info.headers["Content-Type"] == "text/xml"
    assert info.path == "/"


def test_register_instance_resolves_dotted_names(server):
    class Api:
        class samp:
            @staticmethod
            def ping():
                return "1"
    server.register_instance(Api())
    server.start()
    with proxy(server) as p:
        assert p.samp.ping() == "1"


def test_introspection_lists_methods(server):
    server.register_function(lambda: "1", "samp.hub.ping")
    server.register_introspection_functions()
    server.start()
    with proxy(server) as p:
        assert "samp.hub.ping" in p.system.listMethods()


def test_deferred_result_is_sent_when_completed(server):
    pending = []
    server.set_dispatcher(lambda name, params, info: pending.append(DeferredResult()) or pending[-1])
    server.start()
    result = {}

    def call():
        with proxy(server) as p:
            result["value"] = p.wait()
    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + WAIT
    while not pending and time.monotonic() < deadline:
        caller.join(0.01)
    pending[0].set_result("later")
    caller.join(WAIT)
    assert result == {"value": "later"}


def test_worker_pool_bounds_concurrent_dispatch():
    srv = XMLRPCServer(pool_size=2)
    release = threading.Event()
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def slow():
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        release.wait(WAIT)
        with lock:
            state["now"] -= 1
        return ""
    srv.register_function(slow)
    srv.start()
    try:
        callers = [threading.Thread(target=lambda: proxy(srv).slow()) for _ in range(5)]
        for t in callers:
            t.start()
        deadline = time.monotonic() + WAIT
        while state["max"] < 2 and time.monotonic() < deadline:
            release.wait(0.01)
        release.set()
        for t in callers:
            t.join(WAIT)
        assert state["max"] == 2
    finally:
        assert srv.stop(WAIT)


def test_sequential_calls_on_one_connection_are_served_by_one_worker(server):
    workers = set()
    server.register_function(lambda: workers.add(threading.current_thread().name) or "", "m")
    server.start()
    with proxy(server) as p:
        for _ in range(50):
            p.m()
    assert workers == {"TestServer-worker-1"}


def test_idle_workers_end_and_new_ones_start_for_the_next_call(server):
    server.register_function(lambda: threading.current_thread().name, "m")
    server.start()
    with proxy(server) as p:
        first = p.m()
        worker = next(t for t in threading.enumerate() if t.name == first)
        worker.join(WAIT)  # ends by itself once idle
        assert not worker.is_alive()
        assert p.m().startswith("TestServer-worker-")


def test_http_handler_serves_get_and_prefix_routes(server):
    server.add_http_handler("GET", "/crossdomain.xml", lambda i: (200, [("Content-Type", "text/xml")], b"<x/>"))
    server.add_http_handler("GET", "/translator/*", lambda i: (200, {}, i.path.encode()))
    server.start()
    conn = http.client.HTTPConnection(*server.server_address, timeout=WAIT)
    try:
        conn.request("GET", "/crossdomain.xml")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"<x/>")
        conn.request("GET", "/translator/abc?ref=file:///x")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"/translator/abc?ref=file:///x")
        conn.request("GET", "/unknown")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
    finally:
        conn.close()


def test_header_hook_adds_headers_to_xmlrpc_responses(server):
    server.register_function(lambda: "", "m")
    server.set_header_hook(lambda info: [("X-Test", info.headers.get("origin", "none"))])
    server.start()
    conn = http.client.HTTPConnection(*server.server_address, timeout=WAIT)
    try:
        conn.request("POST", "/", xmlrpc.client.dumps((), "m"), {"Origin": "http://localhost"})
        resp = conn.getresponse()
        resp.read()
        assert resp.getheader("X-Test") == "http://localhost"
    finally:
        conn.close()


def test_malformed_xml_gets_a_fault_that_does_not_echo_the_body(server):
    server.start()
    status, body = post(server, b"<methodCall><methodName>ECHO-ME</methodName><params>")
    assert status == 200
    with pytest.raises(xmlrpc.client.Fault) as info:
        safe_xmlrpc_loads(body)
    assert "ECHO-ME" not in info.value.faultString


def test_body_over_limit_gets_413():
    srv = XMLRPCServer(max_body=1000)
    srv.start()
    try:
        status, _ = post(srv, b"<x>" + b"a" * 2000 + b"</x>")
        assert status == 413
    finally:
        assert srv.stop(WAIT)


def test_garbage_request_line_gets_400(server):
    server.start()
    with socket.create_connection(server.server_address, timeout=WAIT) as sock:
        sock.sendall(b"garbage\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


def test_http_1_0_connection_is_closed_after_the_response(server):
    server.register_function(lambda: "", "m")
    server.start()
    body = xmlrpc.client.dumps((), "m").encode()
    with socket.create_connection(server.server_address, timeout=WAIT) as sock:
        sock.sendall(b"POST / HTTP/1.0\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b"Connection: close" in data


def test_stop_closes_idle_keep_alive_connections():
    srv = XMLRPCServer()
    srv.register_function(lambda: "", "m")
    srv.start()
    p = proxy(srv)
    p.m()
    assert srv.stop(WAIT)
    with pytest.raises(OSError):
        p.m()
    p("close")()


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text(SECRET_MARK)
    return path.as_uri()


@pytest.fixture
def canary():
    """A listener that records whether anything connected to it (SSRF detector)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    sock.setblocking(False)
    url = "http://127.0.0.1:%d/evil.dtd" % sock.getsockname()[1]

    def contacted():
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True
    yield url, contacted
    sock.close()


def test_every_entity_payload_is_refused_by_the_server(server, secret_file, canary):
    url, contacted = canary
    server.register_function(lambda *a: "1", "samp.hub.ping")
    server.start()
    for name, body in request_payloads(secret_file, url).items():
        start = time.monotonic()
        status, reply = post(server, body)
        assert time.monotonic() - start < 5.0, name
        if status == 200:
            with pytest.raises(xmlrpc.client.Fault, match="forbidden|malformed"):
                safe_xmlrpc_loads(reply)
        else:
            assert 400 <= status < 500, name
        assert SECRET_MARK.encode() not in reply and INTERNAL_MARK.encode() not in reply, name
    assert not contacted()


def test_transport_refuses_every_entity_payload_in_responses(server, secret_file, canary):
    url, contacted = canary
    payloads = response_payloads(secret_file, url)
    for name, body in payloads.items():
        server.add_http_handler("POST", "/" + name, lambda info, b=body: (200, [("Content-Type", "text/xml")], b))
    server.start()
    for name in payloads:
        p = xmlrpc.client.ServerProxy(server.url + name, transport=SafeTransport(timeout=WAIT))
        with p, pytest.raises(xmlrpc.client.ResponseError) as info:
            p.samp.hub.ping()
        if "undeclared" not in name:
            assert isinstance(info.value, UnsafeXMLError), name
    assert not contacted()


def test_transport_caps_response_size(server):
    server.register_function(lambda: "x" * 5000, "big")
    server.start()
    transport = SafeTransport(timeout=WAIT)
    transport.max_response = 1000
    with xmlrpc.client.ServerProxy(server.url, transport=transport) as p:
        with pytest.raises(xmlrpc.client.ResponseError):
            p.big()


def test_transport_times_out_on_a_silent_server():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        url = "http://127.0.0.1:%d/" % sock.getsockname()[1]
        with xmlrpc.client.ServerProxy(url, transport=SafeTransport(timeout=0.3)) as p:
            start = time.monotonic()
            with pytest.raises(socket.timeout):
                p.samp.hub.ping()
            assert time.monotonic() - start < WAIT
    finally:
        sock.close()


def test_small_requests_are_served_on_the_loop_thread_when_inline_body_allows():
    srv = XMLRPCServer(pool_size=4, name="InlineServer", inline_body=1024)
    srv.register_function(lambda text: threading.current_thread().name, "where")
    srv.start()
    try:
        with proxy(srv) as p:
            assert p.where("x") == "InlineServer-loop"
            assert p.where("x" * 2048).startswith("InlineServer-worker-")
    finally:
        assert srv.stop()
