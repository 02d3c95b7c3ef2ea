"""Example KATCP device server: ``python -m katcp_compat [-a HOST] [-p PORT]``.

Installed as ``katcp-compat-server`` and, under katcp's example script name,
``katcp-exampleserver``.

``python -m katcp_compat --demo`` starts the server on 127.0.0.1 (any free
port), talks to it with a client (``?help``, ``?sensor-list``, a sensor
subscription and a custom request), prints what it sees and exits.
"""

import argparse
import logging
import math
import queue
import sys
import time
from typing import Any, List, Optional

from protocompat.cli import (HelpFormatter, add_logging_arguments, command_name,
                             configured_logging, interrupt_on_sigterm, reported_here, run)

from .client import BlockingClient
from ._cli_format import readable
from .core import FailReply, Message
from .kattypes import Float, Str, request, return_reply
from .sensor import Sensor
from .server import DeviceServer

#: Seconds between sensor updates of the example device.
UPDATE_INTERVAL = 0.2
#: Seconds the demo waits for anything.
DEMO_WAIT = 5.0
#: Sensor updates the demo shows.
DEMO_UPDATES = 3


class ExampleDevice(DeviceServer):
    """A pretend instrument whose sensors change over time.

    Sensors of every type: a float sine wave, an integer counter, a boolean
    toggle, a discrete mode, a string, a timestamp and an address.
    Requests added: ``?add x y`` and ``?set-mode mode``. The sensors change
    on a timer of the server's I/O loop (``ioloop.call_later``): the device
    runs the server's two threads and no other.
    """

    VERSION_INFO = ("example-device", 1, 0)
    BUILD_INFO = ("katcp-compat-example", 1, 0, "")
    MODES = ["idle", "observe", "calibrate"]

    def setup_sensors(self) -> None:
        """Create the example sensors."""
        self.wave = Sensor.float("wave", "A slow sine wave.", "V", [-1.0, 1.0])
        self.counter = Sensor.integer("counter", "Updates so far.", "", [0, 2 ** 31 - 1])
        self.toggle = Sensor.boolean("toggle", "Flips on every update.", "")
        self.mode = Sensor.discrete("mode", "Operating mode.", "", self.MODES)
        self.note = Sensor.string("note", "A free-text note.", "")
        self.last_update = Sensor.timestamp("last-update", "Time of the last update.")
        self.peer = Sensor.address("peer", "A made-up peer address.", "")
        for sensor in (self.wave, self.counter, self.toggle, self.mode, self.note,
                       self.last_update, self.peer):
            self.add_sensor(sensor)
        self.mode.set_value("idle")
        self.note.set_value("hello")
        self.peer.set_value(("127.0.0.1", 7147))
        self._updates = 0

    def _update_sensors(self) -> None:
        """Change the sensors and come back after UPDATE_INTERVAL (I/O thread)."""
        self._updates += 1
        count = self._updates
        now = time.time()
        value = math.sin(now / 2.0)
        status = Sensor.WARN if abs(value) > 0.9 else Sensor.NOMINAL
        self.wave.set_value(round(value, 4), status, now)
        self.counter.set_value(count, timestamp=now)
        self.toggle.set_value(bool(count % 2), timestamp=now)
        self.last_update.set_value(now, timestamp=now)
        self.ioloop.call_later(UPDATE_INTERVAL, self._update_sensors)  # type: ignore[union-attr]

    def start(self, timeout: Optional[float] = None, daemon: Optional[bool] = None,
              excepthook: Any = None) -> Optional[bool]:
        """Start the server; its I/O loop updates the sensors every UPDATE_INTERVAL."""
        result = super().start(timeout, daemon, excepthook)
        self.ioloop.call_later(UPDATE_INTERVAL, self._update_sensors)  # type: ignore[union-attr]
        return result

    @request(Float(), Float())
    @return_reply(Float())
    def request_add(self, req: Any, x: float, y: float) -> tuple:
        """Add two numbers.

        Parameters
        ----------
        x, y : float
            The numbers.

        Returns
        -------
        success : {'ok', 'fail'}
        sum : float
        """
        return ("ok", x + y)

    @request(Str())
    @return_reply(Str())
    def request_set_mode(self, req: Any, mode: str) -> tuple:
        """Set the operating mode (idle, observe or calibrate).

        Parameters
        ----------
        mode : str
            The new mode.

        Returns
        -------
        success : {'ok', 'fail'}
        mode : str
        """
        if mode not in self.MODES:
            raise FailReply("Unknown mode %r; use one of %s." % (mode, ", ".join(self.MODES)))
        self.mode.set_value(mode)
        return ("ok", mode)


def _show(title: str, lines: List[str]) -> None:
    print("== %s" % title)
    for line in lines:
        print("   " + line)


def _request(client: BlockingClient, *args: Any) -> List[str]:
    reply, informs = client.blocking_request(Message.request(*args), timeout=DEMO_WAIT,
                                             use_mid=False)
    return [readable(m) for m in informs + [reply]]


def run_demo() -> int:
    """Start the example device, talk to it, print the conversation, stop.

    Returns
    -------
    status : int
        0 on success.
    """
    # The demo provokes a failing request on purpose; keep its log quiet.
    package_log = logging.getLogger("katcp_compat")
    level = package_log.level
    package_log.setLevel(logging.CRITICAL)
    server = ExampleDevice("127.0.0.1", 0)
    server.start(timeout=DEMO_WAIT)
    updates: "queue.Queue[Message]" = queue.Queue()

    class DemoClient(BlockingClient):
        def inform_sensor_status(self, msg: Message) -> None:
            """Collect sensor updates."""
            updates.put(msg)

    client = DemoClient(*server.bind_address)
    client.start(timeout=DEMO_WAIT)
    try:
        if not client.wait_protocol(DEMO_WAIT):
            print("could not connect to the example device", file=sys.stderr)
            return 1
        print("Example device listening on %s:%d (protocol %s)"
              % (server.bind_address[0], server.bind_address[1], client.protocol_flags))
        help_lines = _request(client, "help")
        _show("?help (first line of each description)",
              [line.split("\n")[0] for line in help_lines])
        _show("?sensor-list", _request(client, "sensor-list"))
        _show("?sensor-sampling counter event", _request(client, "sensor-sampling", "counter",
                                                          "event"))
        seen = []
        for _ in range(DEMO_UPDATES):
            try:
                seen.append(readable(updates.get(timeout=DEMO_WAIT)))
            except queue.Empty:
                break
        _show("#sensor-status updates", seen)
        _show("?add 1.5 2.25", _request(client, "add", "1.5", "2.25"))
        _show("?set-mode observe", _request(client, "set-mode", "observe"))
        _show("?set-mode dance", _request(client, "set-mode", "dance"))
        _show("?sensor-value mode", _request(client, "sensor-value", "mode"))
        return 0 if len(seen) == DEMO_UPDATES else 1
    finally:
        client.stop(DEMO_WAIT)
        client.join(DEMO_WAIT)
        server.stop(DEMO_WAIT)
        server.join(DEMO_WAIT)
        package_log.setLevel(level)


#: The well-known KATCP port, the example server's default.
DEFAULT_PORT = 7147
#: The example server's default interface: this computer only.
DEFAULT_HOST = "127.0.0.1"


def _parser(prog: Optional[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=HelpFormatter,
        description="Run an example KATCP device server until Ctrl-C (or SIGTERM).",
        epilog="Requests: the standard ones plus ?add x y and ?set-mode mode.\n"
               "Sensors: wave, counter, toggle, mode, note, last-update, peer.")
    parser.add_argument("-a", "--host", default=DEFAULT_HOST,
                        help="interface to listen on ('' or 0.0.0.0: every interface)")
    parser.add_argument("-p", "--port", type=int, default=DEFAULT_PORT,
                        help="port to listen on (0: any free port)")
    parser.add_argument("--demo", action="store_true",
                        help="start a server on a free port, talk to it, print, exit")
    add_logging_arguments(parser)
    return parser


def _serve(args: argparse.Namespace) -> int:
    server = ExampleDevice(args.host, args.port)
    try:
        with reported_here(OSError):
            server.start(timeout=DEMO_WAIT)
        print("Example KATCP device on %s:%d; Ctrl-C stops it." % server.bind_address[:2],
              flush=True)
        while server.running():
            server.join(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(DEMO_WAIT)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point (``python -m katcp_compat``, ``katcp-compat-server``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 after Ctrl-C or SIGTERM, 1 when the server cannot start (one line
        on stderr says why), 2 for usage errors.
    """
    parser = _parser(command_name("python -m katcp_compat"))
    args = parser.parse_args(argv)
    with configured_logging(args), interrupt_on_sigterm():
        if args.demo:
            return run(run_demo, parser.prog)
        return run(lambda: _serve(args), parser.prog, lambda: (args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())
