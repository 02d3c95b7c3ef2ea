"""pyvo-style helpers: tables, products, client lookup and the connection manager."""
import os
import sys
import urllib.parse
import urllib.request

import pytest

import samp_compat
from samp_compat import helpers

from samp_client_support import (  # noqa: F401
    call_and_wait, Recorder, make_client, notification_recorder, hub, samp_env)


def _table():
    Table = pytest.importorskip("astropy.table").Table

    return Table({"ra": [1.5, 2.5], "name": ["a", "b"]})


def _votable_with_param_and_info():
    from_table = pytest.importorskip("astropy.io.votable").from_table

    votable = from_table(_table())
    resource = votable.resources[0]
    from astropy.io.votable.tree import Info, Param

    resource.tables[0].params.append(Param(votable, name="epoch", datatype="double",
                                           value="2000.0"))
    resource.infos.append(Info(name="QUERY_STATUS", value="OK"))
    return votable


def _read(url):
    from astropy.io.votable import parse

    path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
    return parse(path)


def test_importing_helpers_does_not_import_astropy():
    import subprocess

    code = ("import sys, samp_compat, samp_compat.helpers, samp_compat.vo_helpers;"
            "print(any(m == 'astropy' or m.startswith('astropy.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=os.path.dirname(os.path.dirname(samp_compat.__file__)))
    assert out.stdout.strip() == "False", out.stderr


def test_accessible_table_yields_file_url_and_removes_file():
    with helpers.accessible_table(_table()) as url:
        assert url.startswith("file://")
        table = _read(url).get_first_table().to_table()
        assert list(table["ra"]) == [1.5, 2.5]
        path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
    assert not os.path.exists(path)


def test_accessible_table_keeps_params_and_infos_of_votable():
    with helpers.accessible_table(_votable_with_param_and_info()) as url:
        votable = _read(url)
    assert votable.get_first_table().get_field_by_id_or_name("epoch").value == 2000.0
    assert votable.resources[0].infos[0].name == "QUERY_STATUS"


def test_find_client_id_by_name_and_missing_name(hub, make_client):
    a = make_client(name="sender")
    b = make_client(name="receiver")
    assert helpers.find_client_id(a, "receiver") == b.get_public_id()
    with pytest.raises(KeyError):
        helpers.find_client_id(a, "nobody")


def _table_receiver(client, store):
    def load(private_key, sender_id, msg_id, mtype, params, extra):
        store(params["name"], _read(params["url"]).get_first_table().to_table())
        client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})
    return load


def test_send_table_to_named_client_is_readable_there(hub, make_client):
    a = make_client(name="sender")
    b = make_client(name="receiver")
    got = Recorder()
    b.bind_receive_call("table.load.votable", _table_receiver(b, got))
    helpers.send_table_to(a, _table(), client_name="receiver", name="mine")
    name, table = got.wait_for(1)[0]
    assert name == "mine" and list(table["name"]) == ["a", "b"]


def test_send_table_broadcast_goes_only_to_subscribers(hub, make_client):
    a = make_client(name="sender")
    b = make_client(name="receiver")
    make_client(name="bystander")  # registered, not subscribed: must not cause a fault
    got = Recorder()
    b.bind_receive_call("table.*", _table_receiver(b, got))
    helpers.send_table_to(a, _table())
    assert got.wait_for(1)[0][0] == "data"


def test_send_image_and_spectrum_notify_the_right_mtypes(hub, make_client):
    a = make_client()
    b = make_client(name="viewer")
    receive = notification_recorder()
    b.bind_receive_notification("image.load.fits", receive)
    b.bind_receive_notification("spectrum.load.ssa-generic", receive)
    helpers.send_image_to(a, "http://example.invalid/i.fits", client_name="viewer", name="img")
    helpers.send_spectrum_to(a, "http://example.invalid/s.xml")
    calls = receive.recorder.wait_for(2)
    assert {(c[2], c[3]["name"]) for c in calls} == {("image.load.fits", "img"),
                                                    ("spectrum.load.ssa-generic", "data")}


def test_connection_context_manager_connects_and_disconnects(hub, make_client):
    observer = make_client()
    with samp_compat.connection(client_name="ctx") as conn:
        assert conn.is_connected
        assert helpers.find_client_id(observer, "ctx") == conn.get_public_id()
    assert not conn.is_connected
    with pytest.raises(KeyError):
        helpers.find_client_id(observer, "ctx")


def test_vo_helpers_module_exports_the_same_functions():
    from samp_compat import vo_helpers

    assert vo_helpers.send_table_to is helpers.send_table_to
    assert sorted(vo_helpers.__all__) == sorted(helpers.__all__)
