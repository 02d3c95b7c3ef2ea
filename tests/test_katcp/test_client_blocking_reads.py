"""A thread blocked in blocking_request runs the client's loop itself while it waits: its reply
and whatever arrives before it are handled in order, one at a time, before the call returns."""

import queue
import threading
import time

import pytest

from katcp_compat.client import BlockingClient, CallbackClient
from katcp_compat.core import Message
from katcp_io_helpers import WAIT, ExampleDevice, started


class NewsDevice(ExampleDevice):
    def request_news_then_ok(self, req, msg):
        """Tell every client some news, then reply."""
        self.mass_inform(Message.inform("news", "fresh"))
        return req.make_reply("ok")

    def request_answer_later_first(self, req, msg):
        """Reply to every ?later waiting, then to this request."""
        while self.pending_async:
            self.pending_async.pop(0).reply("ok", "late")
        return req.make_reply("ok")


@pytest.fixture
def server():
    srv = started(NewsDevice("127.0.0.1", 0))
    yield srv
    srv.stop(WAIT)


def started_client(srv, cls=BlockingClient):
    client = cls(*srv.bind_address)
    client.start(timeout=WAIT)
    assert client.wait_protocol(WAIT)
    return client


def stop(client):
    client.stop(WAIT)
    client.join(WAIT)


def test_an_inform_arriving_before_the_reply_is_handled_before_blocking_request_returns(server):
    handled = []

    class Listener(BlockingClient):
        def inform_news(self, msg):
            """Record it."""
            handled.append(msg.arguments)

    client = started_client(server, Listener)
    try:
        for count in range(1, 21):
            reply, _ = client.blocking_request(Message.request("news-then-ok"))
            assert reply.reply_ok()
            assert len(handled) == count
    finally:
        stop(client)


def test_a_subclass_overriding_handle_reply_sees_each_blocking_reply_before_the_call_returns(
        server):
    seen = []

    class Watcher(BlockingClient):
        def handle_reply(self, msg):
            seen.append(msg.name)
            super().handle_reply(msg)

    client = started_client(server, Watcher)
    try:
        reply, _ = client.blocking_request(Message.request("watchdog"))
        assert reply.reply_ok()
        assert seen == ["watchdog"]
    finally:
        stop(client)


def test_a_callback_reply_arriving_before_a_blocking_reply_has_run_when_the_call_returns(server):
    client = started_client(server, CallbackClient)
    callbacks = queue.Queue()
    try:
        client.callback_request(Message.request("later"), reply_cb=callbacks.put)
        while not server.pending_async:
            server.sync_with_ioloop(WAIT)
        reply, _ = client.blocking_request(Message.request("answer-later-first"))
        assert reply.reply_ok()
        late = callbacks.get_nowait()  # already run when the blocking call returned
        assert late.arguments == [b"ok", b"late"]
    finally:
        stop(client)


def test_a_handler_that_makes_a_blocking_request_gets_runtime_error_in_whichever_thread_runs_it(
        server):
    errors = queue.Queue()

    class Nested(BlockingClient):
        def inform_news(self, msg):
            """Try to block inside a handler."""
            try:
                self.blocking_request(Message.request("watchdog"), timeout=WAIT)
            except RuntimeError as exc:
                errors.put(exc)

    client = started_client(server, Nested)
    try:
        reply, _ = client.blocking_request(Message.request("news-then-ok"))
        assert reply.reply_ok()
        assert isinstance(errors.get(timeout=WAIT), RuntimeError)
    finally:
        stop(client)


def test_stopping_the_client_ends_a_blocked_request_at_once_with_a_fail_reply(server):
    client = started_client(server)
    result = queue.Queue()
    caller = threading.Thread(target=lambda: result.put(client.blocking_request(
        Message.request("later"), timeout=60)))
    caller.start()
    while not server.pending_async:  # the request is out: the caller waits for its reply
        server.sync_with_ioloop(WAIT)
    start = time.monotonic()
    stop(client)
    reply, _ = result.get(timeout=WAIT)
    caller.join(WAIT)
    assert time.monotonic() - start < WAIT
    assert reply.arguments[0] == b"fail"


def test_blocking_requests_from_many_threads_on_one_client_get_their_own_replies(server):
    client = started_client(server)
    errors = []

    def ask(tag):
        for i in range(100):
            reply, _ = client.blocking_request(Message.request("echo", "%s-%d" % (tag, i)))
            if reply.arguments != [b"ok", b"%s-%d" % (tag.encode(), i)]:
                errors.append(reply)

    threads = [threading.Thread(target=ask, args=("t%d" % n,)) for n in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 4)
        assert errors == []
    finally:
        stop(client)


def test_an_inform_arriving_while_no_thread_waits_is_handled_on_the_io_thread(server):
    got = queue.Queue()

    class Listener(BlockingClient):
        def inform_interface_changed(self, msg):
            """Record it."""
            got.put(threading.get_ident())

    client = started_client(server, Listener)
    try:
        client.blocking_request(Message.request("watchdog"))
        server.mass_inform(Message.inform("interface-changed"))
        assert got.get(timeout=WAIT) == client.ioloop_thread_id
        reply, _ = client.blocking_request(Message.request("watchdog"))
        assert reply.reply_ok()
    finally:
        stop(client)
