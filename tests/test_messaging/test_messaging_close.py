"""close() called by a callback while frames are being written is not lost."""
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
        connection.send_message("queued-before-close")  # the key now watches writes too
        peer.sendall(messaging.MessageManager.create_action_message("test-close-me"))
        ready = {}
        for _ in range(10):  # until the action arrives in the same event as a write
            for key, mask in selector.select(WAIT):
                ready[key.fd] = mask
            if ready.get(sock.fileno(), 0) == selectors.EVENT_READ | selectors.EVENT_WRITE:
                break
        connection.process_events(selectors.EVENT_READ | selectors.EVENT_WRITE)
        assert closed_by_callback == [connection]
        for _ in range(3):  # the close happens on one of the next events
            if connection.socket is None:
                break
            for key, mask in selector.select(WAIT):
                key.data.process_events(mask)
        assert connection.socket is None
        assert sock.fileno() == -1
        assert not selector.get_map()
    finally:
        messaging.ConnectionManager.messages_callbacks.pop("test-close-me", None)
        connection._close()
        selector.close()
        peer.close()
