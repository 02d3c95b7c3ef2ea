"""Which threads run callbacks, and how threads that wait for an answer behave.

A thread blocked in ``receive``, ``authentificate`` or ``wait_connected`` runs
the comm instance's loop itself while it waits; callbacks then run on it or on
the loop thread, never two at once. Every test runs over the in-memory comm
pair and over real TCP.
"""
import threading
import time

from sockproto_testing import WAIT
from sockproto import (
    SID_EXECUTE_REQUEST, SID_EXECUTE_RESPONSE, SID_READ_REQUEST, SID_READ_RESPONSE, STATUS_OKAY,
)

# Enough exchanges for callbacks to run on both kinds of thread.
EXCHANGES = 200


def test_callbacks_run_one_at_a_time_with_in_dispatch_thread_true(make_comms, protocol_class):
    client_comm, server_comm = make_comms()
    server = protocol_class(server_comm)
    client = protocol_class(client_comm)
    server.register_callback(SID_READ_REQUEST, None, lambda msg: (STATUS_OKAY, msg.get_data()))
    # Each request is answered twice: by a callback (on the client) and for receive().
    server.register_callback(SID_EXECUTE_REQUEST, None, lambda msg: (
        server.send(SID_READ_RESPONSE, msg.get_data_id(), None), (STATUS_OKAY, None))[1])
    running = []
    seen = []

    def on_read_response(msg):
        running.append(msg)
        seen.append((len(running), client_comm.in_dispatch_thread(), threading.current_thread()))
        running.remove(msg)

    client.register_callback(SID_READ_RESPONSE, None, on_read_response)
    for data_id in range(EXCHANGES):
        assert client.send(SID_EXECUTE_REQUEST, data_id, None)
        assert client.receive(SID_EXECUTE_RESPONSE, data_id, timeout=WAIT) is not None
    assert client._wait_for(lambda: len(seen) == EXCHANGES, WAIT)
    assert all(count == 1 and in_dispatch for count, in_dispatch, _thread in seen)
    assert {thread for _count, _in, thread in seen} <= {client_comm._loop.thread,
                                                       threading.current_thread()}


def test_receive_from_a_callback_returns_at_once(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    waited = []

    def on_request(msg):
        start = time.monotonic()
        found = server.receive(SID_EXECUTE_RESPONSE, 1, timeout=WAIT)
        waited.append((found, time.monotonic() - start))
        return STATUS_OKAY, None

    server.register_callback(SID_READ_REQUEST, None, on_request)
    assert client.send(SID_READ_REQUEST, 1, None)
    assert client.receive(SID_READ_RESPONSE, 1, timeout=WAIT) is not None
    (found, seconds), = waited
    assert found is None and seconds < WAIT / 2


def test_authentificate_from_a_callback_returns_false_at_once(make_pair, protocol_class):
    client, server = make_pair(protocol_class, client={"secret": "s"}, server={"secret": "s"})
    results = []

    def on_request(msg):
        start = time.monotonic()
        results.append((server.authentificate(timeout=WAIT), time.monotonic() - start))
        return STATUS_OKAY, None

    server.add_msg_to_auth_whitelist_(SID_READ_REQUEST, 2)
    server.register_callback(SID_READ_REQUEST, 2, on_request)
    client.add_msg_to_auth_whitelist_(SID_READ_RESPONSE, 2)
    assert client.send(SID_READ_REQUEST, 2, None)
    assert client.receive(SID_READ_RESPONSE, 2, timeout=WAIT) is not None
    (trusted, seconds), = results
    assert trusted is False and seconds < WAIT / 2


def test_threads_waiting_for_different_messages_each_get_their_own(make_pair, protocol_class):
    client, server = make_pair(protocol_class)
    server.register_callback(SID_READ_REQUEST, None, lambda msg: (STATUS_OKAY, msg.get_data()))
    results = {}

    def ask(data_id):
        got = []
        for round_ in range(20):
            client.send(SID_READ_REQUEST, data_id, [data_id, round_])
            msg = client.receive(SID_READ_RESPONSE, data_id, timeout=WAIT)
            got.append(None if msg is None else msg.get_data())
        results[data_id] = got

    threads = [threading.Thread(target=ask, args=(data_id,)) for data_id in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 4)
    assert results == {data_id: [[data_id, round_] for round_ in range(20)] for data_id in range(4)}


def test_close_wakes_a_thread_blocked_in_receive(make_pair, protocol_class):
    client, _server = make_pair(protocol_class)
    waiting = threading.Event()
    result = []

    def wait_for_nothing():
        waiting.set()
        start = time.monotonic()
        result.append((client.receive(SID_READ_RESPONSE, 1, timeout=WAIT * 4), time.monotonic() - start))

    thread = threading.Thread(target=wait_for_nothing)
    thread.start()
    assert waiting.wait(WAIT)
    client._comm.close()
    thread.join(WAIT * 2)
    (msg, seconds), = result
    assert msg is None and seconds < WAIT * 2


def test_wait_connected_is_true_once_the_connection_is_handled(make_comms):
    client_comm, server_comm = make_comms()
    assert client_comm.wait_connected(WAIT) and client_comm.is_connected()
    assert server_comm.wait_connected(WAIT) and server_comm.is_connected()
