"""Many threads sharing one client: each gets its own replies, with or without ids."""
import threading

import pytest

import katcp_compat
from katcp_io_helpers import IMPLEMENTATIONS, WAIT, ExampleDevice, started

THREADS = 8
REQUESTS_PER_THREAD = 15


@pytest.fixture
def server():
    srv = started(ExampleDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


@pytest.fixture(params=IMPLEMENTATIONS)
def client(request, server):
    impl = request.param
    client = impl.BlockingClient(*server.bind_address)
    client.start(timeout=WAIT)
    assert client.wait_protocol(WAIT)
    yield impl, client
    client.stop()
    client.join(WAIT)


def _hammer(impl, client, use_mid):
    wrong, errors = [], []
    barrier = threading.Barrier(THREADS)

    def worker(n):
        try:
            barrier.wait(WAIT)
            for i in range(REQUESTS_PER_THREAD):
                tag = "n%d-%d" % (n, i)
                reply, _ = client.blocking_request(impl.Message.request("echo", tag),
                                                   timeout=WAIT, use_mid=use_mid)
                if reply.arguments != [b"ok", tag.encode()]:
                    wrong.append((tag, str(reply)))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * 4)
    assert not errors
    return wrong


def test_concurrent_requests_without_ids_get_their_own_replies(client):
    impl, c = client
    assert _hammer(impl, c, use_mid=False) == []


def test_concurrent_requests_with_ids_get_their_own_replies(client):
    impl, c = client
    assert _hammer(impl, c, use_mid=True) == []


def test_reply_without_id_goes_to_the_request_sent_without_one(server):
    client = katcp_compat.BlockingClient(*server.bind_address)
    client.start(timeout=WAIT)
    try:
        assert client.wait_protocol(WAIT)
        held = server.pending_async
        with_id = client.future_request(katcp_compat.Message.request("later"), timeout=WAIT)
        without_id = client.future_request(katcp_compat.Message.request("later"),
                                           timeout=WAIT, use_mid=False)
        for _ in range(100):
            if len(held) == 2:
                break
            server.sync_with_ioloop(WAIT)
        assert len(held) == 2
        held[1].reply("ok", "second")
        reply, _ = without_id.result(WAIT)
        assert reply.arguments == [b"ok", b"second"]
        assert not with_id.done()
        held[0].reply("ok", "first")
        reply, _ = with_id.result(WAIT)
        assert reply.arguments == [b"ok", b"first"]
    finally:
        client.stop()
        client.join(WAIT)
