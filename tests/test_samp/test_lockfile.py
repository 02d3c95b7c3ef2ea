"""Standard Profile lockfiles: format, permissions, discovery, and never deleting others' files."""
import os
import stat
import warnings

import pytest

from samp_compat import lockfile_helpers as lockfile
from samp_compat.errors import SAMPHubError, SAMPWarning
from samp_compat.standard_profile import XMLRPCServer

PARAMS = {"samp.secret": "s3cret", "samp.hub.xmlrpc.url": "http://127.0.0.1:1/",
          "samp.profile.version": "1.3"}


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.delenv("SAMP_HUB", raising=False)
    return home


@pytest.fixture
def live_hub_url():
    srv = XMLRPCServer()
    srv.register_function(lambda: "1", "samp.hub.ping")
    srv.start()
    yield srv.url
    assert srv.stop(10)


def test_write_then_read_round_trips(tmp_path):
    path = str(tmp_path / "lock")
    lockfile.write_lockfile(path, PARAMS)
    assert lockfile.read_lockfile(path) == PARAMS


def test_written_file_has_mode_0600_and_header_comments(tmp_path):
    path = tmp_path / "lock"
    lockfile.write_lockfile(str(path), PARAMS)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# SAMP lockfile written on ")
    assert lines[1] == "# Standard Profile required keys"


def test_value_with_equals_sign_is_read_whole(tmp_path):
    path = tmp_path / "lock"
    path.write_text("# c\nsamp.secret=a=b\n\nhub.label = x \n")
    assert lockfile.read_lockfile(str(path)) == {"samp.secret": "a=b", "hub.label": "x"}


def test_file_url_is_read(tmp_path):
    path = tmp_path / "lock"
    lockfile.write_lockfile(str(path), PARAMS)
    assert lockfile.read_lockfile(path.as_uri()) == PARAMS


def test_line_breaks_in_values_are_refused(tmp_path):
    with pytest.raises(ValueError):
        lockfile.write_lockfile(str(tmp_path / "lock"), {"samp.secret": "a\nsamp.x=y"})


def test_missing_lockfile_means_no_hub(tmp_path):
    assert lockfile.check_running_hub(str(tmp_path / "none")) == (False, {})


def test_dead_hub_is_not_running(tmp_path):
    path = str(tmp_path / "lock")
    lockfile.write_lockfile(path, PARAMS)
    assert lockfile.check_running_hub(path) == (False, PARAMS)


def test_live_hub_is_running(tmp_path, live_hub_url):
    path = str(tmp_path / "lock")
    lockfile.write_lockfile(path, dict(PARAMS, **{"samp.hub.xmlrpc.url": live_hub_url}))
    running, params = lockfile.check_running_hub(path)
    assert running and params["samp.hub.xmlrpc.url"] == live_hub_url


def test_single_mode_writes_home_dot_samp(private_home):
    path = lockfile.create_lock_file(mode="single", hub_id="h", hub_params=PARAMS)
    assert path == str(private_home / ".samp")
    assert lockfile.read_lockfile(path) == PARAMS


def test_multiple_mode_writes_in_private_directory(private_home):
    path = lockfile.create_lock_file(mode="multiple", hub_id="abc", hub_params=PARAMS)
    assert path == str(private_home / ".samp-1" / "samp-hub-abc")
    assert stat.S_IMODE(os.stat(private_home / ".samp-1").st_mode) == 0o700


def test_samp_hub_variable_chooses_the_lockfile(tmp_path, monkeypatch):
    target = tmp_path / "env-lock"
    monkeypatch.setenv("SAMP_HUB", "std-lockurl:" + target.as_uri())
    assert lockfile.create_lock_file(str(tmp_path / "other"), hub_params=PARAMS) == str(target)


def test_samp_hub_with_remote_url_refuses_to_start(monkeypatch):
    monkeypatch.setenv("SAMP_HUB", "std-lockurl:http://example.invalid/lock")
    with pytest.warns(SAMPWarning):
        assert lockfile.create_lock_file(hub_params=PARAMS) is False


def test_live_hub_lockfile_is_not_replaced(tmp_path, live_hub_url):
    path = str(tmp_path / "lock")
    other = dict(PARAMS, **{"samp.hub.xmlrpc.url": live_hub_url})
    lockfile.write_lockfile(path, other)
    with pytest.warns(SAMPWarning, match="already running"):
        assert lockfile.create_lock_file(path, hub_params=PARAMS) is False
    assert lockfile.read_lockfile(path) == other


def test_dead_hub_lockfile_is_replaced(tmp_path):
    path = str(tmp_path / "lock")
    lockfile.write_lockfile(path, dict(PARAMS, **{"samp.secret": "old"}))
    assert lockfile.create_lock_file(path, hub_params=PARAMS) == path
    assert lockfile.read_lockfile(path)["samp.secret"] == "s3cret"


def test_custom_lockfile_leaves_home_files_alone(tmp_path, private_home):
    dead = private_home / ".samp"
    lockfile.write_lockfile(str(dead), PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lockfile.create_lock_file(str(tmp_path / "mine"), hub_params=PARAMS)
    assert dead.exists()


def test_remove_lock_file_only_with_matching_secret(tmp_path):
    path = str(tmp_path / "lock")
    lockfile.write_lockfile(path, PARAMS)
    assert not lockfile.remove_lock_file(path, "someone-else")
    assert os.path.exists(path)
    assert lockfile.remove_lock_file(path, "s3cret")
    assert not os.path.exists(path)


def test_running_hubs_include_single_and_multiple(private_home, live_hub_url):
    live = dict(PARAMS, **{"samp.hub.xmlrpc.url": live_hub_url})
    lockfile.write_lockfile(str(private_home / ".samp"), live)
    os.mkdir(private_home / ".samp-1")
    lockfile.write_lockfile(str(private_home / ".samp-1" / "samp-hub-x"), live)
    lockfile.write_lockfile(str(private_home / ".samp-1" / "samp-hub-dead"), PARAMS)
    hubs = lockfile.get_running_hubs()
    assert sorted(hubs) == sorted([str(private_home / ".samp"),
                                   str(private_home / ".samp-1" / "samp-hub-x")])
    assert lockfile.get_main_running_hub() == live


def test_no_main_hub_raises_samphuberror():
    with pytest.raises(SAMPHubError, match="Unable to find a running SAMP Hub"):
        lockfile.get_main_running_hub()


def test_other_profile_raises_samphuberror(monkeypatch):
    monkeypatch.setenv("SAMP_HUB", "web-profile")
    with pytest.raises(SAMPHubError, match="profile not supported"):
        lockfile.get_main_running_hub()


def test_garbage_collection_removes_dead_files_and_keeps_live_ones(private_home, live_hub_url):
    os.mkdir(private_home / ".samp-1")
    live = private_home / ".samp-1" / "samp-hub-live"
    dead = private_home / ".samp-1" / "samp-hub-dead"
    lockfile.write_lockfile(str(live), dict(PARAMS, **{"samp.hub.xmlrpc.url": live_hub_url}))
    lockfile.write_lockfile(str(dead), PARAMS)
    lockfile.write_lockfile(str(private_home / ".samp"), PARAMS)
    lockfile.remove_garbage_lock_files()
    assert live.exists() and not dead.exists() and not (private_home / ".samp").exists()


def test_lockfile_is_read_from_a_loopback_http_url(tmp_path):
    srv = XMLRPCServer()
    srv.add_http_handler("GET", "/lock", lambda info: (200, [], b"samp.secret=x\nhub.label=y\n"))
    srv.start()
    try:
        assert lockfile.read_lockfile(srv.url + "lock") == {"samp.secret": "x", "hub.label": "y"}
    finally:
        assert srv.stop(10)


def test_remote_http_lockfile_is_not_fetched_without_internet():
    with pytest.raises(OSError):
        lockfile.read_lockfile("http://192.0.2.1/lock")
