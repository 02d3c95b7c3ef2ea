"""The client session in-process: names for completion, sensor patterns, watching; and the
console scripts the distribution installs."""

import importlib.metadata
import logging

import pytest

from katcp_compat import cmd
from katcp_compat.__main__ import ExampleDevice
from katcp_compat._cli_console import ConsoleClient, Session
from katcp_compat.core import Message
from katcp_compat.sensor import Sensor
from katcp_io_helpers import WAIT, started
from protocompat import cli
from protocompat.netutil import LOOPBACK


@pytest.fixture
def device():
    srv = started(ExampleDevice(LOOPBACK, 0))
    yield srv
    srv.stop(WAIT)
    srv.join(WAIT)


@pytest.fixture
def session(device):
    client = ConsoleClient(*device.bind_address[:2], timeout=WAIT)
    client.start(timeout=WAIT)
    assert client.wait_protocol(WAIT)
    yield Session(client)
    client.stop(WAIT)
    client.join(WAIT)


def test_fetched_names_feed_the_completion(session):
    session.fetch_names()
    assert session.completer.matches("?set") == ["?set-mode"]
    assert session.completer.matches("?sensor-value to") == ["toggle"]


def test_sensor_patterns_select_by_name_glob_and_regex(session):
    assert session.sensors_matching(["mode"]) == ["mode"]
    assert session.sensors_matching(["n*", "/^wa/", "note"]) == ["note", "wave"]
    assert len(session.sensors_matching([])) == 7


@pytest.mark.parametrize("pattern, reason", [
    ("nosuch", "no sensor matches 'nosuch'"),
    ("/(/", "bad sensor pattern '/(/'"),
])
def test_sensor_patterns_that_select_nothing_are_errors(session, pattern, reason):
    with pytest.raises(cli.CommandError, match=reason.replace("(", r"\(")):
        session.sensors_matching([pattern])


def test_watch_stops_after_count_and_unsubscribes(session, capsys):
    assert session.watch(["counter"], count=2) == 2
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in out[1:]] == ["counter", "counter"]
    reply, informs = session.ask(Message.request("sensor-sampling", "counter"))
    assert [arg.decode() for arg in reply.arguments] == ["ok", "counter", "none"]


def test_unsolicited_informs_are_printed_before_the_next_prompt(session, device, capsys):
    device.mass_inform(Message.inform("interface-changed"))
    arrived = session.client.informs.get(timeout=WAIT)
    session.client.informs.put(arrived)  # back in the queue, now known to be there
    session.print_pending()
    assert capsys.readouterr().out == "#interface-changed\n"


def test_interface_changed_refreshes_the_completion(session, device, capsys):
    session.fetch_names()
    device.add_sensor(Sensor.integer("new-counter", "Added later.", "", [0, 10]))
    device.mass_inform(Message.inform("interface-changed", "sensor-list"))
    arrived = session.client.informs.get(timeout=WAIT)
    session.client.informs.put(arrived)  # back in the queue, now known to be there
    assert session.completer.matches("?sensor-value new") == []
    session.print_pending()
    assert session.completer.matches("?sensor-value new") == ["new-counter"]


def test_main_in_process_leaves_the_callers_logging_alone(device, capsys):
    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    assert cmd.main(["%s:%d" % device.bind_address[:2], "?watchdog", "-vv"]) == 0
    assert (root.handlers, root.level) == before
    assert capsys.readouterr().out == "!watchdog ok\n"


SCRIPTS = {
    "katcp-compat-server": "katcp_compat.__main__:main",
    "katcp-exampleserver": "katcp_compat.__main__:main",
    "katcp-compat-cmd": "katcp_compat.cmd:main",
    "katcp-exampleclient": "katcp_compat.cmd:main",
    "samp-compat-hub": "samp_compat.hub_script:hub_script",
}


def test_console_scripts_of_the_installed_distribution():
    try:
        dist = importlib.metadata.distribution("protocompat")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("protocompat is not installed (pip install -e .)")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == SCRIPTS
    for name in SCRIPTS:
        assert callable(next(ep for ep in dist.entry_points if ep.name == name).load())
