"""SAMPHubProxy: connecting, errors and the mapping to samp.hub.* methods."""
import socket

import pytest

from samp_compat import SAMPHubError, SAMPHubProxy, SAMPProxyError

from samp_client_support import hub, samp_env  # noqa: F401


def test_new_proxy_is_not_connected():
    assert SAMPHubProxy().is_connected is False


def test_hub_and_hub_params_together_are_refused():
    with pytest.raises(ValueError):
        SAMPHubProxy().connect(hub=object(), hub_params={})


def test_no_running_hub_is_a_hub_error(samp_env):
    with pytest.raises(SAMPHubError, match="Unable to find a running SAMP Hub"):
        SAMPHubProxy().connect()


def test_stopped_hub_object_is_refused():
    class Stopped:
        is_running = False

    with pytest.raises(SAMPHubError, match="not running"):
        SAMPHubProxy().connect(hub=Stopped())


def test_connect_by_lockfile_discovery(hub):
    proxy = SAMPHubProxy()
    proxy.connect()
    try:
        assert proxy.is_connected
        assert proxy.lockfile["samp.secret"] == hub.params["samp.secret"]
        assert proxy.ping() == "1"
    finally:
        proxy.disconnect()
    assert not proxy.is_connected and proxy.lockfile == {}


def test_connect_by_hub_params(hub):
    proxy = SAMPHubProxy()
    proxy.connect(hub_params=dict(hub.params))
    try:
        assert proxy.ping() == "1"
    finally:
        proxy.disconnect()


def test_register_with_bad_secret_is_proxy_error(hub):
    proxy = SAMPHubProxy()
    proxy.connect(hub=hub)
    try:
        with pytest.raises(SAMPProxyError):
            proxy.register("not-the-secret")
    finally:
        proxy.disconnect()


def test_register_and_unregister_round_trip(hub):
    proxy = SAMPHubProxy()
    proxy.connect(hub=hub, pool_size=2)
    try:
        result = proxy.register(proxy.lockfile["samp.secret"])
        key = result["samp.private-key"]
        assert result["samp.self-id"] and result["samp.hub-id"]
        proxy.declare_metadata(key, {"samp.name": "raw"})
        assert proxy.get_metadata(key, result["samp.self-id"])["samp.name"] == "raw"
        assert result["samp.hub-id"] in proxy.get_registered_clients(key)
        proxy.unregister(key)
    finally:
        proxy.disconnect()


def test_dead_hub_params_raise_os_error(samp_env):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more
    proxy = SAMPHubProxy()
    with pytest.raises(OSError):
        proxy.connect(hub_params={"samp.hub.xmlrpc.url": "http://127.0.0.1:%d/" % port,
                                  "samp.secret": "x"})
    assert not proxy.is_connected
