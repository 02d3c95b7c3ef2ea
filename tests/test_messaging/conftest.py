"""Fixtures of the messaging tests: an in-process node linked to a peer process."""
import os
import queue
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from messaging_helpers import WAIT, Inbox, PeerProcess  # noqa: E402
from messaging_node import Node  # noqa: E402

from lib import messaging  # noqa: E402

INBOX = Inbox()


@messaging.message_callback("pong")
def _pong(connection, n):
    INBOX.put("pong", n)


@messaging.message_callback("answer")
def _answer(connection, name, value):
    INBOX.put("answer", [name, value])


@messaging.message_callback("pulled")
def _pulled(connection, filepath, digest):
    INBOX.put("pulled", [filepath, digest])


@messaging.request_callback("square")
def _square(connection, x):
    return x * x


class Link:
    def __init__(self, connection, node, peer, inbox):
        self.connection = connection
        self.node = node
        self.peer = peer
        self.inbox = inbox


@pytest.fixture
def inbox():
    global INBOX
    INBOX = Inbox()
    return INBOX


@pytest.fixture
def node():
    """An in-process loop, stopped (with its sockets closed) after the test."""
    created = []

    def make(name="test-node", on_connect=None, on_disconnect=None):
        loop = Node(name, on_connect, on_disconnect)
        created.append(loop)
        return loop
    yield make
    for loop in created:
        assert loop.stop(WAIT)
    messaging.NotifierSock().close()


@pytest.fixture
def peers():
    started = []

    def start(*args):
        peer = PeerProcess(*args)
        started.append(peer)
        return peer
    yield start
    for peer in started:
        peer.stop()


@pytest.fixture(params=["peer_is_server", "peer_is_client"])
def link(request, node, peers, inbox):
    """A connection of this process to ``peer.py``, in either role."""
    if request.param == "peer_is_server":
        peer = peers("server")
        port = peer.first_line()["port"]
        loop = node()
        loop.start()
        connection = loop.connect("127.0.0.1", port)
    else:
        connected = queue.Queue()
        loop = node(on_connect=connected.put)
        host, port = loop.listen()
        loop.start()
        peer = peers("client", port)
        connection = connected.get(timeout=WAIT)
    yield Link(connection, loop, peer, inbox)
