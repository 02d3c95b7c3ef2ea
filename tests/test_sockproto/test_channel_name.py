"""Channel-name exchange: started by the client after connecting."""
import logging

from sockproto import DID_CHANNEL_NAME, SID_CHANNEL_NAME_REQUEST, SID_CHANNEL_NAME_RESPONSE
from sockproto_testing import WAIT, RawPeer


def test_names_on_both_sides_that_agree_are_kept(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"channel_name": "ch"}, server={"channel_name": "ch"})
    assert client.get_channel_name() == "ch"
    assert server._wait_for(lambda: server.get_channel_name() == "ch", WAIT)


def test_server_takes_over_client_name(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"channel_name": "from-client"})
    assert server._wait_for(lambda: server.get_channel_name() == "from-client", WAIT)
    assert client.get_channel_name() == "from-client"


def test_client_takes_over_server_name(make_pair, protocol_class):
    client, server = make_pair(protocol_class, server={"channel_name": "from-server"})
    assert client._wait_for(lambda: client.get_channel_name() == "from-server", WAIT)
    assert server.get_channel_name() == "from-server"


def test_conflicting_names_use_client_name_and_server_warns(make_pair, protocol_class, caplog):
    with caplog.at_level(logging.WARNING, logger="sockproto.protocol"):
        client, server = make_pair(protocol_class, client={"channel_name": "client-name"},
                                   server={"channel_name": "server-name"})
        assert server._wait_for(lambda: server.get_channel_name() == "client-name", WAIT)
    assert client.get_channel_name() == "client-name"
    assert any("conflict" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_default_name_without_names(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    assert client.get_channel_name() == "all_others"
    assert server.get_channel_name() == "all_others"


def test_client_sends_its_name_after_connecting(make_comms):
    from sockproto import pure_json_protocol
    client_comm, server_comm = make_comms()
    server = RawPeer(server_comm)
    pure_json_protocol(client_comm, channel_name="hello")
    request = server.receive(WAIT)
    assert (request.get_service_id(), request.get_data_id(), request.get_data()) == \
        (SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, "hello")


def test_server_answers_with_name_in_use(make_comms):
    from sockproto import pure_json_protocol
    client_comm, server_comm = make_comms()
    pure_json_protocol(server_comm, channel_name="srv")
    client = RawPeer(client_comm)
    client.send(SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, None)
    response = client.receive_where(SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME)
    assert response.get_data() == "srv"


def test_invalid_name_from_peer_is_ignored(make_comms):
    from sockproto import pure_json_protocol
    client_comm, server_comm = make_comms()
    server = pure_json_protocol(server_comm, channel_name="srv")
    client = RawPeer(client_comm)
    client.send(SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, {"not": "a name"})
    assert client.receive_where(SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME).get_data() == "srv"
    assert server.get_channel_name() == "srv"


def test_name_is_used_for_the_logger(make_pair, caplog):
    client, _ = make_pair(client={"channel_name": "lognamed"})
    with caplog.at_level(logging.INFO, logger="sockproto.protocol"):
        client.send(10, 0, None)
    assert any(r.name == "sockproto.protocol.lognamed" for r in caplog.records)


def test_name_taken_over_from_the_peer_tags_the_lines_of_the_own_logger(make_pair, caplog):
    client, server = make_pair(client={"channel_name": "from-client"})
    assert server._wait_for(lambda: server.get_channel_name() == "from-client", WAIT)
    with caplog.at_level(logging.INFO, logger="sockproto.protocol"):
        server.send(11, 0, None)
    lines = [r for r in caplog.records if "TX ->" in r.getMessage()]
    assert [(r.name, r.channel) for r in lines] == [("sockproto.protocol.all_others", "from-client")]
    assert lines[0].getMessage().startswith("from-client: TX ->")


def test_unprintable_name_from_the_peer_is_escaped_in_log_lines(make_comms, caplog):
    from sockproto import pure_json_protocol
    client_comm, server_comm = make_comms()
    server = pure_json_protocol(server_comm)
    client = RawPeer(client_comm)
    client.send(SID_CHANNEL_NAME_REQUEST, DID_CHANNEL_NAME, "evil\nINFO forged line")
    assert client.receive_where(SID_CHANNEL_NAME_RESPONSE, DID_CHANNEL_NAME) is not None
    with caplog.at_level(logging.INFO, logger="sockproto.protocol"):
        server.send(11, 0, None)
    assert any(r.getMessage().startswith("'evil\\nINFO forged line': TX ->") for r in caplog.records)
    assert not any("\n" in r.getMessage() for r in caplog.records)
