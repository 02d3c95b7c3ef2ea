"""Seed/key authentification: states, success, failure, auth-required, auto-auth, timeout, reset."""
import hashlib
import threading

from sockproto import (
    AUTH_STATE_KEY_TRANSFERRED, AUTH_STATE_SEED_REQUESTED,
    AUTH_STATE_SEED_TRANSFERRED, AUTH_STATE_TRUSTED_CONNECTION, AUTH_STATE_UNTRUSTED_CONNECTION,
    DID_AUTH_KEY, DID_AUTH_SEED, SID_AUTH_REQUEST, SID_AUTH_RESPONSE, SID_READ_REQUEST,
    SID_READ_RESPONSE, STATUS_AUTH_REQUIRED, STATUS_OKAY, STATUS_OPERATION_NOT_PERMITTED,
    pure_json_protocol,
)
from sockproto._peer import auth_key
from sockproto_testing import WAIT, RawPeer

SECRET = "0123456789abcdef-shared"
# Short enough to keep the suite fast, long enough for a loaded 2-core machine
# to answer when a peer exists (the timeout tests have no answering peer).
NO_ANSWER_TIMEOUT = 0.3


def _answer(prot):
    prot.register_callback(SID_READ_REQUEST, 0, lambda msg: (STATUS_OKAY, "secret data"))


def test_authentificate_with_equal_secrets_succeeds(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"secret": SECRET}, server={"secret": SECRET})
    assert client.authentificate(timeout=WAIT) is True
    assert client.check_authentification_state() is True
    assert server.check_authentification_state() is True
    assert client.connection_established() and server.connection_established()


def test_trusted_connection_serves_requests(make_pair):
    client, server = make_pair(client={"secret": SECRET}, server={"secret": SECRET})
    _answer(server)
    assert client.authentificate(timeout=WAIT)
    client.send(SID_READ_REQUEST, 0, None)
    response = client.receive(SID_READ_RESPONSE, 0, timeout=WAIT)
    assert (response.get_status(), response.get_data()) == (STATUS_OKAY, "secret data")


def test_bytes_secret_matches_equal_text_secret(make_pair):
    client, server = make_pair(client={"secret": SECRET.encode()}, server={"secret": SECRET})
    assert client.authentificate(timeout=WAIT) is True


def test_wrong_secret_is_not_trusted(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"secret": "wrong"}, server={"secret": SECRET})
    assert client.authentificate(timeout=WAIT) is False
    assert client.check_authentification_state() is False
    assert server.check_authentification_state() is False
    assert not server.connection_established()


def test_wrong_secret_never_passes_through_trusted_state(make_pair):
    client, server = make_pair(client={"secret": "wrong"}, server={"secret": SECRET})
    peer = server._peers[0]
    seen = []
    original = peer._set_auth_state
    peer._set_auth_state = lambda state: (seen.append(state), original(state))
    client.authentificate(timeout=WAIT)
    assert AUTH_STATE_TRUSTED_CONNECTION not in seen
    assert seen[-1] == AUTH_STATE_UNTRUSTED_CONNECTION


def test_request_before_authentification_is_answered_auth_required(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"secret": SECRET}, server={"secret": SECRET})
    _answer(server)
    client.send(SID_READ_REQUEST, 0, None)
    response = client.receive(SID_READ_RESPONSE, 0, timeout=WAIT)
    assert response.get_status() == STATUS_AUTH_REQUIRED
    assert response.get_data() is None


def test_client_without_secret_gets_auth_required(make_pair, protocol_class):
    client, server = make_pair(protocol_class, server={"secret": SECRET})
    _answer(server)
    client.send(SID_READ_REQUEST, 0, None)
    assert client.receive(SID_READ_RESPONSE, 0, timeout=WAIT).get_status() == STATUS_AUTH_REQUIRED
    assert server.receive(SID_READ_REQUEST, 0, timeout=0.05) is None


def test_request_of_unknown_service_before_authentification_is_answered_auth_required(make_pair):
    client, server = make_pair(server={"secret": SECRET})
    client.send(70, 1, None)
    assert client.receive(71, 1, timeout=WAIT).get_status() == STATUS_AUTH_REQUIRED


def test_whitelisted_message_needs_no_authentification(make_pair):
    client, server = make_pair(server={"secret": SECRET})
    server.add_msg_to_auth_whitelist_(SID_READ_REQUEST, 0)
    _answer(server)
    client.send(SID_READ_REQUEST, 0, None)
    assert client.receive(SID_READ_RESPONSE, 0, timeout=WAIT).get_data() == "secret data"


def test_message_whitelisted_after_a_refusal_is_answered(make_pair):
    client, server = make_pair(server={"secret": SECRET})
    _answer(server)
    client.send(SID_READ_REQUEST, 0, None)
    assert client.receive(SID_READ_RESPONSE, 0, timeout=WAIT).get_status() == STATUS_AUTH_REQUIRED
    server.add_msg_to_auth_whitelist_(SID_READ_REQUEST, 0)
    client.send(SID_READ_REQUEST, 0, None)
    assert client.receive(SID_READ_RESPONSE, 0, timeout=WAIT).get_data() == "secret data"


def test_auto_auth_authentificates_after_connect(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"secret": SECRET, "auto_auth": True},
                               server={"secret": SECRET})
    assert client._wait_for(client.connection_established, WAIT)
    assert server._wait_for(server.check_authentification_state, WAIT)


def test_authentificate_after_auto_auth_succeeds(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"secret": SECRET, "auto_auth": True},
                               server={"secret": SECRET})
    assert client.authentificate(timeout=WAIT) is True
    assert client.authentificate(timeout=WAIT) is True
    assert server._wait_for(server.check_authentification_state, WAIT)


def test_authentificate_joins_the_handshake_in_progress(make_comms):
    client_comm, server_comm = make_comms()
    server = RawPeer(server_comm)
    client = pure_json_protocol(client_comm, secret=SECRET, auto_auth=True)
    assert server.receive_where(SID_AUTH_REQUEST, DID_AUTH_SEED) is not None
    results = []
    waiter = threading.Thread(target=lambda: results.append(client.authentificate(timeout=WAIT)))
    waiter.start()
    try:
        server.send(SID_AUTH_RESPONSE, DID_AUTH_SEED, "ab12")
        key_request = server.receive()
        assert (key_request.get_service_id(), key_request.get_data_id(), key_request.get_data()) == \
            (SID_AUTH_REQUEST, DID_AUTH_KEY, auth_key("ab12", SECRET.encode()))
        server.send(SID_AUTH_RESPONSE, DID_AUTH_KEY, True)
    finally:
        waiter.join(WAIT)
    assert results == [True]
    assert server.receive(timeout=0.05) is None  # no second seed request


def test_auto_auth_without_secret_does_nothing(make_pair):
    client, server = make_pair(client={"auto_auth": True})
    assert client.connection_established()
    assert client.check_authentification_state() is False


def test_authentificate_without_secret_returns_false(make_pair):
    client, _ = make_pair()
    assert client.authentificate(timeout=WAIT) is False


def test_server_without_secret_refuses_authentification(make_pair):
    client, _ = make_pair(client={"secret": SECRET})
    assert client.authentificate(timeout=WAIT) is False


def test_authentificate_times_out_without_answer(make_comms, protocol_class):
    client_comm, _raw_server = make_comms()
    client = protocol_class(client_comm, secret=SECRET)
    assert client._wait_for(client.is_connected, WAIT)
    assert client.authentificate(timeout=NO_ANSWER_TIMEOUT) is False
    assert client._peers[0].auth_state == AUTH_STATE_UNTRUSTED_CONNECTION


def test_authentification_is_reset_on_reconnect(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"secret": SECRET, "auto_auth": True},
                               server={"secret": SECRET})
    assert client._wait_for(client.connection_established, WAIT)
    states_at_disconnect = []
    disconnected = threading.Event()

    def on_disconnect():
        states_at_disconnect.append(client.check_authentification_state())
        disconnected.set()

    client._comm.register_disconnect_callback(on_disconnect)
    client.reconnect()
    assert disconnected.wait(WAIT)
    assert states_at_disconnect == [False]
    assert client._wait_for(client.connection_established, WAIT)
    assert server._wait_for(server.check_authentification_state, WAIT)


def test_states_follow_the_documented_sequence(make_pair):
    client, server = make_pair(client={"secret": SECRET}, server={"secret": SECRET})
    client_states, server_states = [], []
    for prot, seen in ((client, client_states), (server, server_states)):
        peer = prot._peers[0]
        original = peer._set_auth_state
        peer._set_auth_state = lambda state, o=original, s=seen: (s.append(state), o(state))
    assert client.authentificate(timeout=WAIT)
    assert client_states == [AUTH_STATE_SEED_REQUESTED, AUTH_STATE_KEY_TRANSFERRED,
                             AUTH_STATE_TRUSTED_CONNECTION]
    assert server_states == [AUTH_STATE_SEED_TRANSFERRED, AUTH_STATE_TRUSTED_CONNECTION]


def test_key_is_sha512_of_seed_and_secret():
    assert auth_key("ab12", b"s3cret") == hashlib.sha512(b"ab12s3cret").hexdigest()


def test_seed_is_new_for_every_request(make_comms):
    raw_client, server_comm = make_comms()
    server = pure_json_protocol(server_comm, secret=SECRET)
    client = RawPeer(raw_client)
    seeds = []
    for _ in range(2):
        client.send(SID_AUTH_REQUEST, DID_AUTH_SEED, None)
        seeds.append(client.receive_where(SID_AUTH_RESPONSE, DID_AUTH_SEED).get_data())
    assert seeds[0] != seeds[1]
    assert all(isinstance(seed, str) and len(seed) >= 32 for seed in seeds)


def test_key_without_seed_is_not_permitted(make_comms):
    raw_client, server_comm = make_comms()
    server = pure_json_protocol(server_comm, secret=SECRET)
    client = RawPeer(raw_client)
    client.send(SID_AUTH_REQUEST, DID_AUTH_KEY, "guess")
    response = client.receive_where(SID_AUTH_RESPONSE, DID_AUTH_KEY)
    assert (response.get_status(), response.get_data()) == (STATUS_OPERATION_NOT_PERMITTED, False)
    assert server.check_authentification_state() is False


def test_seed_answers_only_one_key(make_comms):
    raw_client, server_comm = make_comms()
    server = pure_json_protocol(server_comm, secret=SECRET)
    client = RawPeer(raw_client)
    client.send(SID_AUTH_REQUEST, DID_AUTH_SEED, None)
    seed = client.receive_where(SID_AUTH_RESPONSE, DID_AUTH_SEED).get_data()
    client.send(SID_AUTH_REQUEST, DID_AUTH_KEY, "wrong")
    assert client.receive_where(SID_AUTH_RESPONSE, DID_AUTH_KEY).get_data() is False
    client.send(SID_AUTH_REQUEST, DID_AUTH_KEY, auth_key(seed, SECRET.encode()))
    assert client.receive_where(SID_AUTH_RESPONSE, DID_AUTH_KEY).get_data() is False
    assert server.check_authentification_state() is False

