"""SAMPHubServer over the wire: registration, metadata, subscriptions, faults, life cycle."""
import os
import stat
import threading
import urllib.request
import xmlrpc.client

import pytest

from samp_compat.errors import SAMPHubError, SAMPWarning
from samp_compat.hub import SAMPHubServer
from samp_compat.lockfile_helpers import read_lockfile

from _hub_support import WAIT, hub_proxy, hub, make_client, make_hub, private_env  # noqa: F401


def fault_of(call, *args):
    with pytest.raises(xmlrpc.client.Fault) as info:
        call(*args)
    return info.value.faultCode, info.value.faultString


def test_register_returns_key_self_id_and_hub_id(make_client):
    first, second = make_client(), make_client()
    assert (first.id, second.id, first.hub_id) == ("cli#1", "cli#2", "cli#hub")
    assert first.key != second.key


def test_bad_secret_is_fault_7(hub):
    proxy = hub_proxy(hub.params["samp.hub.xmlrpc.url"])
    with proxy:
        assert fault_of(proxy.samp.hub.register, "wrong") == (7, "Bad secret code")
        assert fault_of(proxy.samp.hub.register, 12)[0] == 7


def test_bad_private_key_is_fault_5_without_echo(hub):
    with hub_proxy(hub.params["samp.hub.xmlrpc.url"]) as proxy:
        code, text = fault_of(proxy.samp.hub.getRegisteredClients, "not-a-key-1234")
        assert code == 5 and "not-a-key-1234" not in text
        assert fault_of(proxy.samp.hub.declareMetadata, ["list"], {})[0] == 5


def test_unknown_client_id_is_fault_6(make_client):
    client = make_client()
    assert fault_of(client.hub.getMetadata, client.key, "cli#99")[0] == 6
    assert fault_of(client.hub.getSubscriptions, client.key, 7)[0] == 6


def test_unknown_method_fault_does_not_echo_name(hub):
    with hub_proxy(hub.params["samp.hub.xmlrpc.url"]) as proxy:
        code, text = fault_of(proxy.samp.hub.secretStuff)
        assert "secretStuff" not in text


def test_ping_works_with_and_without_private_key(make_client):
    client = make_client()
    assert client.hub.ping() == "1"
    assert client.hub.ping(client.key) == "1"


def test_registered_clients_exclude_caller_and_include_hub(make_client):
    first, second = make_client(), make_client()
    assert first.hub.getRegisteredClients(first.key) == ["cli#hub", second.id]


def test_unregistered_client_disappears(make_client):
    first, second = make_client(), make_client()
    second.hub.unregister(second.key)
    assert first.hub.getRegisteredClients(first.key) == ["cli#hub"]
    assert fault_of(second.hub.getRegisteredClients, second.key)[0] == 5


def test_unregistering_an_unknown_key_is_not_a_fault(make_client):
    client = make_client()
    assert client.hub.unregister(client.key) == ""
    assert client.hub.unregister(client.key) == ""  # twice: "" as astropy's hub
    assert client.hub.unregister("never-registered") == ""


def test_metadata_is_declared_and_read(make_client):
    first, second = make_client(), make_client()
    assert first.hub.getMetadata(first.key, second.id) == {}
    second.hub.declareMetadata(second.key, {"samp.name": "two", "x.n": 3})
    assert first.hub.getMetadata(first.key, second.id) == {"samp.name": "two", "x.n": 3}


def test_hub_declares_its_own_metadata_and_subscriptions(make_client):
    client = make_client()
    meta = client.hub.getMetadata(client.key, "cli#hub")
    assert meta["samp.name"] and meta["samp.icon.url"].endswith("/samp/icon")
    assert "samp.app.ping" in client.hub.getSubscriptions(client.key, "cli#hub")


def test_icon_is_served_as_png(hub):
    with urllib.request.urlopen(hub.params["samp.hub.xmlrpc.url"] + "/samp/icon",
                                timeout=WAIT) as resp:
        assert resp.read(8) == b"\x89PNG\r\n\x1a\n"


def test_subscriptions_are_replaced_and_kept_verbatim(make_client):
    first, second = make_client(), make_client()
    second.hub.declareSubscriptions(second.key, {"table.*": {}, "table.load.votable": {"a": "b"}})
    assert first.hub.getSubscriptions(first.key, second.id) == {
        "table.*": {}, "table.load.votable": {"a": "b"}}
    second.hub.declareSubscriptions(second.key, {"image.load.fits": {}})
    assert first.hub.getSubscribedClients(first.key, "table.load.votable") == {}
    assert first.hub.getSubscribedClients(first.key, "image.load.fits") == {second.id: {}}


def test_subscribed_clients_honour_wildcards_and_exclude_caller(make_client):
    first, second, third = make_client(), make_client(), make_client()
    first.subscribe("*")
    second.subscribe("table.*")
    third.subscribe("table.load.fits")
    assert sorted(first.hub.getSubscribedClients(first.key, "table.load.votable")) == [second.id]
    assert first.hub.getSubscribedClients(first.key, "samp.app.ping") == {"cli#hub": {}}


def test_get_mtype_subtypes_lists_wildcards_most_specific_first():
    assert SAMPHubServer.get_mtype_subtypes("samp.app.ping") == [
        "samp.app.ping", "samp.app.*", "samp.*", "*"]
    assert SAMPHubServer.get_mtype_subtypes("x") == ["x", "*"]


def test_get_mtype_subtypes_of_the_star_lists_it_twice_as_astropy():
    assert SAMPHubServer.get_mtype_subtypes("*") == ["*", "*"]


def test_properties_and_lockfile(make_hub, private_env):
    hub = make_hub(label="lab")
    assert hub.is_running and hub.id == hub.params["hub.id"]
    params = read_lockfile(str(private_env / "lock-0"))
    assert params == hub.params and params["hub.label"] == "lab"
    assert params["samp.profile.version"] == "1.3"
    assert stat.S_IMODE(os.stat(private_env / "lock-0").st_mode) == 0o600


def test_stop_removes_lockfile_and_sets_not_running(private_env):
    path = str(private_env / "lock")
    hub = SAMPHubServer(lockfile=path, web_profile=False)
    hub.start()
    hub.stop()
    assert not hub.is_running and not os.path.exists(path)
    hub.stop()  # a second stop is harmless


def test_stop_leaves_a_lockfile_rewritten_by_another_hub(private_env):
    path = str(private_env / "lock")
    hub = SAMPHubServer(lockfile=path, web_profile=False)
    hub.start()
    with open(path, "w") as fobj:
        fobj.write("samp.secret=other\n")
    hub.stop()
    assert os.path.exists(path)


def test_starting_twice_raises(hub):
    with pytest.raises(SAMPHubError, match="already running"):
        hub.start()


def test_second_hub_on_a_live_lockfile_warns_and_runs_without_lockfile(
        make_hub, private_env, caplog):
    caplog.set_level("INFO", logger="samp_compat.hub")
    path = str(private_env / "shared")
    first = make_hub(lockfile=path)
    other = SAMPHubServer(lockfile=path, web_profile=False)
    with pytest.warns(SAMPWarning, match=r"Another SAMP Hub is already running \(lockfile "
                                         r".*shared\): no lockfile written"):
        other.start()
    assert "Hub started without a lockfile" in caplog.text
    assert "aborted" not in caplog.text
    try:
        assert other.is_running
        assert read_lockfile(path)["samp.secret"] == first.params["samp.secret"]
        with hub_proxy(other.params["samp.hub.xmlrpc.url"]) as proxy:
            assert proxy.samp.hub.ping() == "1"
    finally:
        other.stop()
    assert not other.is_running
    assert read_lockfile(path)["samp.secret"] == first.params["samp.secret"]


def test_hub_restarts_after_stop(private_env):
    hub = SAMPHubServer(lockfile=str(private_env / "lock"), web_profile=False)
    hub.start()
    hub.stop()
    hub.start()
    try:
        with hub_proxy(hub.params["samp.hub.xmlrpc.url"]) as proxy:
            assert proxy.samp.hub.ping() == "1"
    finally:
        hub.stop()


def test_single_mode_without_lockfile_writes_home_dot_samp(private_env):
    hub = SAMPHubServer(web_profile=False)
    hub.start()
    try:
        assert read_lockfile(str(private_env / "home" / ".samp"))["hub.id"] == hub.id
    finally:
        hub.stop()
    assert not (private_env / "home" / ".samp").exists()


def test_multiple_mode_writes_in_samp_1(private_env):
    hub = SAMPHubServer(web_profile=False, mode="multiple")
    hub.start()
    try:
        assert (private_env / "home" / ".samp-1" / ("samp-hub-" + hub.id)).exists()
    finally:
        hub.stop()


def test_start_wait_blocks_until_the_hub_stops(private_env):
    hub = SAMPHubServer(lockfile=str(private_env / "lock"), web_profile=False, timeout=1)
    hub.start(wait=True)
    assert not hub.is_running


def _hub_threads(before):
    prefixes = ("SAMPHubServer", "SAMPWebProfile", "SAMPHubDelivery")
    return [t for t in threading.enumerate() if t not in before and t.name.startswith(prefixes)]


def test_idle_hub_runs_one_loop_thread_for_both_profiles(make_hub, make_client):
    before = set(threading.enumerate())
    hub = make_hub(web_profile=True, web_port=0)
    sender, receiver = make_client(), make_client()
    receiver.subscribe("test.note")
    sender.hub.notify(sender.key, receiver.id, {"samp.mtype": "test.note", "samp.params": {}})
    assert receiver.wait_mtype("test.note")
    with urllib.request.urlopen("http://127.0.0.1:%d/crossdomain.xml" % hub._web_port,
                                timeout=WAIT) as response:
        assert response.status == 200
    for thread in _hub_threads(before):
        if thread.name != "SAMPHubServer":  # workers and deliveries end once idle
            thread.join(WAIT)
    assert [t.name for t in _hub_threads(before)] == ["SAMPHubServer"]
