"""Our hub with astropy.samp and pyvo.samp clients as real peers."""
import gc
import threading
import warnings

import pytest

from _hub_support import WAIT, hub_proxy, make_hub, private_env  # noqa: F401
from test_web_profile import AutoDialog

pytestmark = pytest.mark.interop

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    astropy_samp = pytest.importorskip("astropy.samp")


@pytest.fixture(autouse=True)
def no_internet():
    with astropy_samp.conf.set_temp("use_internet", False):
        yield


@pytest.fixture
def dialog():
    consent = AutoDialog(True)
    yield consent
    consent.stop()


@pytest.fixture
def hub(make_hub, private_env, monkeypatch, dialog):
    lock = private_env / "hub.lock"
    monkeypatch.setenv("SAMP_HUB", "std-lockurl:" + lock.as_uri())
    started = make_hub(lockfile=str(lock), web_profile=True, web_port=0,
                       web_profile_dialog=dialog)
    dialog.start()
    return started


@pytest.fixture
def connect(hub):
    clients = []

    def make(name="peer", **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = astropy_samp.SAMPIntegratedClient(name=name, **kw)
        client.connect()
        clients.append(client)
        return client
    yield make
    for client in clients:
        if client.is_connected:
            try:
                client.disconnect()
            except OSError:  # the hub is gone already: stop the client's own parts
                client.client.stop()
                client.hub.disconnect()
    # astropy's ServerProxyPool.shutdown() looks up proxy("close") without calling it, so its
    # keep-alive connections to the hub are closed only when the proxies are collected.
    clients.clear()
    gc.collect()


@pytest.fixture(params=["astropy.samp", "pyvo.samp"])
def connect_peer(request, hub):
    """Like ``connect``, with clients of astropy.samp and of pyvo.samp in turn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samp = pytest.importorskip(request.param)
    clients = []

    def make(name="peer"):
        client = samp.SAMPIntegratedClient(name=name)
        client.connect()
        clients.append(client)
        return client
    yield make
    for client in clients:
        if client.is_connected:
            client.disconnect()
    clients.clear()
    gc.collect()


VALUES = {"int": 1331, "float": 2.5, "true": True, "false": False, "text": "x",
          "list": [1, 2.5, False, "y", [3]], "map": {"n": 7, "inner": {"b": True, "l": [0.5]}}}


class Inbox:
    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def notification(self, private_key, sender_id, mtype, params, extra):
        self.add(private_key, sender_id, mtype, params, extra)

    def response(self, private_key, responder_id, msg_tag, response):
        self.add(private_key, responder_id, msg_tag, response)

    def add(self, *args):
        with self.cond:
            self.items.append(args)
            self.cond.notify_all()

    def wait(self, count=1):
        with self.cond:
            self.cond.wait_for(lambda: len(self.items) >= count, WAIT)
            return list(self.items)


def test_registration_and_metadata(connect):
    first, second = connect("first"), connect("second")
    assert first.get_public_id() != second.get_public_id()
    assert set(first.get_registered_clients()) == {"cli#hub", second.get_public_id()}
    assert first.get_metadata(second.get_public_id())["samp.name"] == "second"
    assert first.get_metadata("cli#hub")["samp.name"]


def test_subscriptions_are_visible(connect):
    first, second = connect(), connect()
    second.bind_receive_notification("table.*", Inbox().notification)
    subs = first.get_subscriptions(second.get_public_id())
    assert "table.*" in subs and "samp.app.ping" in subs
    assert second.get_public_id() in first.get_subscribed_clients("table.load.votable")


def test_notify_and_notify_all(connect):
    first, second = connect(), connect()
    inbox = Inbox()
    second.bind_receive_notification("test.msg", inbox.notification)
    first.enotify(second.get_public_id(), "test.msg", a="1")
    assert first.enotify_all("test.msg", b="2") == [second.get_public_id()]
    items = inbox.wait(2)
    assert sorted((item[3] for item in items), key=str) == [{"a": "1"}, {"b": "2"}]
    assert items[0][4]["host"] == "127.0.0.1"


def test_call_reply_and_response(connect):
    first, second = connect(), connect()

    def on_call(private_key, sender_id, msg_id, mtype, params, extra):
        second.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {"echo": params["x"]}})
    second.bind_receive_call("test.call", on_call)
    responses = Inbox()
    first.bind_receive_response("tag-1", responses.response)
    first.ecall(second.get_public_id(), "tag-1", "test.call", x="hello")
    (_, responder, tag, response), = responses.wait()
    assert (responder, tag, response["samp.result"]) == (
        second.get_public_id(), "tag-1", {"echo": "hello"})
    msg_ids = first.call_all("tag-1", {"samp.mtype": "test.call", "samp.params": {"x": "again"}})
    assert list(msg_ids) == [second.get_public_id()]
    assert len(responses.wait(2)) == 2


def test_call_and_wait(connect):
    first, second = connect(), connect()

    def on_call(private_key, sender_id, msg_id, mtype, params, extra):
        second.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {"n": params["n"]}})
    second.bind_receive_call("test.call", on_call)
    for n in range(20):
        response = first.ecall_and_wait(second.get_public_id(), "test.call", "5", n=str(n))
        assert response["samp.result"] == {"n": str(n)}
    assert first.ecall_and_wait("cli#hub", "samp.app.ping", "5")["samp.status"] == "samp.ok"


def test_call_and_wait_timeout_is_a_fault(connect):
    first, second = connect(), connect()
    def ignore(private_key, sender_id, msg_id, mtype, params, extra):
        pass
    second.bind_receive_call("test.call", ignore)
    with pytest.raises(astropy_samp.SAMPProxyError) as info:
        first.ecall_and_wait(second.get_public_id(), "test.call", "1")
    assert info.value.faultCode == 1


def test_hub_events_reach_astropy_clients(connect):
    watcher = connect("watcher")
    events = Inbox()
    watcher.bind_receive_notification("samp.hub.event.*", events.notification)
    other = connect("other")
    other.disconnect()
    mtypes = [item[2] for item in events.wait(4)]
    assert "samp.hub.event.register" in mtypes
    assert "samp.hub.event.unregister" in mtypes


def test_shutdown_event_reaches_astropy_client(hub, connect):
    client = connect()
    inbox = Inbox()
    client.bind_receive_notification("samp.hub.event.shutdown", inbox.notification)
    hub.stop()
    assert inbox.wait()[0][2] == "samp.hub.event.shutdown"


def test_pyvo_connection_and_send_table(hub, connect, tmp_path):
    pyvo_samp = pytest.importorskip("pyvo.samp")
    receiver = connect("receiver")
    received = Inbox()

    def on_table(private_key, sender_id, msg_id, mtype, params, extra):
        with open(params["url"][len("file://"):]) as fobj:
            received.add(fobj.read())
        receiver.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    receiver.bind_receive_call("table.load.votable", on_table)
    from astropy.table import Table
    table = Table({"a": [1, 2, 3]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pyvo_samp.connection(client_name="pyvo peer") as conn:
            assert pyvo_samp.find_client_id(conn, "receiver") == receiver.get_public_id()
            pyvo_samp.send_table_to(conn, table, client_name="receiver", name="t")
    assert "VOTABLE" in received.wait()[0][0]


def test_astropy_web_client_through_the_web_profile(hub, connect):
    helpers = pytest.importorskip("astropy.samp.tests.web_profile_test_helpers")
    web = helpers.SAMPIntegratedWebClient(name="web peer")
    try:
        web.connect(web_port=hub._web_port)
        inbox = Inbox()
        web.bind_receive_notification("test.msg", inbox.notification)

        def on_call(private_key, sender_id, msg_id, mtype, params, extra):
            web.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {"got": params["v"]}})
        web.bind_receive_call("test.call", on_call)
        standard = connect("standard peer")
        standard.enotify(web.get_public_id(), "test.msg", v="1")
        assert inbox.wait()[0][3] == {"v": "1"}
        response = standard.ecall_and_wait(web.get_public_id(), "test.call", "5", v="2")
        assert response["samp.result"] == {"got": "2"}
        assert standard.get_metadata(web.get_public_id())["samp.name"] == "web peer"
    finally:
        leave_web_client(web, hub)


def leave_web_client(web, hub):
    """Stop astropy's web client, then unregister it with a bounded call.

    Its polling thread calls ``pullCallbacks(key, 0)`` back to back while
    holding its registration lock, which ``disconnect()`` needs too; on a busy
    machine ``disconnect()`` can wait for that lock indefinitely. Stopping the
    thread first (bounded join) and unregistering through our own proxy avoids it.
    """
    if not web.client.is_running:
        return
    key = web.client.get_private_key() if web.client.is_registered else None
    web.client.stop(WAIT)  # the thread leaves its loop and closes its hub proxy
    if key is not None:
        with hub_proxy("http://127.0.0.1:%d/" % hub._web_port) as proxy:
            proxy.samp.webhub.unregister(key)


def test_values_pass_through_unchanged_between_peer_clients(connect_peer):
    first, second = connect_peer("first"), connect_peer("second")
    inbox = Inbox()
    second.bind_receive_notification("test.msg", inbox.notification)

    def on_call(private_key, sender_id, msg_id, mtype, params, extra):
        second.reply(msg_id, {"samp.status": "samp.ok", "samp.result": params})
    second.bind_receive_call("test.call", on_call)
    first.notify(second.get_public_id(), {"samp.mtype": "test.msg", "samp.params": VALUES})
    assert inbox.wait()[0][3] == VALUES
    response = first.call_and_wait(second.get_public_id(),
                                   {"samp.mtype": "test.call", "samp.params": VALUES}, "5")
    assert response["samp.result"] == VALUES
    assert type(response["samp.result"]["true"]) is bool


def test_metadata_values_pass_through_unchanged(connect_peer):
    first, second = connect_peer("first"), connect_peer("second")
    first.declare_metadata({"x.count": 3, "x.flags": [True, 1.5]})
    metadata = second.get_metadata(first.get_public_id())
    assert (metadata["x.count"], metadata["x.flags"]) == (3, [True, 1.5])
