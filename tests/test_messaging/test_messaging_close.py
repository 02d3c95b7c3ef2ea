"""close() called by a callback closes the connection in that event; what was sent before arrives."""
import selectors
import socket

from messaging_helpers import WAIT

from lib import messaging
from protocompat.netutil import loopback_listener


def test_close_from_callback_during_read_and_write_event_closes_the_connection():
    listener = loopback_listener()
    peer = socket.create_connection(listener.getsockname(), timeout=WAIT)
    sock, _ = listener.accept()
    listener.close()
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    connection = messaging.ConnectionManager()
    closed_by_callback = []

    @messaging.message_callback("test-close-me")
    def close_me(conn):
        closed_by_callback.append(conn)
        conn.close()

    try:
        selector.register(sock, selectors.EVENT_READ, data=connection)
        connection.connect(selector, sock, sock.getpeername())
        connection.send_message("sent-before-close")
        peer.sendall(messaging.MessageManager.create_action_message("test-close-me"))
        assert selector.select(WAIT)  # the action has arrived
        connection.process_events(selectors.EVENT_READ | selectors.EVENT_WRITE)
        assert closed_by_callback == [connection]
        assert connection.socket is None  # closed by the event that ran the callback
        assert sock.fileno() == -1
        assert not selector.get_map()
        received = b""
        while True:  # what was sent before the close, then the end of the stream
            data = peer.recv(65536)
            if not data:
                break
            received += data
        [message] = messaging.MessageManager().feed(received)
        assert message.jsonheader["action"] == "sent-before-close"
    finally:
        messaging.ConnectionManager.messages_callbacks.pop("test-close-me", None)
        connection._close()
        selector.close()
        peer.close()


def test_frames_sent_by_earlier_callbacks_of_an_event_arrive_before_a_close_in_it():
    listener = loopback_listener()
    peer = socket.create_connection(listener.getsockname(), timeout=WAIT)
    sock, _ = listener.accept()
    listener.close()
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    connection = messaging.ConnectionManager()

    @messaging.request_callback("test-answer-before-close")
    def answer(conn):
        return "answer"

    @messaging.message_callback("test-close-me")
    def close_me(conn):
        conn.close()

    try:
        selector.register(sock, selectors.EVENT_READ, data=connection)
        connection.connect(selector, sock, sock.getpeername())
        peer.sendall(messaging.MessageManager.create_request("test-answer-before-close", "0001")
                     + messaging.MessageManager.create_action_message("test-close-me"))
        while connection.socket is not None:  # one event, or two if the bytes arrive apart
            for key, mask in selector.select(WAIT):
                key.data.process_events(mask)
        received = b""
        while True:
            data = peer.recv(65536)
            if not data:
                break
            received += data
        [response] = messaging.MessageManager().feed(received)
        assert (response.jsonheader["request_id"], response.content) == ("0001", {"value": "answer"})
    finally:
        messaging.ConnectionManager.messages_callbacks.pop("test-close-me", None)
        messaging.ConnectionManager.requests_callbacks.pop("test-answer-before-close", None)
        connection._close()
        selector.close()
        peer.close()
