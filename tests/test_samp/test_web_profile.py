"""Web Profile: consent, samp.webhub.* calls, reverse callbacks, CORS, policy files, translator."""
import http.client
import os
import queue
import socket
import sys
import threading
import time
import xmlrpc.client

import pytest

from samp_compat.web_profile import WebProfileDialog

from _hub_support import WAIT, RawClient, make_hub, private_env  # noqa: F401

MSG = {"samp.mtype": "test.msg", "samp.params": {"a": "1"}}


class AutoDialog(WebProfileDialog):
    """Answers every request; a driver thread feeds handle_queue()."""

    def __init__(self, answer):
        self.answer = answer
        self.shown = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drive, name="AutoDialog")

    def show_dialog(self, samp_name, details, client, origin):
        self.shown.append((samp_name, origin))
        (self.consent if self.answer else self.reject)()

    def _drive(self):
        while not self._stop.is_set():
            try:
                request = self.queue_request.get(timeout=0.1)
            except queue.Empty:
                continue
            self.queue_request.put(request)
            self.handle_queue()

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(WAIT)


@pytest.fixture
def dialog():
    d = AutoDialog(True)
    yield d
    d.stop()


@pytest.fixture
def web_hub(make_hub, dialog):
    hub = make_hub(web_profile=True, web_port=0, web_profile_dialog=dialog)
    dialog.start()
    return hub


def web_proxy(hub, origin=None):
    from samp_compat.xmlrpc import SafeTransport
    headers = [("Origin", origin)] if origin else []
    return xmlrpc.client.ServerProxy("http://127.0.0.1:%d/" % hub._web_port, allow_none=True,
                                     transport=SafeTransport(timeout=WAIT, headers=headers))


def request(hub, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", hub._web_port, timeout=WAIT)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_web_port_zero_picks_a_free_port(web_hub):
    assert web_hub._web_port > 0
    with web_proxy(web_hub) as proxy:
        assert proxy.samp.webhub.ping() == "1"


def test_registration_with_consent_returns_keys_and_translator(web_hub, dialog):
    with web_proxy(web_hub, "http://localhost:8000") as proxy:
        reg = proxy.samp.webhub.register({"samp.name": "webapp"})
        key = reg["samp.private-key"]
        assert reg["samp.self-id"].startswith("cli#") and reg["samp.hub-id"] == "cli#hub"
        assert reg["samp.url-translator"] == "http://localhost:%d/translator/%s?ref=" % (
            web_hub._web_port, key)
        assert dialog.shown == [("webapp", "http://localhost:8000")]
        proxy.samp.webhub.unregister(key)


def test_refused_registration_is_fault_403(make_hub):
    dialog = AutoDialog(False)
    hub = make_hub(web_profile=True, web_port=0, web_profile_dialog=dialog)
    dialog.start()
    try:
        with web_proxy(hub) as proxy, pytest.raises(xmlrpc.client.Fault) as info:
            proxy.samp.webhub.register({"samp.name": "webapp"})
        assert info.value.faultCode == 403
    finally:
        dialog.stop()


def test_console_consent_without_a_terminal_refuses(make_hub, monkeypatch):
    def no_terminal(prompt=""):
        raise EOFError
    monkeypatch.setattr("builtins.input", no_terminal)
    hub = make_hub(web_profile=True, web_port=0)
    with web_proxy(hub) as proxy, pytest.raises(xmlrpc.client.Fault) as info:
        proxy.samp.webhub.register({"samp.name": "webapp"})
    assert info.value.faultCode == 403


def test_console_consent_yes_registers(make_hub, monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda prompt="": "yes")
    hub = make_hub(web_profile=True, web_port=0)
    with web_proxy(hub, "http://localhost:1") as proxy:
        reg = proxy.samp.webhub.register({"samp.name": "webapp"})
        proxy.samp.webhub.unregister(reg["samp.private-key"])
    out = capsys.readouterr().out
    assert "Name: webapp" in out and "Origin: http://localhost:1" in out


@pytest.mark.parametrize("answer, consent", [("yes", True), ("no", False)])
def test_text_dialog_takes_the_upstream_keyword_names(monkeypatch, capsys, answer, consent):
    from samp_compat.web_profile import web_profile_text_dialog
    monkeypatch.setattr("builtins.input", lambda prompt="": answer)
    answers = queue.Queue()
    web_profile_text_dialog(request=({"samp.name": "webapp"}, ("127.0.0.1", 1), "null"),
                            queue=answers)
    assert answers.get_nowait() is consent
    assert "Name: webapp" in capsys.readouterr().out


def test_registration_without_name_is_fault_403(web_hub):
    with web_proxy(web_hub) as proxy, pytest.raises(xmlrpc.client.Fault) as info:
        proxy.samp.webhub.register({"x": "y"})
    assert info.value.faultCode == 403


def test_cors_headers_echo_the_origin(web_hub):
    body = xmlrpc.client.dumps((), "samp.webhub.ping")
    status, headers, _ = request(web_hub, "POST", "/", {"Origin": "http://example.org"}, body)
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "http://example.org"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Headers"] == "Content-Type"


def test_preflight_allows_method_and_private_network(web_hub):
    status, headers, body = request(web_hub, "OPTIONS", "/", {
        "Origin": "http://example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Private-Network": "true"})
    assert (status, body) == (200, b"")
    assert headers["Access-Control-Allow-Methods"] == "POST"
    assert headers["Access-Control-Allow-Private-Network"] == "true"
    assert headers["Access-Control-Allow-Origin"] == "http://example.org"


@pytest.mark.parametrize("path, marker", [("/crossdomain.xml", b'allow-access-from domain="*"'),
                                          ("/clientaccesspolicy.xml", b'<domain uri="*"/>')])
def test_policy_files_are_served(web_hub, path, marker):
    status, _, body = request(web_hub, "GET", path)
    assert status == 200 and marker in body


def test_reverse_callbacks_are_pulled_when_they_arrive(web_hub):
    sender = RawClient(web_hub)
    try:
        with web_proxy(web_hub) as proxy:
            key = proxy.samp.webhub.register({"samp.name": "w"})["samp.private-key"]
            proxy.samp.webhub.declareSubscriptions(key, {"test.msg": {}})
            proxy.samp.webhub.allowReverseCallbacks(key, "1")
            web_id = [c for c in sender.hub.getRegisteredClients(sender.key) if c != "cli#hub"][0]
            timer = threading.Timer(0.3, sender.hub.notify, (sender.key, web_id, MSG))
            timer.start()
            start = time.monotonic()
            items = proxy.samp.webhub.pullCallbacks(key, "10")
            timer.join(WAIT)
            assert time.monotonic() - start < 5.0
            assert items[0]["samp.methodName"] == "receiveNotification"
            assert items[0]["samp.params"][0] == sender.id
            assert items[0]["samp.params"][1]["samp.mtype"] == "test.msg"
            proxy.samp.webhub.unregister(key)
    finally:
        sender.close()


def test_pull_callbacks_returns_empty_after_its_timeout(web_hub):
    with web_proxy(web_hub) as proxy:
        key = proxy.samp.webhub.register({"samp.name": "w"})["samp.private-key"]
        proxy.samp.webhub.allowReverseCallbacks(key, "1")
        start = time.monotonic()
        assert proxy.samp.webhub.pullCallbacks(key, "1") == []
        assert 0.8 < time.monotonic() - start < WAIT
        proxy.samp.webhub.unregister(key)


def test_web_client_call_and_wait_to_standard_client(web_hub):
    def on_call(client, sender, msg_id, message):
        client.hub.reply(client.key, msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    receiver = RawClient(web_hub, on_call=on_call)
    try:
        receiver.subscribe("test.msg")
        with web_proxy(web_hub) as proxy:
            key = proxy.samp.webhub.register({"samp.name": "w"})["samp.private-key"]
            response = proxy.samp.webhub.callAndWait(key, receiver.id, MSG, "5")
            assert response["samp.status"] == "samp.ok"
            proxy.samp.webhub.unregister(key)
    finally:
        receiver.close()


class WebClient:
    """A registered web client that takes reverse callbacks, with its translator path."""

    def __init__(self, hub):
        self.proxy = web_proxy(hub)
        reg = self.proxy.samp.webhub.register({"samp.name": "w"})
        self.key, self.id = reg["samp.private-key"], reg["samp.self-id"]
        self.translator = reg["samp.url-translator"].split(str(hub._web_port), 1)[1]
        self.proxy.samp.webhub.declareSubscriptions(self.key, {"test.msg": {}})
        self.proxy.samp.webhub.allowReverseCallbacks(self.key, "1")

    def pull(self, count):
        items = []
        deadline = time.monotonic() + WAIT
        while len(items) < count and time.monotonic() < deadline:
            items += self.proxy.samp.webhub.pullCallbacks(self.key, "1")
        return items

    def close(self):
        try:
            self.proxy.samp.webhub.unregister(self.key)
        finally:
            self.proxy("close")()


@pytest.fixture
def web_client(web_hub):
    client = WebClient(web_hub)
    yield client
    client.close()


@pytest.fixture
def local_files(tmp_path):
    files = {}
    for name in ("sent.xml", "other.xml"):
        path = tmp_path / name
        path.write_bytes(b"<VOTABLE name='%s'/>" % name.encode())
        files[name] = path.as_uri()
    return files


def test_translator_serves_a_url_delivered_to_the_web_client(web_hub, web_client, local_files):
    sender = RawClient(web_hub)
    try:
        sender.hub.notify(sender.key, web_client.id, {
            "samp.mtype": "test.msg", "samp.params": {"url": local_files["sent.xml"]}})
        assert web_client.pull(1)
        status, _, body = request(web_hub, "GET", web_client.translator + local_files["sent.xml"])
        assert (status, body) == (200, b"<VOTABLE name='sent.xml'/>")
    finally:
        sender.close()


def test_translator_refuses_a_url_no_message_to_the_web_client_mentioned(
        web_hub, web_client, local_files):
    sender = RawClient(web_hub)
    try:
        sender.hub.notify(sender.key, web_client.id, {
            "samp.mtype": "test.msg", "samp.params": {"url": local_files["sent.xml"]}})
        assert web_client.pull(1)
        status, _, body = request(web_hub, "GET", web_client.translator + local_files["other.xml"])
        assert status == 403 and b"VOTABLE" not in body
    finally:
        sender.close()


def test_translator_refuses_a_url_delivered_to_another_web_client(web_hub, local_files):
    first, second = WebClient(web_hub), WebClient(web_hub)
    sender = RawClient(web_hub)
    try:
        sender.hub.notify(sender.key, first.id, {
            "samp.mtype": "test.msg", "samp.params": {"url": local_files["sent.xml"]}})
        assert first.pull(1)
        status, _, _ = request(web_hub, "GET", second.translator + local_files["sent.xml"])
        assert status == 403
    finally:
        sender.close()
        first.close()
        second.close()


def test_translator_refuses_a_local_url_the_web_client_sent_itself(web_hub, local_files):
    echo = WebClient(web_hub)
    attacker = WebClient(web_hub)
    try:
        attacker.proxy.samp.webhub.notify(attacker.key, echo.id, {
            "samp.mtype": "test.msg", "samp.params": {"url": local_files["other.xml"]}})
        assert echo.pull(1)
        status, _, _ = request(web_hub, "GET", echo.translator + local_files["other.xml"])
        assert status == 403
    finally:
        echo.close()
        attacker.close()


def test_translator_answers_404_for_an_unknown_or_departed_client(web_hub, local_files):
    client = WebClient(web_hub)
    status, _, _ = request(web_hub, "GET", "/translator/not-a-key?ref=" + local_files["sent.xml"])
    assert status == 404
    client.close()
    status, _, _ = request(web_hub, "GET", client.translator + local_files["sent.xml"])
    assert status == 404


def test_busy_web_port_runs_without_web_profile(make_hub):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        hub = make_hub(web_profile=True, web_port=sock.getsockname()[1])
        assert hub.is_running and hub._web is None
    finally:
        sock.close()


def test_requests_from_a_non_local_address_are_refused(web_hub):
    from samp_compat.standard_profile import RequestInfo
    info = RequestInfo(("192.0.2.7", 5000), {}, "/")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        web_hub._web._dispatch("samp.webhub.register", ({"samp.name": "x"},), info)
    assert fault.value.faultCode == 403


def test_stop_refuses_a_registration_waiting_for_consent(make_hub):
    silent = WebProfileDialog()  # never answers
    hub = make_hub(web_profile=True, web_port=0, web_profile_dialog=silent)
    outcome = {}

    def register():
        with web_proxy(hub) as proxy:
            try:
                proxy.samp.webhub.register({"samp.name": "w"})
            except xmlrpc.client.Fault as fault:
                outcome["code"] = fault.faultCode
            except OSError as exc:
                outcome["error"] = exc
    caller = threading.Thread(target=register)
    caller.start()
    silent.queue_request.get(timeout=WAIT)  # the request reached the dialog
    start = time.monotonic()
    hub.stop()
    caller.join(WAIT)
    assert time.monotonic() - start < WAIT and not caller.is_alive()
    assert outcome.get("code") == 403 or "error" in outcome


class PromptWatch:
    """Stands for sys.stdout; ``shown`` is set once the consent prompt is written."""

    def __init__(self):
        self.text = []
        self.shown = threading.Event()

    def write(self, data):
        self.text.append(data)
        if ">>> " in "".join(self.text):
            self.shown.set()
        return len(data)

    def flush(self):
        pass


@pytest.fixture
def console(monkeypatch):
    """``install()`` puts a pipe as stdin (the write end is returned) and a watched stdout.

    Called from the test body: output capturing resets sys.stdin and
    sys.stdout between fixture setup and the test.
    """
    if os.name != "posix":
        pytest.skip("the console prompt waits on stdin with select() only on POSIX")
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    watch = PromptWatch()

    def install():
        monkeypatch.setattr(sys, "stdin", stdin)
        monkeypatch.setattr(sys, "stdout", watch)
        return write_fd, watch
    yield install
    os.close(write_fd)
    stdin.close()


def start_registration(hub, outcome):
    def register():
        with web_proxy(hub) as proxy:
            try:
                outcome["reg"] = proxy.samp.webhub.register({"samp.name": "webapp"})
            except xmlrpc.client.Fault as fault:
                outcome["code"] = fault.faultCode
            except OSError as exc:
                outcome["error"] = exc
    caller = threading.Thread(target=register)
    caller.start()
    return caller


def test_stop_ends_a_pending_console_prompt_without_leaving_a_thread(make_hub, console):
    write_fd, watch = console()
    hub = make_hub(web_profile=True, web_port=0)
    outcome = {}
    caller = start_registration(hub, outcome)
    try:
        assert watch.shown.wait(WAIT)
        start = time.monotonic()
        hub.stop()
        assert time.monotonic() - start < 5
        caller.join(WAIT)
        assert not caller.is_alive()
        assert outcome.get("code") == 403 or "error" in outcome
        assert not [t for t in threading.enumerate() if t.name.startswith("SAMPWebProfile")]
    finally:
        caller.join(WAIT)


def test_console_answer_yes_through_stdin_registers(make_hub, console):
    write_fd, watch = console()
    hub = make_hub(web_profile=True, web_port=0)
    outcome = {}
    caller = start_registration(hub, outcome)
    try:
        assert watch.shown.wait(WAIT)
        os.write(write_fd, b"yes\n")
    finally:
        caller.join(WAIT)
    assert not caller.is_alive()
    assert outcome["reg"]["samp.self-id"].startswith("cli#")
    with web_proxy(hub) as proxy:
        proxy.samp.webhub.unregister(outcome["reg"]["samp.private-key"])


def test_console_answer_no_through_stdin_is_fault_403(make_hub, console):
    write_fd, watch = console()
    hub = make_hub(web_profile=True, web_port=0)
    outcome = {}
    caller = start_registration(hub, outcome)
    try:
        assert watch.shown.wait(WAIT)
        os.write(write_fd, b"no\n")
    finally:
        caller.join(WAIT)
    assert outcome.get("code") == 403
