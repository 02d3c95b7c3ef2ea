"""Hub message routing: notify, call, callAndWait, reply, events, timeouts, dead clients."""
import threading
import time
import xmlrpc.client

import pytest

from samp_compat.errors import SAMPWarning

from _hub_support import (WAIT, RawClient, hub, make_client, make_hub,  # noqa: F401
                          private_env, reply_ok)

MSG = {"samp.mtype": "test.msg", "samp.params": {"a": "1"}}


def fault_code(call, *args):
    with pytest.raises(xmlrpc.client.Fault) as info:
        call(*args)
    return info.value.faultCode


def test_notify_delivers_with_host_and_user(make_client):
    sender, receiver = make_client(), make_client()
    receiver.subscribe("test.msg")
    assert sender.hub.notify(sender.key, receiver.id, MSG) == {}
    (_, from_id, message), = receiver.wait_mtype("test.msg")
    assert from_id == sender.id
    assert message == dict(MSG, host="127.0.0.1", user="unknown")


def test_non_string_values_pass_through_unchanged(make_client):
    sender, receiver = make_client(), make_client()
    receiver.subscribe("test.msg")
    params = {"i": 3, "f": 1.5, "b": True, "l": [1, False, {"m": [2.5]}], "s": "x"}
    sender.hub.notify(sender.key, receiver.id, {"samp.mtype": "test.msg", "samp.params": params})
    (_, _, message), = receiver.wait_mtype("test.msg")
    assert message["samp.params"] == params
    assert type(message["samp.params"]["b"]) is bool


def test_responses_pass_through_unchanged(make_client):
    sender, receiver = make_client(), make_client()
    receiver.subscribe("test.call")
    msg_id = sender.hub.call(sender.key, receiver.id, "tag", {"samp.mtype": "test.call"})
    response = {"samp.status": "samp.ok", "samp.result": {"n": 7, "ok": False, "v": [1.25]}}
    receiver.hub.reply(receiver.key, msg_id, response)
    (_, responder, tag, received), = sender.wait_for(lambda item: item[0] == "response")
    assert (responder, tag, received) == (receiver.id, "tag", response)


def test_notify_to_unsubscribed_client_is_fault_2(make_client):
    sender, receiver = make_client(), make_client()
    assert fault_code(sender.hub.notify, sender.key, receiver.id, MSG) == 2


@pytest.mark.parametrize("message", [{"samp.params": {}}, {"samp.mtype": 5}, "text", []])
def test_message_without_string_mtype_is_fault_3(make_client, message):
    sender, receiver = make_client(), make_client()
    receiver.subscribe("*")
    assert fault_code(sender.hub.notify, sender.key, receiver.id, message) == 3
    assert fault_code(sender.hub.notifyAll, sender.key, message) == 3
    assert fault_code(sender.hub.callAll, sender.key, "t", message) == 3


def test_notify_all_skips_sender_and_returns_recipients(make_client):
    sender, first, second = make_client(), make_client(), make_client()
    for client in (sender, first, second):
        client.subscribe("test.*")
    assert sorted(sender.hub.notifyAll(sender.key, MSG)) == [first.id, second.id]
    assert first.wait_mtype("test.msg") and second.wait_mtype("test.msg")
    assert not sender.wait_mtype("test.msg", timeout=0.2)


def test_notify_all_without_recipient_warns(make_client, hub):
    sender = make_client()
    with pytest.warns(SAMPWarning, match="No client was able"):
        hub._router.notify_all(sender.key, MSG)


def test_call_and_reply_reach_the_sender_with_its_tag(make_client):
    sender, receiver = make_client(), make_client(on_call=reply_ok({"x": "y"}))
    receiver.subscribe("test.msg")
    msg_id = sender.hub.call(sender.key, receiver.id, "my-tag", MSG)
    assert msg_id.startswith("msg#") and msg_id.endswith(";;cli#hub;;%s;;my-tag" % sender.id)
    (_, responder, tag, response), = sender.wait_for(lambda item: item[0] == "response")
    assert (responder, tag) == (receiver.id, "my-tag")
    assert response == {"samp.status": "samp.ok", "samp.result": {"x": "y"}}


def test_call_all_returns_a_msg_id_per_recipient(make_client):
    sender = make_client()
    receivers = [make_client(on_call=reply_ok()) for _ in range(2)]
    for client in receivers:
        client.subscribe("test.msg")
    ids = sender.hub.callAll(sender.key, "t", MSG)
    assert sorted(ids) == sorted(c.id for c in receivers)
    deadline = time.monotonic() + WAIT
    while len(sender.wait_for(lambda i: i[0] == "response")) < 2 and time.monotonic() < deadline:
        sender.wait_for(lambda i: False, timeout=0.05)
    assert len(sender.wait_for(lambda i: i[0] == "response")) == 2


def test_call_and_wait_returns_the_reply(make_client):
    sender, receiver = make_client(), make_client(on_call=reply_ok({"v": "1"}))
    receiver.subscribe("test.msg")
    response = sender.hub.callAndWait(sender.key, receiver.id, MSG, "5")
    assert response == {"samp.status": "samp.ok", "samp.result": {"v": "1"}}


def test_call_and_wait_to_the_hub_ping_never_loses_a_reply(make_client):
    client = make_client()
    for _ in range(100):
        response = client.hub.callAndWait(client.key, "cli#hub",
                                          {"samp.mtype": "samp.app.ping", "samp.params": {}}, "5")
        assert response["samp.status"] == "samp.ok"


def test_call_and_wait_times_out_with_fault_1(make_client):
    sender, receiver = make_client(), make_client()
    receiver.subscribe("test.msg")
    start = time.monotonic()
    with pytest.raises(xmlrpc.client.Fault) as info:
        sender.hub.callAndWait(sender.key, receiver.id, MSG, "1")
    assert (info.value.faultCode, info.value.faultString) == (1, "Timeout expired!")
    assert time.monotonic() - start < WAIT


def test_call_and_wait_gets_an_error_when_the_recipient_leaves(make_client):
    sender = make_client()
    receiver = make_client(on_call=lambda c, s, m, msg: threading.Thread(
        target=c.hub.unregister, args=(c.key,)).start())
    receiver.subscribe("test.msg")
    response = sender.hub.callAndWait(sender.key, receiver.id, MSG, "0")
    assert response["samp.status"] == "samp.error"


def test_query_by_meta_on_the_hub_client(make_client):
    client, named = make_client(), make_client(name="findme")
    response = client.hub.callAndWait(client.key, "cli#hub", {
        "samp.mtype": "samp.query.by-meta",
        "samp.params": {"key": "samp.name", "value": "findme"}}, "5")
    assert response["samp.result"] == {"ids": [named.id]}


def test_only_the_recipient_can_reply(make_client):
    sender, receiver, intruder = make_client(), make_client(), make_client()
    receiver.subscribe("test.msg")
    msg_id = sender.hub.call(sender.key, receiver.id, "t", MSG)
    assert fault_code(intruder.hub.reply, intruder.key, msg_id, {"samp.status": "samp.ok"}) == 6


def test_events_for_register_metadata_subscriptions_and_unregister(make_client):
    watcher = make_client()
    watcher.subscribe("samp.hub.event.*")
    other = make_client(name="other")
    other.subscribe("x.y")
    other.hub.unregister(other.key)
    for mtype, params in [("samp.hub.event.register", {"id": other.id}),
                          ("samp.hub.event.metadata", {"id": other.id,
                                                       "metadata": {"samp.name": "other"}}),
                          ("samp.hub.event.subscriptions", {"id": other.id,
                                                            "subscriptions": {"x.y": {}}}),
                          ("samp.hub.event.unregister", {"id": other.id})]:
        about_other = watcher.wait_for(lambda item: item[-1].get("samp.mtype") == mtype
                                       and item[-1]["samp.params"]["id"] == other.id)
        (_, sender, message), = about_other
        assert sender == "cli#hub" and message["samp.params"] == params


def test_leaving_client_gets_no_unregister_event_about_itself(make_client):
    leaving = make_client()
    leaving.subscribe("samp.hub.event.unregister", "test.msg")
    leaving.hub.unregister(leaving.key)
    assert not leaving.wait_mtype("samp.hub.event.unregister", timeout=0.3)


def test_stop_sends_the_shutdown_event(make_hub):
    hub = make_hub()
    client = RawClient(hub)
    try:
        client.subscribe("samp.hub.event.shutdown")
        hub.stop()
        assert client.wait_mtype("samp.hub.event.shutdown")
    finally:
        client.close()


def test_idle_client_gets_disconnect_and_is_unregistered(make_hub):
    hub = make_hub(client_timeout=1)
    client, watcher = RawClient(hub), RawClient(hub)
    try:
        client.subscribe("samp.hub.disconnect")
        (_, _, message), = client.wait_mtype("samp.hub.disconnect")
        assert message["samp.params"] == {"reason": "Timeout expired!"}
    finally:
        client.close()
        watcher.close()


def test_idle_hub_stops_itself(make_hub):
    hub = make_hub(timeout=1)
    assert hub._stopped.wait(WAIT)
    assert not hub.is_running


def test_unreachable_client_is_unregistered(make_client):
    sender, gone = make_client(), make_client()
    gone.subscribe("test.msg")
    gone.server.stop(WAIT)
    sender.hub.notify(sender.key, gone.id, MSG)
    deadline = time.monotonic() + WAIT
    while gone.id in sender.hub.getRegisteredClients(sender.key):
        assert time.monotonic() < deadline
        sender.wait_for(lambda item: False, timeout=0.05)


def test_hanging_client_does_not_block_others_or_stop(make_hub):
    hub = make_hub(pool_size=4)
    release = threading.Event()
    hanging = RawClient(hub, on_notify=lambda s, m: release.wait(WAIT))
    sender, other = RawClient(hub), RawClient(hub)
    try:
        hanging.subscribe("test.msg")
        other.subscribe("test.msg")
        for _ in range(20):
            sender.hub.notify(sender.key, hanging.id, MSG)
        sender.hub.notify(sender.key, other.id, MSG)
        assert other.wait_mtype("test.msg", timeout=5)
        start = time.monotonic()
        hub.stop()
        assert time.monotonic() - start < WAIT
    finally:
        release.set()
        for client in (hanging, sender, other):
            client.close()
