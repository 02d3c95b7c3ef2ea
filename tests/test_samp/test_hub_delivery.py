"""The hub's callbacks to clients over kept-alive HTTP/1.1 connections, against raw peers."""
import socket
import threading
import time
import xmlrpc.client

import pytest

from samp_compat import _hub_delivery

from _hub_support import WAIT, hub_proxy, make_hub, private_env  # noqa: F401
from _xxe_payloads import response_payloads

MSG = {"samp.mtype": "test.msg", "samp.params": {"a": "1"}}
OK = xmlrpc.client.dumps(("",), methodresponse=True).encode()
OK_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
               % len(OK)) + OK


class CallbackPeer:
    """A client's callback address made of raw sockets.

    ``action(connection_number, method)`` decides what happens to each
    request: ``"answer"`` (keep the connection), ``"hang"`` (read, never
    answer), ``"close"`` (close without answering), bytes (answered as the
    body of a 200 response) or ``("raw", response)`` (sent as it is). Every
    request (after its answer, if any) and every connection the hub closes is
    recorded.
    """

    def __init__(self, action):
        self.action = action
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d/" % self.sock.getsockname()[1]
        self.requests = []   # (connection number, method name)
        self.hub_closed = []  # connection numbers the hub closed
        self.connections = []
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="CallbackPeer")]
        self._threads[0].start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.cond:
                if self._stop.is_set():
                    conn.close()
                    return
                self.connections.append(conn)
                number = len(self.connections)
                thread = threading.Thread(target=self._serve, args=(conn, number),
                                          name="CallbackPeer")
                self._threads.append(thread)
            thread.start()

    def _read_request(self, conn, buf):
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None, buf
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = int([line for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        return xmlrpc.client.loads(rest[:length])[1], rest[length:]

    def _serve(self, conn, number):
        buf = b""
        try:
            while True:
                method, buf = self._read_request(conn, buf)
                if method is None:
                    self._record(self.hub_closed, number)
                    return
                action = self.action(number, method)
                if action == "answer":
                    conn.sendall(OK_RESPONSE)
                elif isinstance(action, tuple):
                    conn.sendall(action[1])
                elif isinstance(action, bytes):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(action), action))
                self._record(self.requests, (number, method))
                if action == "close":
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _record(self, target, item):
        with self.cond:
            target.append(item)
            self.cond.notify_all()

    def wait(self, predicate, timeout=WAIT):
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def close(self):
        with self.cond:
            self._stop.set()
            threads = list(self._threads)
            for conn in self.connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        # Wake the accepting thread with one last connection.
        socket.create_connection(self.sock.getsockname(), timeout=WAIT).close()
        for thread in threads:
            thread.join(WAIT)
            assert not thread.is_alive()
        self.sock.close()


@pytest.fixture
def make_peer():
    peers = []

    def make(action):
        peer = CallbackPeer(action)
        peers.append(peer)
        return peer
    yield make
    for peer in peers:
        peer.close()


class Registered:
    """A client registered with ``hub`` whose callbacks go to ``url``."""

    def __init__(self, hub, url):
        self.proxy = hub_proxy(hub.params["samp.hub.xmlrpc.url"])
        self.hub = self.proxy.samp.hub
        reg = self.hub.register(hub.params["samp.secret"])
        self.key, self.id = reg["samp.private-key"], reg["samp.self-id"]
        if url is not None:
            self.hub.setXmlrpcCallback(self.key, url)
            self.hub.declareSubscriptions(self.key, {"test.msg": {}})

    def registered(self, other_id):
        return other_id in self.hub.getRegisteredClients(self.key)

    def close(self):
        try:
            self.hub.unregister(self.key)
        except (xmlrpc.client.Fault, OSError):
            pass
        self.proxy("close")()


@pytest.fixture
def pair(make_hub):
    """``make(url)`` -> (sender, receiver) registered with a fresh hub."""
    made = []

    def make(url, **hub_kw):
        hub = make_hub(**hub_kw)
        sender, receiver = Registered(hub, None), Registered(hub, url)
        made.extend([receiver, sender])
        return hub, sender, receiver
    yield make
    for client in made:
        client.close()


def wait_until(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.02)
    return True


def test_notifications_share_one_kept_alive_connection(make_peer, pair):
    peer = make_peer(lambda number, method: "answer")
    hub, sender, receiver = pair(peer.url)
    for count in range(1, 4):
        sender.hub.notify(sender.key, receiver.id, MSG)
        assert peer.wait(lambda: len(peer.requests) == count)
        assert hub._deliverer.drain(WAIT)  # the response is read: the connection is free
    assert peer.requests == [(1, "samp.client.receiveNotification")] * 3


def test_stale_kept_alive_connection_is_retried_once_on_a_fresh_one(make_peer, pair):
    # The client answers on its first connection, then drops it while idle.
    peer = make_peer(lambda number, method: "answer")
    hub, sender, receiver = pair(peer.url)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: len(peer.requests) == 1)
    assert hub._deliverer.drain(WAIT)  # the response is read: the connection is idle
    peer.connections[0].shutdown(socket.SHUT_RDWR)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: len(peer.requests) == 2)
    assert peer.requests[1] == (2, "samp.client.receiveNotification")
    assert len(peer.connections) == 2
    assert sender.registered(receiver.id)


def test_client_closing_a_fresh_connection_is_unregistered_without_resending(make_peer, pair):
    peer = make_peer(lambda number, method: "close")
    hub, sender, receiver = pair(peer.url)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert wait_until(lambda: not sender.registered(receiver.id))
    assert len(peer.requests) == 1


def test_refused_connection_unregisters_the_client(pair):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = "http://127.0.0.1:%d/" % closed.getsockname()[1]
    closed.close()  # nothing listens there any more
    hub, sender, receiver = pair(url)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert wait_until(lambda: not sender.registered(receiver.id))


def test_hanging_delivery_is_interrupted_when_the_client_unregisters(make_peer, pair):
    peer = make_peer(lambda number, method: "hang")
    hub, sender, receiver = pair(peer.url)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: len(peer.requests) == 1)
    start = time.monotonic()
    receiver.hub.unregister(receiver.key)
    assert peer.wait(lambda: peer.hub_closed == [1])
    assert time.monotonic() - start < _hub_delivery.DELIVERY_TIMEOUT / 2
    assert hub._deliverer.drain(WAIT)
    assert len(peer.requests) == 1  # not sent again


def test_hanging_delivery_is_interrupted_when_the_hub_stops(make_peer, pair):
    peer = make_peer(lambda number, method: "hang")
    hub, sender, receiver = pair(peer.url)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: len(peer.requests) == 1)
    start = time.monotonic()
    hub.stop()
    assert time.monotonic() - start < _hub_delivery.DELIVERY_TIMEOUT / 2
    assert peer.wait(lambda: peer.hub_closed == [1])
    assert not [t for t in threading.enumerate() if t.name.startswith("SAMPHubDelivery")]


def test_unanswered_delivery_times_out_and_keeps_the_client(make_peer, pair, monkeypatch):
    monkeypatch.setattr(_hub_delivery, "DELIVERY_TIMEOUT", 0.5)
    peer = make_peer(lambda number, method: "hang" if number == 1 else "answer")
    hub, sender, receiver = pair(peer.url)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: peer.hub_closed == [1])
    assert len(peer.requests) == 1  # a timeout is not retried
    assert sender.registered(receiver.id)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: peer.requests[-1:] == [(2, "samp.client.receiveNotification")])


def test_six_hung_clients_do_not_delay_a_healthy_one(make_peer, make_hub):
    hub = make_hub()
    sender = Registered(hub, None)
    arrivals = []

    def answer(number, method):
        arrivals.append(time.monotonic())
        return "answer"
    healthy_peer = make_peer(answer)
    receivers = [Registered(hub, make_peer(lambda number, method: "hang").url)
                 for _ in range(6)]
    receivers.append(Registered(hub, healthy_peer.url))
    try:
        sent = []
        for _ in range(20):
            sent.append(time.monotonic())
            sender.hub.notifyAll(sender.key, MSG)
        assert healthy_peer.wait(lambda: len(healthy_peer.requests) == 20)
        assert max(got - out for out, got in zip(sent, arrivals)) < 2.0
    finally:
        for client in receivers + [sender]:
            client.close()


def test_hung_clients_hold_no_hub_thread_and_the_hub_answers_at_once(make_peer, make_hub):
    hub = make_hub()
    sender = Registered(hub, None)
    peers = [make_peer(lambda number, method: "hang") for _ in range(6)]
    receivers = [Registered(hub, peer.url) for peer in peers]
    try:
        for _ in range(10):
            sender.hub.notifyAll(sender.key, MSG)
        assert all(peer.wait(lambda peer=peer: len(peer.requests) == 4) for peer in peers)
        start = time.monotonic()
        assert sender.hub.ping() == "1"
        assert time.monotonic() - start < 1.0
        assert not [t for t in threading.enumerate() if t.name.startswith("SAMPHubDelivery")]
    finally:
        for client in receivers + [sender]:
            client.close()


def test_a_callback_answered_with_a_chunked_body_is_read_whole(make_peer, pair):
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n"
               b"\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(OK), OK))
    peer = make_peer(lambda number, method: ("raw", chunked))
    hub, sender, receiver = pair(peer.url)
    for count in range(1, 3):
        sender.hub.notify(sender.key, receiver.id, MSG)
        assert peer.wait(lambda: len(peer.requests) == count)
        assert hub._deliverer.drain(WAIT)
    # Read whole, so the kept-alive connection served the second call too.
    assert peer.requests == [(1, "samp.client.receiveNotification")] * 2
    assert sender.registered(receiver.id)


def test_calls_to_a_client_that_keeps_timing_out_get_error_responses(
        make_peer, pair, monkeypatch):
    monkeypatch.setattr(_hub_delivery, "DELIVERY_TIMEOUT", 0.3)
    peer = make_peer(lambda number, method: "hang")
    hub, caller, hung = pair(peer.url)
    caller_peer = make_peer(lambda number, method: "answer")
    caller.hub.setXmlrpcCallback(caller.key, caller_peer.url)
    msg_ids = [caller.hub.call(caller.key, hung.id, "tag%d" % n, MSG) for n in range(3)]
    assert caller_peer.wait(lambda: len(caller_peer.requests) == 3)
    assert [method for _, method in caller_peer.requests] == ["samp.client.receiveResponse"] * 3
    assert len(set(msg_ids)) == 3
    start = time.monotonic()
    response = caller.hub.callAndWait(caller.key, hung.id, MSG, "30")
    assert response["samp.status"] == "samp.error"
    assert hung.id in response["samp.error"]["samp.errortxt"]
    assert time.monotonic() - start < 2.0
    assert caller.registered(hung.id)


def test_an_unresponsive_client_that_answers_again_gets_its_messages(
        make_peer, pair, monkeypatch):
    monkeypatch.setattr(_hub_delivery, "DELIVERY_TIMEOUT", 1.0)  # an answer under load comes well within it
    peer = make_peer(lambda number, method: "hang" if number <= 2 else "answer")
    hub, sender, receiver = pair(peer.url)
    for _ in range(2):
        sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: sorted(peer.hub_closed) == [1, 2])
    assert hub._deliverer.drain(WAIT)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: peer.requests[-1:] == [(3, "samp.client.receiveNotification")])
    assert hub._deliverer.drain(WAIT)
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: len([r for r in peer.requests if r[0] == 3]) == 2)


def test_an_unresponsive_client_gets_one_delivery_at_a_time_and_other_calls_fail_at_once(
        make_peer, pair, monkeypatch):
    monkeypatch.setattr(_hub_delivery, "DELIVERY_TIMEOUT", 2.0)
    peer = make_peer(lambda number, method: "hang")
    hub, caller, hung = pair(peer.url)
    responses = []
    caller_peer = make_peer(lambda number, method: responses.append(time.monotonic()) or "answer")
    caller.hub.setXmlrpcCallback(caller.key, caller_peer.url)
    for _ in range(2):
        caller.hub.notify(caller.key, hung.id, MSG)
    assert hub._deliverer.drain(WAIT)  # both timed out: the client is unresponsive now
    caller.hub.call(caller.key, hung.id, "probe", MSG)  # in flight for 2 s
    assert peer.wait(lambda: len(peer.requests) == 3)
    sent = time.monotonic()
    caller.hub.call(caller.key, hung.id, "refused", MSG)
    assert caller_peer.wait(lambda: len(caller_peer.requests) == 1)
    assert responses[0] - sent < 1.0
    assert len(peer.requests) == 3  # the refused call never reached the client


def test_delivery_threads_end_when_their_client_is_idle(make_peer, pair, monkeypatch):
    monkeypatch.setattr(_hub_delivery, "LANE_IDLE", 0.1)
    peer = make_peer(lambda number, method: "answer")
    hub, sender, receiver = pair(peer.url)
    for _ in range(10):
        sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: len(peer.requests) == 10)
    assert wait_until(lambda: not [t for t in threading.enumerate()
                                   if t.name.startswith("SAMPHubDelivery")])


XXE_RESPONSES = response_payloads("file:///etc/hostname", "http://127.0.0.1:9/x.dtd")


@pytest.mark.parametrize("name", sorted(XXE_RESPONSES))
def test_unsafe_callback_response_is_refused_and_the_hub_goes_on(make_peer, pair, name, caplog):
    caplog.set_level("WARNING", logger="samp_compat")
    peer = make_peer(lambda number, method: XXE_RESPONSES[name])
    hub, sender, receiver = pair(peer.url)
    start = time.monotonic()
    sender.hub.notify(sender.key, receiver.id, MSG)
    assert peer.wait(lambda: len(peer.requests) == 1)
    assert hub._deliverer.drain(WAIT)  # the delivery ended: refused, not stuck
    assert time.monotonic() - start < _hub_delivery.DELIVERY_TIMEOUT / 2
    assert "receiveNotification to %s failed" % receiver.id in caplog.text
    assert sender.hub.ping() == "1"
    assert sender.hub.getRegisteredClients(sender.key)[0] == "cli#hub"
