"""JSAMP, the reference Java toolkit, as a real peer: its hub with our clients, our hub with
its message sender, snooper and hub tester.

Skipped unless JSAMP (``apt-get install jsamp``) and a Java runtime are installed. Each
Java process gets a private ``user.home``, so no lockfile outside the test's folder is
read or written.
"""
import os
import shutil
import subprocess
import threading
import time

import pytest

import samp_compat
from samp_compat.lockfile_helpers import read_lockfile

from _hub_support import WAIT, make_hub, private_env  # noqa: F401

pytestmark = pytest.mark.interop

JSAMP_JAR = "/usr/share/java/jsamp.jar"
#: Seconds a JSAMP command may run (its hub tester takes about 10 s).
JAVA_TIMEOUT = 50.0
JAVA = shutil.which("java")

if JAVA is None or not os.path.isfile(JSAMP_JAR):
    pytest.skip("JSAMP is not installed (apt-get install jsamp)", allow_module_level=True)


def jsamp(home, *args):
    """The command line running JSAMP command ``args`` with ``home`` as its user.home."""
    return [JAVA, "-Duser.home=%s" % home, "-Djsamp.localhost=127.0.0.1", "-classpath",
            JSAMP_JAR, "org.astrogrid.samp.JSamp"] + list(args)


def wait_until(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.05)
    return True


def stop_process(process):
    if process.poll() is None:
        process.terminate()
    try:
        return process.communicate(timeout=WAIT)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate(timeout=WAIT)[0]


@pytest.fixture
def jsamp_hub(tmp_path):
    """JSAMP's hub (Standard Profile only); yields its lockfile contents."""
    home = tmp_path / "jsamp-home"
    home.mkdir()
    process = subprocess.Popen(jsamp(home, "hub", "-mode", "no-gui", "-profiles", "std"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lockfile = home / ".samp"
    try:
        assert wait_until(lambda: lockfile.exists() and "samp.hub.xmlrpc.url" in
                          lockfile.read_text(), JAVA_TIMEOUT), "JSAMP hub did not start"
        yield read_lockfile(str(lockfile))
    finally:
        stop_process(process)


@pytest.fixture
def our_hub(make_hub, private_env, monkeypatch):
    """Our hub; SAMP_HUB names its lockfile, for JSAMP's clients."""
    lock = private_env / "hub.lock"
    monkeypatch.setenv("SAMP_HUB", "std-lockurl:" + lock.as_uri())
    return make_hub(lockfile=str(lock))


@pytest.fixture
def clients():
    made = []

    def connect(name, **kw):
        client = samp_compat.SAMPIntegratedClient(name=name)
        client.connect(**kw)
        made.append(client)
        return client
    yield connect
    for client in made:
        if client.is_connected:
            client.disconnect()


def echo_calls(client, mtype):
    """Make ``client`` answer ``mtype`` calls with ``{"echo": params["x"]}``."""
    def on_call(private_key, sender_id, msg_id, mtype, params, extra):
        client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {"echo": params["x"]}})
    client.bind_receive_call(mtype, on_call)


def test_our_clients_register_with_the_jsamp_hub(jsamp_hub, clients):
    first = clients("first", hub_params=jsamp_hub)
    second = clients("second", hub_params=jsamp_hub)
    assert second.get_public_id() in first.get_registered_clients()
    assert first.get_metadata(second.get_public_id())["samp.name"] == "second"


def test_our_clients_notify_through_the_jsamp_hub(jsamp_hub, clients):
    sender = clients("sender", hub_params=jsamp_hub)
    receiver = clients("receiver", hub_params=jsamp_hub)
    got = []
    arrived = threading.Event()

    def on_notification(private_key, sender_id, mtype, params, extra):
        got.append((sender_id, mtype, params))
        arrived.set()
    receiver.bind_receive_notification("test.msg", on_notification)
    sender.enotify(receiver.get_public_id(), "test.msg", x="1")
    assert arrived.wait(WAIT)
    assert got == [(sender.get_public_id(), "test.msg", {"x": "1"})]


def test_our_clients_call_and_wait_through_the_jsamp_hub(jsamp_hub, clients):
    caller = clients("caller", hub_params=jsamp_hub)
    callee = clients("callee", hub_params=jsamp_hub)
    echo_calls(callee, "test.call")
    for n in range(5):
        response = caller.ecall_and_wait(callee.get_public_id(), "test.call", "10", x=str(n))
        assert response == {"samp.status": "samp.ok", "samp.result": {"echo": str(n)}}


def test_jsamp_message_sender_calls_our_client_through_our_hub(our_hub, clients, tmp_path):
    receiver = clients("receiver", hub=our_hub)
    echo_calls(receiver, "test.call")
    result = subprocess.run(
        jsamp(tmp_path, "messagesender", "-mtype", "test.call", "-mode", "sync",
              "-targetname", "receiver", "-param", "x", "hello"),
        capture_output=True, text=True, timeout=JAVA_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"samp.status": "samp.ok"' in result.stdout
    assert '"echo": "hello"' in result.stdout


def test_jsamp_snooper_receives_our_messages_through_our_hub(our_hub, clients, tmp_path):
    sender = clients("sender", hub=our_hub)
    snooper = subprocess.Popen(jsamp(tmp_path, "snooper", "-clientname", "snoop",
                                     "-mtype", "test.*"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def snooper_id():
            for client_id in sender.get_registered_clients():
                if (sender.get_metadata(client_id).get("samp.name") == "snoop"
                        and "test.*" in sender.get_subscriptions(client_id)):
                    return client_id
            return None
        assert wait_until(lambda: snooper_id() is not None, JAVA_TIMEOUT)
        sender.enotify(snooper_id(), "test.msg", x="notified")
        response = sender.ecall_and_wait(snooper_id(), "test.msg", "10", x="called")
        assert response["samp.status"] == "samp.warning"  # "Message logged, not acted on"
    finally:
        output = stop_process(snooper)
    assert '"x": "notified"' in output and '"x": "called"' in output


# The tester sends notifyAll with no recipient, for which the hub warns as astropy's does.
@pytest.mark.filterwarnings("ignore:No client was able to receive this message")
def test_jsamp_hub_tester_passes_against_our_hub(our_hub, tmp_path):
    result = subprocess.run(jsamp(tmp_path, "hubtester"), capture_output=True, text=True,
                            timeout=JAVA_TIMEOUT)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
