"""python -m katcp_compat (example server, --demo) and python -m katcp_compat.cmd."""

import os
import re
import signal
import subprocess
import sys

import pytest

from katcp_compat import cmd
from katcp_compat.__main__ import ExampleDevice
from katcp_io_helpers import WAIT, RawClient, started

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_LIMIT = 20.0  # generous bound on a run that takes well under a second


def _run(*args, timeout=DEMO_LIMIT):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_demo_shows_the_conversation_and_exits_zero():
    result = _run("-m", "katcp_compat", "--demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "!help ok 13" in out
    assert "#sensor-list wave A slow sine wave. V float -1.0 1.0" in out
    assert len(re.findall(r"#sensor-status \S+ 1 counter ", out)) == 3
    assert "!add ok 3.75" in out
    assert "!set-mode fail Unknown mode 'dance'" in out


def test_server_mode_serves_until_terminated():
    proc = subprocess.Popen([sys.executable, "-m", "katcp_compat", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        port = int(re.search(r":(\d+);", banner).group(1))
        raw = RawClient(("127.0.0.1", port))
        try:
            assert raw.skip_greeting()[2].startswith(
                "#version-connect katcp-device example-device-1.0")
            assert raw.request("?add 2 3") == ["!add ok 5.0"]
        finally:
            raw.close()
        # SIGTERM: SIGINT is ignored by processes started from a background job.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(DEMO_LIMIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(DEMO_LIMIT)
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def example():
    srv = started(ExampleDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


def test_cmd_prints_informs_and_reply(example, capsys):
    address = "127.0.0.1:%d" % example.bind_address[1]
    assert cmd.main([address, "?sensor-list mode", "?add 1 2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "#sensor-list mode Operating mode.  discrete idle observe calibrate",
        "!sensor-list ok 1",
        "!add ok 3.0"]


def test_cmd_raw_output_and_failure_status(example, capsys):
    address = "127.0.0.1:%d" % example.bind_address[1]
    assert cmd.main(["--raw", address, "?set-mode dance"]) == 1
    assert capsys.readouterr().out.startswith("!set-mode fail Unknown\\_mode")


def test_cmd_reports_a_refused_connection(capsys):
    assert cmd.main(["127.0.0.1:1", "?watchdog"]) == 1


def test_cmd_rejects_bad_address():
    with pytest.raises(SystemExit):
        cmd.main(["nowhere", "?watchdog"])


def test_cmd_as_a_module():
    srv = started(ExampleDevice("127.0.0.1", 0))
    try:
        result = _run("-m", "katcp_compat.cmd", "127.0.0.1:%d" % srv.bind_address[1], "?watchdog")
        assert (result.returncode, result.stdout) == (0, "!watchdog ok\n")
    finally:
        srv.stop(WAIT)


KATCP_055_EXPORTS = [
    "Message", "KatcpSyntaxError", "MessageParser", "DeviceMetaclass", "ExcepthookThread",
    "FailReply", "AsyncReply", "KatcpDeviceError", "KatcpClientError", "Sensor", "ProtocolFlags",
    "DeviceServerBase", "DeviceServer", "DeviceLogger", "DeviceClient", "BlockingClient",
    "CallbackClient", "GenericSensorTree", "BooleanSensorTree", "AggregateSensorTree", "VERSION",
    "VERSION_STR"]


def test_package_exports_the_katcp_0_5_names():
    import katcp_compat

    assert [name for name in KATCP_055_EXPORTS if not hasattr(katcp_compat, name)] == []
    assert set(KATCP_055_EXPORTS) <= set(katcp_compat.__all__)
    assert katcp_compat.VERSION_STR == "katcp-python-%s" % katcp_compat.__version__


def test_resource_client_names_exist_but_are_not_provided():
    import katcp_compat

    with pytest.raises(NotImplementedError):
        katcp_compat.KATCPClientResource({})
