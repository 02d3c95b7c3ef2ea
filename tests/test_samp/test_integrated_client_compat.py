"""SAMPIntegratedClient: connection life cycle and the e* helpers."""
import pytest

import samp_compat
from samp_compat import SAMPIntegratedClient

from samp_client_support import call_and_wait, Recorder, make_client, notification_recorder, hub, samp_env  # noqa: F401,E501


def test_new_client_is_not_connected_and_disconnect_is_a_no_op():
    client = SAMPIntegratedClient()
    assert client.client is None
    client.disconnect()


def test_format_easy_msg_merges_extra_kws():
    msg = SAMPIntegratedClient._format_easy_msg("a.b", {"x": "1", "extra_kws": {"k": "v"}})
    assert msg == {"samp.mtype": "a.b", "samp.params": {"x": "1"}, "k": "v"}


def test_format_easy_response_leaves_out_missing_parts():
    assert SAMPIntegratedClient._format_easy_response("samp.ok", {"a": "1"}, None) == {
        "samp.status": "samp.ok", "samp.result": {"a": "1"}}


def test_connect_registers_and_disconnect_unregisters(hub, make_client):
    observer = make_client()
    client = SAMPIntegratedClient(name="x")
    client.connect()
    assert client.is_connected and client.client.is_registered
    client_id = client.get_public_id()
    assert client_id in observer.get_registered_clients()
    client.disconnect()
    assert not client.is_connected
    assert client_id not in observer.get_registered_clients()


def test_reconnect_three_times(hub):
    client = SAMPIntegratedClient()
    ids = []
    for _ in range(3):
        client.connect()
        ids.append(client.get_public_id())
        client.disconnect()
    assert len(set(ids)) == 3


def test_connect_while_connected_replaces_the_registration(hub, make_client):
    observer = make_client()
    client = SAMPIntegratedClient()
    client.connect()
    first = client.get_public_id()
    client.connect()
    try:
        registered = observer.get_registered_clients()
        assert client.get_public_id() in registered and first not in registered
    finally:
        client.disconnect()


def test_not_callable_client_connects_and_disconnects(hub, make_client):
    observer = make_client()
    client = SAMPIntegratedClient(callable=False)
    client.connect()
    assert client.is_connected
    client_id = client.get_public_id()
    client.disconnect()
    assert client_id not in observer.get_registered_clients()


def test_bind_receive_message_catches_calls_and_notifications(hub, make_client):
    a = make_client()
    b = make_client()
    rec = Recorder()
    b.bind_receive_message("test.both", rec, metadata={"x.note": "both"})
    assert a.get_subscriptions(b.get_public_id())["test.both"] == {"x.note": "both"}
    a.enotify(b.get_public_id(), "test.both")
    a.ecall(b.get_public_id(), "t", "test.both")
    calls = rec.wait_for(2)
    assert sorted(c[2] is None for c in calls) == [False, True]


def test_declare_subscriptions_adds_extra_mtypes(hub, make_client):
    a = make_client()
    b = make_client()
    b.declare_subscriptions({"extra.only": {}})
    assert "extra.only" in a.get_subscriptions(b.get_public_id())


def test_replier_wrapper_answers_call_and_wait_with_ok(hub, make_client):
    a = make_client()
    b = make_client()

    @samp_compat.SAMPMsgReplierWrapper(b)
    def double(private_key, sender_id, msg_id, mtype, params, extra):
        return {"out": str(2 * int(params["n"]))}

    b.bind_receive_call("test.double", double)
    response = call_and_wait(hub, a, b.get_public_id(),
                             {"samp.mtype": "test.double", "samp.params": {"n": "21"}})
    assert response == {"samp.status": "samp.ok", "samp.result": {"out": "42"}}


def test_connect_failure_leaves_nothing_running(samp_env):
    client = SAMPIntegratedClient()
    with pytest.raises(samp_compat.SAMPHubError):
        client.connect()
    assert not client.is_connected
