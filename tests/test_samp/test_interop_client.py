"""samp_compat clients talking through the reference hubs (astropy.samp, pyvo.samp)
and through the samp_compat hub."""
import pytest

import samp_compat
from samp_compat.errors import SAMPProxyError, SAMPProxyTimeoutError

from samp_client_support import (  # noqa: F401
    Recorder, any_hub, call_and_wait, is_reference_hub, make_client, notification_recorder, samp_env)

pytestmark = pytest.mark.interop


def _echo_binding(client):
    def echo(private_key, sender_id, msg_id, mtype, params, extra):
        client.reply(msg_id, {"samp.status": samp_compat.SAMP_STATUS_OK, "samp.result": params})
    return echo


def test_registration_gives_ids_seen_by_others(any_hub, make_client):
    a = make_client(name="alpha")
    b = make_client(name="beta")
    assert a.get_public_id() and a.get_private_key()
    assert b.get_public_id() in a.get_registered_clients()
    assert a.get_public_id() not in a.get_registered_clients()


def test_metadata_declared_at_registration_is_readable(any_hub, make_client):
    a = make_client(name="alpha", description="first", metadata={"x.custom": "1"})
    b = make_client(name="beta")
    meta = b.get_metadata(a.get_public_id())
    assert meta["samp.name"] == "alpha"
    assert meta["samp.description.text"] == "first"
    assert meta["x.custom"] == "1"


def test_declare_metadata_updates_hub(any_hub, make_client):
    a = make_client(name="alpha")
    b = make_client()
    a.declare_metadata({"author.name": "me"})
    assert b.get_metadata(a.get_public_id())["author.name"] == "me"


def test_subscriptions_follow_bindings(any_hub, make_client):
    a = make_client()
    b = make_client()
    b.bind_receive_notification("test.note", notification_recorder())
    subs = a.get_subscriptions(b.get_public_id())
    assert "test.note" in subs and "samp.app.ping" in subs
    assert "client.env.get" not in subs
    assert b.get_public_id() in a.get_subscribed_clients("test.note")


def test_notify_reaches_bound_function_with_params_and_sender(any_hub, make_client):
    a = make_client()
    b = make_client()
    receive = notification_recorder()
    b.bind_receive_notification("test.note", receive)
    a.enotify(b.get_public_id(), "test.note", value="42")
    key, sender, mtype, params, extra = receive.recorder.wait_for(1)[0]
    assert (key, sender, mtype, params) == (b.get_private_key(), a.get_public_id(), "test.note",
                                            {"value": "42"})


def test_notify_all_returns_subscribed_recipients(any_hub, make_client):
    a = make_client()
    b = make_client()
    c = make_client()
    receive = notification_recorder()
    b.bind_receive_notification("test.*", receive)
    recipients = a.enotify_all("test.note", extra_kws={"x.extra": "e"})
    assert recipients == [b.get_public_id()]
    assert c.get_public_id() not in recipients
    extra = receive.recorder.wait_for(1)[0][4]
    assert extra["x.extra"] == "e"


def test_call_response_comes_back_to_response_binding(any_hub, make_client):
    a = make_client()
    b = make_client()
    b.bind_receive_call("test.echo", _echo_binding(b))
    responses = Recorder()
    a.bind_receive_response("tag-1", responses)
    msg_id = a.ecall(b.get_public_id(), "tag-1", "test.echo", v="1")
    assert isinstance(msg_id, str) and msg_id
    key, responder, tag, response = responses.wait_for(1)[0]
    assert (responder, tag) == (b.get_public_id(), "tag-1")
    assert response["samp.status"] == "samp.ok" and response["samp.result"] == {"v": "1"}


def test_call_all_addresses_every_subscriber(any_hub, make_client):
    a = make_client()
    b = make_client()
    c = make_client()
    b.bind_receive_call("test.echo", _echo_binding(b))
    c.bind_receive_call("test.echo", _echo_binding(c))
    responses = Recorder()
    a.bind_receive_response("all", responses)
    ids = a.ecall_all("all", "test.echo", v="2")
    assert set(ids) == {b.get_public_id(), c.get_public_id()}
    got = responses.wait_for(2)
    assert {r[1] for r in got} == {b.get_public_id(), c.get_public_id()}


def test_call_and_wait_returns_response(any_hub, make_client):
    a = make_client()
    b = make_client()
    b.bind_receive_call("test.echo", _echo_binding(b))
    for i in range(5 if is_reference_hub(any_hub) else 50):
        response = call_and_wait(any_hub, a, b.get_public_id(),
                                 {"samp.mtype": "test.echo", "samp.params": {"n": str(i)}})
        assert response["samp.result"] == {"n": str(i)}


def test_ping_call_is_answered_by_default(any_hub, make_client):
    a = make_client()
    b = make_client()
    response = call_and_wait(any_hub, a, b.get_public_id(),
                             {"samp.mtype": "samp.app.ping", "samp.params": {}})
    assert response["samp.status"] == "samp.ok"


def test_call_and_wait_timeout_raises_timeout_error(any_hub, make_client):
    a = make_client()
    b = make_client()
    b.bind_receive_call("test.silent", lambda *args: None)
    with pytest.raises(SAMPProxyTimeoutError):
        a.ecall_and_wait(b.get_public_id(), "test.silent", "1")


def test_notify_to_unsubscribed_client_is_a_fault(any_hub, make_client):
    a = make_client()
    b = make_client()
    with pytest.raises(SAMPProxyError):
        a.enotify(b.get_public_id(), "test.unknown")


def test_ereply_sends_error_status(any_hub, make_client):
    a = make_client()
    b = make_client()
    b.bind_receive_call("test.fail", lambda k, s, mid, *rest: b.ereply(
        mid, samp_compat.SAMP_STATUS_ERROR, error={"samp.errortxt": "nope"}))
    response = call_and_wait(any_hub, a, b.get_public_id(),
                             {"samp.mtype": "test.fail", "samp.params": {}})
    assert response["samp.status"] == "samp.error"
    assert response["samp.error"]["samp.errortxt"] == "nope"


def test_hub_events_register_and_unregister(any_hub, make_client):
    a = make_client()
    events = notification_recorder()
    a.bind_receive_notification("samp.hub.event.*", events)
    b = make_client(name="late")
    b_id = b.get_public_id()

    def seen(kind):
        return lambda calls: any(c[2] == kind and c[3].get("id") == b_id for c in calls)

    events.recorder.wait_until(seen("samp.hub.event.register"))
    events.recorder.wait_until(seen("samp.hub.event.metadata"))
    b.disconnect()
    events.recorder.wait_until(seen("samp.hub.event.unregister"))


def test_hub_shutdown_event_is_delivered(any_hub, make_client):
    a = make_client()
    events = notification_recorder()
    a.bind_receive_notification("samp.hub.event.shutdown", events)
    any_hub.stop()
    assert events.recorder.wait_for(1)[0][2] == "samp.hub.event.shutdown"


def test_reconnect_after_disconnect(any_hub, make_client):
    a = make_client()
    first = a.get_public_id()
    a.disconnect()
    assert not a.is_connected
    a.connect()
    assert a.is_connected and a.get_public_id() != first
    a.disconnect()
    a.connect(hub=any_hub)
    assert a.is_connected
