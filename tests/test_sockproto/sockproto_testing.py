"""Shared values of the sockproto tests."""
import time

from sockproto.codec import decode_pure_frame, encode_pure_frame

# Generous bound for every wait on another thread; reached only on failure.
WAIT = 5.0


class RawPeer:
    """Talks pure_json_protocol frames over a bare comm instance, without a protocol."""

    def __init__(self, comm):
        self.comm = comm

    def send(self, service_id, data_id, data, status=0):
        return self.send_frame(encode_pure_frame(status, service_id, data_id, data))

    def send_frame(self, frame):
        return self.comm.send(frame, WAIT)

    def receive(self, timeout=WAIT):
        """Next frame decoded, or None."""
        frame = self.comm.receive(timeout)
        return None if frame is None else decode_pure_frame(frame)

    def receive_where(self, service_id, data_id, timeout=WAIT):
        """Next message with these ids (others are skipped), or None."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.receive(max(0.0, deadline - time.monotonic()))
            if msg is None or (msg.get_service_id(), msg.get_data_id()) == (service_id, data_id):
                return msg
