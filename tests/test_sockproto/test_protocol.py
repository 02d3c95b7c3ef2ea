"""Messages, services, callbacks and errors of pure_json_protocol and struct_json_protocol.

Every test runs over the in-memory comm pair and over real TCP, with both protocols.
"""
import collections
import logging
import threading

import pytest

import sockproto as socket_protocol
from sockproto._services import MAX_ROUTES
from sockproto_testing import WAIT
from sockproto import (
    SID_EXECUTE_REQUEST, SID_EXECUTE_RESPONSE, SID_READ_REQUEST, SID_READ_RESPONSE,
    SID_WRITE_REQUEST, SID_WRITE_RESPONSE, STATUS_BUFFERING_UNHANDLED_REQUEST,
    STATUS_CALLBACK_ERROR, STATUS_OKAY, STATUS_SERVICE_OR_DATA_UNKNOWN,
    RequestSidExistsError, ResponseSidExistsError,
)


# -- send and receive -------------------------------------------------------------
@pytest.mark.parametrize("data", [None, 17, "text: with colons ::<>", [1, 2.5, "x"],
                                  {"key": {"nested": [True, False]}}])
def test_request_sent_by_client_is_received_by_server(make_pair, protocol_class, data):
    client, server = make_pair(protocol_class)
    assert client.send(SID_READ_REQUEST, 3, data) is True
    msg = server.receive(SID_READ_REQUEST, 3, timeout=WAIT)
    assert msg == {"status": STATUS_OKAY, "service_id": SID_READ_REQUEST, "data_id": 3, "data": data}


def test_message_sent_by_server_is_received_by_client(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    assert server.send(SID_EXECUTE_RESPONSE, 9, {"x": 1}, status=STATUS_CALLBACK_ERROR)
    msg = client.receive(SID_EXECUTE_RESPONSE, 9, timeout=WAIT)
    assert msg.get_status() == STATUS_CALLBACK_ERROR
    assert msg.get_service_id() == SID_EXECUTE_RESPONSE
    assert msg.get_data_id() == 9
    assert msg.get_data() == {"x": 1}


def test_received_message_is_a_data_storage(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    client.send(SID_WRITE_REQUEST, 1, "v")
    msg = server.receive(SID_WRITE_REQUEST, 1, timeout=WAIT)
    assert isinstance(msg, socket_protocol.data_storage)


def test_messages_with_same_ids_are_received_in_order(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    for i in range(20):
        client.send(SID_WRITE_REQUEST, 2, i)
    assert [server.receive(SID_WRITE_REQUEST, 2, timeout=WAIT).get_data() for _ in range(20)] == list(range(20))


def test_receive_returns_none_after_timeout(make_pair, protocol_class):
    client, _ = make_pair(protocol_class)
    assert client.receive(SID_READ_RESPONSE, 77, timeout=0.05) is None


def test_send_of_non_json_data_raises_type_error(make_pair, protocol_class):
    client, _ = make_pair(protocol_class)
    with pytest.raises(TypeError):
        client.send(SID_READ_REQUEST, 0, object())


# -- add methods --------------------------------------------------------------------
def test_add_service_makes_requests_answered_on_its_response_sid(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    for prot in (client, server):
        prot.add_service(40, 45, "Sum Request", "Sum Response")
    server.register_callback(40, 0, lambda msg: (STATUS_OKAY, sum(msg.get_data())))
    client.send(40, 0, [1, 2, 3])
    assert client.receive(45, 0, timeout=WAIT).get_data() == 6


def test_add_service_with_used_request_sid_raises(make_pair):
    client, _ = make_pair()
    with pytest.raises(RequestSidExistsError):
        client.add_service(SID_READ_REQUEST, 101)


def test_add_service_with_used_response_sid_raises(make_pair):
    client, _ = make_pair()
    with pytest.raises(ResponseSidExistsError):
        client.add_service(100, SID_READ_RESPONSE)


def test_add_service_twice_raises_request_sid_exists(make_pair):
    client, _ = make_pair()
    client.add_service(50, 51)
    with pytest.raises(RequestSidExistsError):
        client.add_service(50, 53)


def test_names_of_service_data_and_status_appear_in_log(make_pair, caplog):
    client, _ = make_pair()
    client.add_service(60, 61, "Lamp Request", "Lamp Response")
    client.add_data([60, 61], 4, "Brightness")
    client.add_status(77, "Too dark")
    with caplog.at_level(logging.INFO, logger="sockproto.protocol"):
        client.send(60, 4, 1, status=77)
    assert "TX -> status: Too dark, service_id: Lamp Request, data_id: Brightness, data: 1" in caplog.text


def test_names_given_with_a_single_service_id_appear_in_rx_log(make_pair, caplog):
    client, server = make_pair()
    server.add_service(60, 61, "Lamp Request", "Lamp Response")
    server.add_data(60, 4, "Brightness")
    with caplog.at_level(logging.INFO, logger="sockproto.protocol"):
        client.send(60, 4, 1)
        assert server.receive(60, 4, timeout=WAIT) is not None
    assert "RX <- status: Okay, service_id: Lamp Request, data_id: Brightness, data: 1" in caplog.text


def test_unknown_names_are_logged_as_numbers(make_pair, caplog):
    client, _ = make_pair()
    with caplog.at_level(logging.INFO, logger="sockproto.protocol"):
        client.send(SID_READ_REQUEST, 5, None, status=99)
    assert "TX -> status: 99, service_id: Read Request, data_id: 5, data: None" in caplog.text


# -- callbacks ----------------------------------------------------------------------
def test_callback_return_value_becomes_response(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    server.register_callback(SID_READ_REQUEST, 1, lambda msg: (STATUS_OKAY, msg.get_data() * 2))
    client.send(SID_READ_REQUEST, 1, 21)
    response = client.receive(SID_READ_RESPONSE, 1, timeout=WAIT)
    assert response == {"status": STATUS_OKAY, "service_id": SID_READ_RESPONSE, "data_id": 1, "data": 42}


def test_callback_gets_registration_args_and_kwargs(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    seen = []

    def callback(msg, first, second, key=None):
        seen.append((msg.get_data(), first, second, key))
        return STATUS_OKAY, None

    server.register_callback(SID_WRITE_REQUEST, 2, callback, "a", "b", key="c")
    client.send(SID_WRITE_REQUEST, 2, "payload")
    assert client.receive(SID_WRITE_RESPONSE, 2, timeout=WAIT) is not None
    assert seen == [("payload", "a", "b", "c")]


def _register_all(prot, sid, did):
    prot.register_callback(sid, did, lambda msg: (STATUS_OKAY, "sid+did"))
    prot.register_callback(sid, None, lambda msg: (STATUS_OKAY, "sid"))
    prot.register_callback(None, did, lambda msg: (STATUS_OKAY, "did"))
    prot.register_callback(None, None, lambda msg: (STATUS_OKAY, "any"))


@pytest.mark.parametrize("sid,did,chosen", [
    (SID_READ_REQUEST, 1, "sid+did"),
    (SID_READ_REQUEST, 2, "sid"),
    (SID_WRITE_REQUEST, 1, "did"),
    (SID_WRITE_REQUEST, 2, "any"),
])
def test_callback_priority(make_pair, protocol_class, sid, did, chosen):
    client, server = make_pair(protocol_class)
    _register_all(server, SID_READ_REQUEST, 1)
    client.send(sid, did, None)
    assert client.receive(sid + 1, did, timeout=WAIT).get_data() == chosen


def test_callback_none_removes_the_registration(make_pair):
    client, server = make_pair()
    server.register_callback(SID_READ_REQUEST, 3, lambda msg: (STATUS_OKAY, "served"))
    server.register_callback(SID_READ_REQUEST, 3, None)
    client.send(SID_READ_REQUEST, 3, "x")
    assert client.receive(SID_READ_RESPONSE, 3, timeout=WAIT).get_status() == \
        STATUS_BUFFERING_UNHANDLED_REQUEST
    assert server.receive(SID_READ_REQUEST, 3, timeout=WAIT).get_data() == "x"


def test_response_callback_consumes_response(make_pair):
    client, server = make_pair()
    got = []
    done = threading.Event()
    client.register_callback(SID_READ_RESPONSE, 4, lambda msg: (got.append(msg.get_data()), done.set()))
    server.register_callback(SID_READ_REQUEST, 4, lambda msg: (STATUS_OKAY, "value"))
    client.send(SID_READ_REQUEST, 4, None)
    assert done.wait(WAIT)
    assert got == ["value"]
    assert client.receive(SID_READ_RESPONSE, 4, timeout=0.05) is None


def test_callback_may_send_from_inside(make_pair):
    client, server = make_pair()

    def callback(msg):
        server.send(SID_EXECUTE_RESPONSE, 99, "extra")
        return STATUS_OKAY, "answer"

    server.register_callback(SID_EXECUTE_REQUEST, 1, callback)
    client.send(SID_EXECUTE_REQUEST, 1, None)
    assert client.receive(SID_EXECUTE_RESPONSE, 99, timeout=WAIT).get_data() == "extra"
    assert client.receive(SID_EXECUTE_RESPONSE, 1, timeout=WAIT).get_data() == "answer"


def test_callback_registered_after_messages_of_its_ids_takes_over(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    client.send(SID_READ_REQUEST, 8, None)
    assert client.receive(SID_READ_RESPONSE, 8, timeout=WAIT).get_status() == STATUS_BUFFERING_UNHANDLED_REQUEST
    server.register_callback(SID_READ_REQUEST, 8, lambda msg: (STATUS_OKAY, "first"))
    client.send(SID_READ_REQUEST, 8, None)
    assert client.receive(SID_READ_RESPONSE, 8, timeout=WAIT).get_data() == "first"
    server.register_callback(SID_READ_REQUEST, 8, lambda msg: (STATUS_OKAY, "second"))
    client.send(SID_READ_REQUEST, 8, None)
    assert client.receive(SID_READ_RESPONSE, 8, timeout=WAIT).get_data() == "second"


def test_service_added_after_messages_of_its_ids_takes_over(make_pair):
    client, server = make_pair()
    client.send(60, 1, None)
    assert client.receive(61, 1, timeout=WAIT).get_status() == STATUS_SERVICE_OR_DATA_UNKNOWN
    server.add_service(60, 63)
    server.register_callback(60, 1, lambda msg: (STATUS_OKAY, "served"))
    client.send(60, 1, None)
    assert client.receive(63, 1, timeout=WAIT).get_data() == "served"


def test_messages_of_more_different_ids_than_routes_kept_are_all_answered(make_pair):
    client, server = make_pair()
    server.register_callback(SID_READ_REQUEST, None, lambda msg: (STATUS_OKAY, msg.get_data_id()))
    count = MAX_ROUTES + 10
    for data_id in range(count):
        client.send(SID_READ_REQUEST, data_id, None)
    for data_id in range(count):
        assert client.receive(SID_READ_RESPONSE, data_id, timeout=WAIT).get_data() == data_id


# -- unhandled, unknown, callback errors --------------------------------------------
def test_unhandled_request_is_answered_and_buffered(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    client.send(SID_EXECUTE_REQUEST, 5, "do it")
    response = client.receive(SID_EXECUTE_RESPONSE, 5, timeout=WAIT)
    assert response.get_status() == STATUS_BUFFERING_UNHANDLED_REQUEST
    assert response.get_data() is None
    assert server.receive(SID_EXECUTE_REQUEST, 5, timeout=WAIT).get_data() == "do it"


def test_unknown_service_is_answered_with_service_unknown(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    client.send(70, 3, "?")
    response = client.receive(71, 3, timeout=WAIT)
    assert response.get_status() == STATUS_SERVICE_OR_DATA_UNKNOWN
    assert server.receive(70, 3, timeout=0.05) is None


def test_unknown_odd_service_id_is_buffered_as_a_response(make_pair):
    client, server = make_pair()
    client.send(71, 3, "?")
    assert server.receive(71, 3, timeout=WAIT).get_data() == "?"
    assert client.receive(72, 3, timeout=0.05) is None


def test_raising_callback_gives_callback_error(make_pair, protocol_class):
    client, server = make_pair(protocol_class)

    def broken(msg):
        raise RuntimeError("broken callback")

    server.register_callback(SID_READ_REQUEST, 6, broken)
    client.send(SID_READ_REQUEST, 6, None)
    assert client.receive(SID_READ_RESPONSE, 6, timeout=WAIT).get_status() == STATUS_CALLBACK_ERROR


def test_callback_returning_no_pair_gives_callback_error(make_pair):
    client, server = make_pair()
    server.register_callback(SID_READ_REQUEST, 6, lambda msg: None)
    client.send(SID_READ_REQUEST, 6, None)
    assert client.receive(SID_READ_RESPONSE, 6, timeout=WAIT).get_status() == STATUS_CALLBACK_ERROR


def test_callback_returning_non_json_data_gives_callback_error(make_pair):
    client, server = make_pair()
    server.register_callback(SID_READ_REQUEST, 6, lambda msg: (STATUS_OKAY, object()))
    client.send(SID_READ_REQUEST, 6, None)
    assert client.receive(SID_READ_RESPONSE, 6, timeout=WAIT).get_status() == STATUS_CALLBACK_ERROR


def test_receiving_goes_on_after_callback_error(make_pair):
    client, server = make_pair()
    server.register_callback(SID_READ_REQUEST, 6, lambda msg: 1 / 0)
    server.register_callback(SID_READ_REQUEST, 7, lambda msg: (STATUS_OKAY, "fine"))
    client.send(SID_READ_REQUEST, 6, None)
    client.send(SID_READ_REQUEST, 7, None)
    assert client.receive(SID_READ_RESPONSE, 7, timeout=WAIT).get_data() == "fine"


# -- connection state ---------------------------------------------------------------
def test_connected_pair_reports_connection(make_pair):
    client, server = make_pair()
    assert client.is_connected() and server.is_connected()
    assert client.connection_established() and server.connection_established()


def test_send_while_disconnected_returns_false(transport, protocol_class):
    if transport == "memory":
        from sockproto.memory import comm_pair
        client_comm, server_comm = comm_pair(connected=False)
        closers = [client_comm.close, server_comm.close]
    else:
        from protocompat.netutil import LOOPBACK, loopback_listener
        from sockproto.tcp import tcp_client_stp
        with loopback_listener() as listener:
            port = listener.getsockname()[1]
        client_comm = tcp_client_stp(LOOPBACK, port)  # nobody listens there
        closers = [client_comm.close]
    try:
        client = protocol_class(client_comm)
        assert client.send(SID_READ_REQUEST, 0, None, timeout=0.05) is False
        assert not client.is_connected()
        assert not client.connection_established()
    finally:
        for close in closers:
            close()


# -- comm instances of one's own ------------------------------------------------------
class _SelfPassingComm:
    """A comm instance that calls its data callback with itself; the frame comes from receive()."""

    def __init__(self, inner):
        self._inner = inner
        self._frames = collections.deque()
        self.IS_CLIENT = inner.IS_CLIENT

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def register_callback(self, callback):
        def on_frame(frame):
            self._frames.append(frame)
            callback(self)

        self._inner.register_callback(on_frame)

    def receive(self, timeout=1):
        return self._frames.popleft() if self._frames else None


def test_comm_passing_itself_to_the_data_callback_works(make_comms, protocol_class):
    client_comm, server_comm = make_comms()
    server = protocol_class(server_comm)
    server.register_callback(SID_READ_REQUEST, 2, lambda msg: (STATUS_OKAY, "own comm"))
    client = protocol_class(_SelfPassingComm(client_comm))
    assert client.send(SID_READ_REQUEST, 2, None, timeout=WAIT)
    assert client.receive(SID_READ_RESPONSE, 2, timeout=WAIT).get_data() == "own comm"


def test_client_keeps_received_messages_across_a_reconnect(make_pair):
    client, server = make_pair()
    server.send(SID_EXECUTE_RESPONSE, 5, "kept")
    server.send(SID_EXECUTE_RESPONSE, 6, "after it")
    assert client.receive(SID_EXECUTE_RESPONSE, 6, timeout=WAIT) is not None
    disconnected = threading.Event()
    client._comm.register_disconnect_callback(disconnected.set)
    client.reconnect()
    assert disconnected.wait(WAIT)
    assert client.receive(SID_EXECUTE_RESPONSE, 5, timeout=0).get_data() == "kept"
