"""DeviceServer over loopback, spoken to with a raw socket: the bytes on the wire."""

import queue
import threading

import pytest

from katcp_compat.server import DeviceServer
from protocompat import __version__
from katcp_io_helpers import WAIT, BulkDevice, ExampleDevice, RawClient, V4Device, started


@pytest.fixture
def server():
    srv = started(ExampleDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)
    srv.join(WAIT)


@pytest.fixture
def client(server):
    raw = RawClient(server.bind_address)
    raw.skip_greeting()
    yield raw
    raw.close()


def test_bind_address_reports_the_real_port_after_start(server):
    host, port = server.bind_address
    assert host == "127.0.0.1" and port > 0


def test_connect_sends_version_connect_informs(server):
    raw = RawClient(server.bind_address)
    try:
        assert raw.skip_greeting() == [
            "#version-connect katcp-protocol 5.0-IM",
            "#version-connect katcp-library katcp-python-0.9.3 protocompat-%s" % __version__,
            "#version-connect katcp-device my-dev-2.3 my-build-4.5rc1",
        ]
    finally:
        raw.close()


def test_v4_server_sends_version_and_build_state():
    srv = started(V4Device("127.0.0.1", 0))
    raw = RawClient(srv.bind_address)
    try:
        assert raw.skip_greeting(2) == ["#version my-dev-2.3", "#build-state my-build-4.5rc1"]
        assert raw.request("?version-list") == ["!version-list invalid Unknown\\_request."]
    finally:
        raw.close()
        srv.stop(WAIT)


def test_watchdog_reply_carries_the_message_id(client):
    assert client.request("?watchdog[7]", "!watchdog") == ["!watchdog[7] ok"]


def test_watchdog_ignores_extra_arguments(client):
    assert client.request("?watchdog extra") == ["!watchdog ok"]


def test_unknown_request_is_invalid(client):
    assert client.request("?bogus") == ["!bogus invalid Unknown\\_request."]


def test_fail_reply_sends_its_message(client):
    assert client.request("?raise-fail") == ["!raise-fail fail it\\_failed"]


def test_unexpected_exception_sends_traceback(client):
    (reply,) = client.request("?raise-error")
    assert reply.startswith("!raise-error fail Traceback\\_(most\\_recent\\_call\\_last):")
    assert reply.endswith("ValueError:\\_boom\\n")


def test_traceback_is_limited_by_tb_limit():
    srv = started(ExampleDevice("127.0.0.1", 0, tb_limit=1))
    raw = RawClient(srv.bind_address)
    try:
        raw.skip_greeting()
        (reply,) = raw.request("?raise-error")
        assert reply.count("File\\_") == 1
    finally:
        raw.close()
        srv.stop(WAIT)


def test_informs_of_a_request_carry_its_id_and_come_first(client):
    assert client.request("?two-informs[77]", "!two-informs") == [
        "#two-informs[77] first", "#two-informs[77] second", "!two-informs[77] ok 2"]


@pytest.mark.parametrize("arg", ["a\\_b", "line\\nbreak", "\\@", "back\\\\slash", "caf\u00e9",
                                 "tab\\tx", "esc\\e", "nul\\0"])
def test_escaped_arguments_round_trip(client, arg):
    assert client.request("?echo %s" % arg) == ["!echo ok %s" % arg]


def test_bad_escape_gives_log_error_and_no_reply(client):
    client.send("?echo a\\.b")
    line = client.readline()
    assert line.startswith("#log error ")
    assert "Invalid\\_escape\\_character\\_b'.'" in line
    assert client.request("?watchdog") == ["!watchdog ok"]


def test_bad_message_name_gives_log_error(client):
    client.send("?1bad")
    assert client.readline().startswith("#log error ")


def test_empty_lines_are_ignored(client):
    client.send("\n\n\r?watchdog")
    assert client.readline() == "!watchdog ok"


def test_carriage_return_ends_a_message(client):
    client.send(b"?watchdog\r?echo x\r")
    assert [client.readline(), client.readline()] == ["!watchdog ok", "!echo ok x"]


def test_kattypes_decorated_handler(client):
    assert client.request("?double 21") == ["!double ok 42"]
    assert client.request("?double x")[0].startswith("!double fail Error\\_in\\_parameter\\_1")


def test_help_lists_every_request_sorted(server, client):
    lines = client.request("?help")
    names = [line.split()[1] for line in lines[:-1]]
    assert names == sorted(server._request_handlers)
    assert lines[-1] == "!help ok %d" % len(names)


def test_help_on_one_request(client):
    lines = client.request("?help watchdog")
    assert lines[0].startswith("#help watchdog Check\\_that\\_the\\_server\\_is\\_still\\_alive.")
    assert lines[1] == "!help ok 1"


def test_help_on_unknown_request_fails(client):
    assert client.request("?help nope") == ["!help fail Unknown\\_request\\_method."]


def test_log_level_query_and_set(client):
    assert client.request("?log-level") == ["!log-level ok warn"]
    assert client.request("?log-level info") == ["!log-level ok info"]
    assert client.request("?log-level nonsense") == [
        "!log-level fail Unknown\\_logging\\_level\\_name\\_'nonsense'"]


def test_device_logger_sends_log_mass_inform(server, client):
    server.log.error("An error %d", 5)
    line = client.readline()
    assert line.startswith("#log error ") and line.endswith(" root An\\_error\\_5")


def test_device_logger_below_level_sends_nothing(server, client):
    server.log.info("quiet")
    assert client.request("?watchdog") == ["!watchdog ok"]


def test_client_list_shows_connected_clients(server, client):
    lines = client.request("?client-list")
    local = "%s:%d" % client.sock.getsockname()
    assert "#client-list %s" % local in lines
    assert lines[-1] == "!client-list ok 1"


def test_version_list(client):
    assert client.request("?version-list") == [
        "#version-list katcp-protocol 5.0-IM",
        "#version-list katcp-library katcp-python-0.9.3 0.9.3",
        "#version-list katcp-device my-dev-2.3 my-build-4.5rc1",
        "!version-list ok 3"]


def test_version_list_includes_extra_versions(server, client):
    server.extra_versions["fpga"] = ("fw-1.2", None)
    lines = client.request("?version-list")
    assert "#version-list fpga fw-1.2" in lines and lines[-1] == "!version-list ok 4"


def test_restart_without_queue_fails(client):
    assert client.request("?restart") == [
        "!restart fail No\\_restart\\_queue\\_registered\\_--\\_cannot\\_restart."]


def test_restart_puts_server_on_queue(server, client):
    restart_queue = queue.Queue()
    server.set_restart_queue(restart_queue)
    assert client.request("?restart") == ["!restart ok"]
    assert restart_queue.get(timeout=WAIT) is server


def test_async_reply_from_another_thread(server, client):
    client.send("?later[3]")
    assert client.request("?watchdog") == ["!watchdog ok"]
    (req,) = server.pending_async
    threading.Thread(target=req.reply, args=("ok", "done")).start()
    assert client.readline() == "!later[3] ok done"


def test_second_reply_raises(server, client):
    client.send("?later")
    client.request("?watchdog")
    (req,) = server.pending_async
    req.reply("ok")
    with pytest.raises(RuntimeError):
        req.reply("ok")
    with pytest.raises(RuntimeError):
        req.inform("late")


def test_blocking_handler_does_not_stall_other_clients_io(server, client):
    """While the handler thread blocks, the I/O thread still accepts and reads."""
    release = threading.Event()

    class Blocker(ExampleDevice):
        def request_block(self, req, msg):
            """Block until released."""
            release.wait(WAIT)
            return req.make_reply("ok")

    srv = started(Blocker("127.0.0.1", 0))
    first, second = RawClient(srv.bind_address), None
    try:
        first.skip_greeting()
        first.send("?block")
        second = RawClient(srv.bind_address)  # accepted while the handler blocks
        second.send("?watchdog")
        release.set()
        assert first.readline() == "!block ok"
        assert second.read_until("!watchdog")[-1] == "!watchdog ok"
    finally:
        release.set()
        first.close()
        if second:
            second.close()
        srv.stop(WAIT)


def test_stop_sends_disconnect_then_closes(server, client):
    assert server.stop(WAIT)
    assert client.read_to_eof() == "#disconnect Device\\_server\\_shutting\\_down.\n"
    assert not server.running()


def test_halt_replies_then_stops(server, client):
    client.send("?halt")
    assert client.read_to_eof() == "!halt ok\n#disconnect Device\\_server\\_shutting\\_down.\n"
    server.join(WAIT)
    assert not server.running()


def test_server_can_be_restarted_after_stop():
    srv = ExampleDevice("127.0.0.1", 0)
    for _ in range(2):
        started(srv)
        raw = RawClient(srv.bind_address)
        raw.skip_greeting()
        assert raw.request("?watchdog") == ["!watchdog ok"]
        raw.close()
        assert srv.stop(WAIT)


def test_start_twice_raises(server):
    with pytest.raises(RuntimeError):
        server.start()


def test_mass_inform_reaches_every_client(server):
    from katcp_compat.core import Message
    clients = [RawClient(server.bind_address) for _ in range(3)]
    try:
        for raw in clients:
            raw.skip_greeting()
        server.mass_inform(Message.inform("interface-changed"))
        assert [raw.readline() for raw in clients] == ["#interface-changed"] * 3
    finally:
        for raw in clients:
            raw.close()


def test_request_timeout_hint_needs_the_flag(client):
    assert client.request("?request-timeout-hint") == [
        "!request-timeout-hint invalid Unknown\\_request."]


def test_request_timeout_hint_with_flag():
    from katcp_compat.kattypes import request_timeout_hint

    class Hinted(BulkDevice):
        @request_timeout_hint(20)
        def request_slow(self, req, msg):
            """A slow request."""
            return req.make_reply("ok")

    srv = started(Hinted("127.0.0.1", 0))
    raw = RawClient(srv.bind_address)
    try:
        assert raw.skip_greeting()[0] == "#version-connect katcp-protocol 5.1-BIMT"
        assert raw.request("?request-timeout-hint") == [
            "#request-timeout-hint slow 20.0", "!request-timeout-hint ok 1"]
        assert raw.request("?request-timeout-hint watchdog") == [
            "#request-timeout-hint watchdog 0.0", "!request-timeout-hint ok 1"]
    finally:
        raw.close()
        srv.stop(WAIT)


def test_setup_sensors_must_be_overridden():
    with pytest.raises(NotImplementedError):
        DeviceServer("127.0.0.1", 0)


def test_request_handlers_need_docstrings():
    with pytest.raises(AssertionError, match="Request 'boom' has no docstring."):
        class NoDoc(ExampleDevice):
            def request_boom(self, req, msg):
                return req.make_reply("ok")


def test_unexpected_reply_and_inform_from_client_are_only_logged(client):
    client.send("!stray ok")
    client.send("#stray-inform x")
    client.send("?watchdog")
    assert client.readline() == "!watchdog ok"


def test_whitespace_only_line_gives_log_error_like_katcp(client):
    client.send("   ")
    assert client.readline().startswith("#log error ")


def test_stop_from_the_io_thread(server, client):
    done = threading.Event()
    server.ioloop.add_callback(lambda: (server.stop(WAIT), done.set()))
    assert done.wait(WAIT)
    server.join(WAIT)
    assert "#disconnect" in client.read_to_eof()
