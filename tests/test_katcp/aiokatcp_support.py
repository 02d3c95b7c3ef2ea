"""Running aiokatcp (asyncio) beside threaded code in a test: one loop on its own thread."""
import asyncio
import enum
import ipaddress
import threading
from typing import Tuple

import aiokatcp

WAIT = 5.0
#: Arguments that need KATCP escapes, and non-ASCII text.
ESCAPED_ARGS = ["a b", "line\nbreak", "", "back\\slash", "caf\u00e9 \u2603", "tab\tand\rcr",
                "\x1b\0"]
MEGABYTE = 1024 * 1024


class LoopThread:
    """An asyncio loop on a thread; :meth:`run` runs a coroutine there and waits."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="aiokatcp-loop",
                                        daemon=True)
        self._thread.start()

    def run(self, coro, timeout=WAIT):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args):
        """Run a plain function on the loop thread and return its result."""
        async def call():
            return fn(*args)
        return self.run(call())

    def close(self):
        async def drain():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class AioDevice(aiokatcp.DeviceServer):
    """An aiokatcp device with a sensor of every type and a few requests."""

    VERSION = "aio-dev-1.0"
    BUILD_STATE = "aio-build-1.0.0"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for sensor in (
            aiokatcp.Sensor(int, "an.int", "An integer", "count", default=3),
            aiokatcp.Sensor(float, "a.float", "A float", "m", default=1.5),
            aiokatcp.Sensor(bool, "a.bool", "A boolean", "", default=True),
            aiokatcp.Sensor(str, "a.string", "A string", "", default="hello world"),
            aiokatcp.Sensor(aiokatcp.Timestamp, "a.timestamp", "A time", "s",
                            default=aiokatcp.Timestamp(1700000000.25)),
            aiokatcp.Sensor(aiokatcp.Address, "an.address", "An address", "",
                            default=aiokatcp.Address(ipaddress.ip_address("127.0.0.1"), 7147)),
            aiokatcp.Sensor(Colour, "a.discrete", "A discrete", "", default=Colour.GREEN),
        ):
            sensor.set_value(sensor.value, aiokatcp.Sensor.Status.NOMINAL)
            self.sensors.add(sensor)

    async def request_echo(self, ctx, *args: bytes) -> Tuple[bytes, ...]:
        """Reply ok with the arguments."""
        return args

    async def request_two_informs(self, ctx) -> int:
        """Two informs, then ok 2."""
        ctx.inform("first")
        ctx.inform("second")
        return 2

    async def request_raise_fail(self, ctx) -> None:
        """Always fails."""
        raise aiokatcp.FailReply("it failed")

    async def request_double(self, ctx, value: int) -> int:
        """Double an integer."""
        return value * 2
