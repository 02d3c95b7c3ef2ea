"""Shared pieces of the katcp_compat server/client tests: a raw line client,
small example devices, and the implementations a test can run against."""

import socket
import time

import pytest

import katcp_compat
from katcp_compat.core import FailReply, Message, ProtocolFlags
from katcp_compat.kattypes import Int, request, return_reply
from katcp_compat.sensor import Sensor
from katcp_compat.server import AsyncReply, DeviceServer

WAIT = 5.0  # upper bound of every wait in these tests


def _implementations():
    yield pytest.param(katcp_compat, id="katcp_compat")
    try:
        import katcp
    except ImportError:
        yield pytest.param(None, id="katcp-0.9.3", marks=pytest.mark.skip(
            reason="katcp 0.9.3 (the reference) is not installed"))
    else:
        yield pytest.param(katcp, id="katcp-0.9.3", marks=pytest.mark.interop)


#: katcp_compat, and katcp 0.9.3 where installed: the parameters of an ``impl`` fixture.
IMPLEMENTATIONS = list(_implementations())


class RawClient:
    """A plain socket that sends lines and reads lines, with timeouts."""

    def __init__(self, address, timeout=WAIT):
        self.sock = socket.create_connection(address, timeout=timeout)
        self._buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if not data.endswith(b"\n"):
            data += b"\n"
        self.sock.sendall(data)

    def readline(self):
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def read_until(self, prefix):
        """Lines up to and including the first one starting with ``prefix``."""
        lines = []
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            line = self.readline()
            lines.append(line)
            if line.startswith(prefix):
                return lines
        raise AssertionError("no %r in %r" % (prefix, lines))

    def skip_greeting(self, count=3):
        return [self.readline() for _ in range(count)]

    def request(self, line, reply_prefix=None):
        self.send(line)
        if reply_prefix is None:
            reply_prefix = "!" + line[1:].split()[0].split("[")[0]
        return self.read_until(reply_prefix)

    def read_to_eof(self):
        data = self._buf
        self._buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data.decode()

    def close(self):
        self.sock.close()


class ExampleDevice(DeviceServer):
    """A device with one sensor of several types and a few custom requests."""

    VERSION_INFO = ("my-dev", 2, 3)
    BUILD_INFO = ("my-build", 4, 5, "rc1")

    def setup_sensors(self):
        self.int_sensor = Sensor.integer("an.int", "An integer", "count", [-5, 5])
        self.float_sensor = Sensor.float("a.float", "A float", "m", [-1.5, 1.5])
        self.disc_sensor = Sensor.discrete("a.disc", "Discrete", "", ["on", "off"])
        self.bool_sensor = Sensor.boolean("a.bool", "A boolean", "")
        for sensor in (self.int_sensor, self.float_sensor, self.disc_sensor, self.bool_sensor):
            self.add_sensor(sensor)
        self.pending_async = []

    def request_raise_fail(self, req, msg):
        """Always fails with a message."""
        raise FailReply("it failed")

    def request_raise_error(self, req, msg):
        """Always raises an unexpected error."""
        raise ValueError("boom")

    def request_echo(self, req, msg):
        """Reply ok with the arguments."""
        return req.make_reply("ok", *msg.arguments)

    def request_two_informs(self, req, msg):
        """Send two informs then reply."""
        req.inform("first")
        req.inform("second")
        return req.make_reply("ok", "2")

    def request_later(self, req, msg):
        """Reply later, from another thread."""
        self.pending_async.append(req)
        raise AsyncReply()

    @request(Int())
    @return_reply(Int())
    def request_double(self, req, value):
        """Double an integer."""
        return ("ok", value * 2)


class BulkDevice(ExampleDevice):
    """The example device speaking protocol 5.1 with bulk sampling and timeout hints."""

    PROTOCOL_INFO = ProtocolFlags(5, 1, [ProtocolFlags.MULTI_CLIENT, ProtocolFlags.MESSAGE_IDS,
                                         ProtocolFlags.BULK_SET_SENSOR_SAMPLING,
                                         ProtocolFlags.REQUEST_TIMEOUT_HINTS])


class V4Device(ExampleDevice):
    """The example device speaking KATCP v4."""

    PROTOCOL_INFO = ProtocolFlags(4, 0, [ProtocolFlags.MULTI_CLIENT])


def started(server):
    assert server.start(timeout=WAIT)
    return server


def message(*args, **kwargs):
    return Message.request(*args, **kwargs)
