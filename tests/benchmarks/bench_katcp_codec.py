"""KATCP codec and sensor speed, katcp_compat beside katcp 0.9.3 in one run.

Usage: ``python tests/benchmarks/bench_katcp_codec.py [--number N]``. Prints the time per
call of each and the ratio (katcp time / ours: above 1 means faster than the original).
"""
import argparse
import timeit

import katcp
import katcp.kattypes as their_kattypes

from katcp_compat import core
from katcp_compat import kattypes as our_kattypes
from katcp_compat.sensor import Sensor

STATUS_LINE = b"#sensor-status 1234567890.500000 1 some.sensor.name nominal 12.5"
#: 100 status lines as they might arrive in one read, the last one cut short.
STATUS_CHUNK = (STATUS_LINE + b"\n") * 99 + STATUS_LINE[:20]
ESCAPED_REQUEST = b"?request-name[12] arg1 arg\\_two 3 4.5 \\@"
REPEATS = 3


def compare(label, ours, theirs, number):
    our_time = min(timeit.repeat(ours, number=number, repeat=REPEATS)) / number
    their_time = min(timeit.repeat(theirs, number=number, repeat=REPEATS)) / number
    print("%-28s ours %7.2f us   katcp %7.2f us   ratio %5.2f"
          % (label, our_time * 1e6, their_time * 1e6, their_time / our_time))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per measurement")
    number = parser.parse_args().number

    ours_parser, their_parser = core.MessageParser(), katcp.MessageParser()
    compare("parse #sensor-status", lambda: ours_parser.parse(STATUS_LINE),
            lambda: their_parser.parse(STATUS_LINE), number)
    compare("parse request, escapes", lambda: ours_parser.parse(ESCAPED_REQUEST),
            lambda: their_parser.parse(ESCAPED_REQUEST), number)
    decoder = core.LineDecoder(parser=ours_parser)

    def theirs_split_and_parse():
        # katcp leaves framing to tornado's read_until_regex; this is the same work.
        lines = STATUS_CHUNK.replace(b"\r", b"\n").split(b"\n")
        return [their_parser.parse(line) for line in lines[:-1] if line]

    compare("100 lines: decode + parse", lambda: decoder.feed(STATUS_CHUNK),
            theirs_split_and_parse, number // 100)
    args = ("sensor-status", b"1234567890.500000", "1", "some.sensor", "nominal", 12.5)
    ours_msg, their_msg = core.Message.inform(*args), katcp.Message.inform(*args)
    compare("bytes(message)", lambda: bytes(ours_msg), lambda: bytes(their_msg), number)
    compare("Message.inform(...)", lambda: core.Message.inform(*args),
            lambda: katcp.Message.inform(*args), number)
    ours_sensor, their_sensor = Sensor.float("f"), katcp.Sensor.float("f")
    compare("Sensor.set_value", lambda: ours_sensor.set_value(1.5),
            lambda: their_sensor.set_value(1.5), number)
    compare("Sensor.read_formatted", ours_sensor.read_formatted, their_sensor.read_formatted,
            number)
    ours_int, their_int = our_kattypes.Int(), their_kattypes.Int()
    compare("kattypes.Int.unpack", lambda: ours_int.unpack(b"42"),
            lambda: their_int.unpack(b"42"), number)


if __name__ == "__main__":
    main()
