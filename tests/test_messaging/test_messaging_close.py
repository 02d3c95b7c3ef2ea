"""close() called by a callback closes the connection in that event; what was sent before arrives."""
import selectors

import pytest

from messaging_helpers import WAIT, DirectLink

from lib import messaging


@pytest.fixture
def closing_action():
    """The action "test-close-me", whose callback closes its connection."""
    closed_by_callback = []

    @messaging.message_callback("test-close-me")
    def close_me(conn):
        closed_by_callback.append(conn)
        conn.close()
    yield closed_by_callback
    messaging.ConnectionManager.messages_callbacks.pop("test-close-me", None)


def received_until_closed(link):
    """The messages the link's peer receives until the connection closes."""
    received = b""
    while True:
        data = link.peer.recv(65536)
        if not data:
            return messaging.MessageManager().feed(received)
        received += data


def test_close_from_callback_during_read_and_write_event_closes_the_connection(closing_action):
    connection = messaging.ConnectionManager()
    with DirectLink(connection) as link:
        connection.send_message("sent-before-close")
        link.peer.sendall(messaging.MessageManager.create_action_message("test-close-me"))
        assert link.selector.select(WAIT)  # the action has arrived
        connection.process_events(selectors.EVENT_READ | selectors.EVENT_WRITE)
        assert closing_action == [connection]
        assert connection.socket is None  # closed by the event that ran the callback
        assert link.sock.fileno() == -1
        assert not link.selector.get_map()
        [message] = received_until_closed(link)
        assert message.jsonheader["action"] == "sent-before-close"


def test_frames_sent_by_earlier_callbacks_of_an_event_arrive_before_a_close_in_it(closing_action):
    @messaging.request_callback("test-answer-before-close")
    def answer(conn):
        return "answer"

    connection = messaging.ConnectionManager()
    try:
        with DirectLink(connection) as link:
            link.peer.sendall(messaging.MessageManager.create_request("test-answer-before-close", "0001")
                              + messaging.MessageManager.create_action_message("test-close-me"))
            link.pump(lambda: connection.socket is None)  # one event, or two if the bytes arrive apart
            [response] = received_until_closed(link)
            assert (response.jsonheader["request_id"], response.content) == ("0001", {"value": "answer"})
    finally:
        messaging.ConnectionManager.requests_callbacks.pop("test-answer-before-close", None)
