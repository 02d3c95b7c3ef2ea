"""An application whose own ``lib`` package comes first on ``sys.path`` still gets working packages.

clever-show's checkout is such an application: ``lib/`` with its own ``__init__.py`` and
``config.py``. None of the protocol packages may depend on a top-level ``lib``.
"""
import subprocess
import sys
import textwrap

import pytest

WAIT = 120

SCRIPT = textwrap.dedent('''
    import os, sys, tempfile, threading
    import lib
    assert lib.__file__.startswith(os.getcwd()), lib.__file__   # the application's own lib
    import katcp_compat as katcp
    import samp_compat as samp
    import sockproto
    from sockproto.tcp import tcp_client_stp, tcp_server_stp

    # a KATCP request
    class Device(katcp.DeviceServer):
        VERSION_INFO = ("own-lib", 1, 0)
        BUILD_INFO = ("own-lib", 1, 0, "")

        def setup_sensors(self):
            pass

    server = Device("127.0.0.1", 0)
    server.start(timeout=10)
    client = katcp.BlockingClient(*server.bind_address)
    client.start(timeout=10)
    try:
        assert client.wait_protocol(timeout=10)
        reply, _ = client.blocking_request(katcp.Message.request("watchdog"), timeout=10)
        print("katcp", reply)
    finally:
        client.stop(10); client.join(10)
        server.stop(10); server.join(10)

    # a SAMP notify through a hub
    lockfile = os.path.join(tempfile.mkdtemp(), "samp.lock")
    os.environ["SAMP_HUB"] = "std-lockurl:file://" + lockfile
    hub = samp.SAMPHubServer(lockfile=lockfile, web_profile=False)
    hub.start()
    try:
        receiver = samp.SAMPIntegratedClient(name="receiver")
        receiver.connect()
        got = threading.Event()
        receiver.bind_receive_notification("x-own-lib.ping", lambda *args: got.set())
        sender = samp.SAMPIntegratedClient(name="sender")
        sender.connect()
        sender.notify(receiver.get_public_id(), {"samp.mtype": "x-own-lib.ping", "samp.params": {}})
        assert got.wait(10)
        print("samp notified")
        sender.disconnect()
        receiver.disconnect()
    finally:
        hub.stop()

    # a sockproto request
    server = tcp_server_stp("127.0.0.1", 0)
    server_prot = sockproto.pure_json_protocol(server)
    server_prot.register_callback(sockproto.SID_READ_REQUEST, None,
                                  lambda msg: (sockproto.STATUS_OKAY, msg.get_data_id() * 2))
    client = tcp_client_stp("127.0.0.1", server.port)
    client_prot = sockproto.pure_json_protocol(client)
    try:
        client_prot.send(sockproto.SID_READ_REQUEST, 21, None)
        print("sockproto", client_prot.receive(sockproto.SID_READ_RESPONSE, 21, timeout=10)["data"])
    finally:
        client.close()
        server.close()
''')


@pytest.fixture
def application(tmp_path):
    """A folder shaped like clever-show's checkout: its own ``lib`` package, no netutil in it."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "__init__.py").write_text("")
    (lib / "config.py").write_text("SETTING = 1\n")
    (tmp_path / "app.py").write_text(SCRIPT)
    return tmp_path


def test_katcp_samp_and_sockproto_work_beside_an_application_lib_package(application):
    result = subprocess.run([sys.executable, "app.py"], cwd=application, capture_output=True,
                            text=True, timeout=WAIT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["katcp !watchdog[1] ok", "samp notified", "sockproto 42"]
