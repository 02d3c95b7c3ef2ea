"""The foundation's ceiling: round trips through a Stream server against the physical limit.

Both servers run in their own process and answer each newline-ended request
with one line; the client sends one request and blocks on ``recv`` for the
answer. The Stream server splits lines with a decoder and answers from
``on_message`` on its loop thread, as the protocol packages do.

Run: ``python tests/benchmarks/bench_netutil.py [--quick]``
"""
import argparse
import socket
import threading
import time

from benchlib import (LOOPBACK, ServerProcess, blocking_round_trips, median_rate, physical_limit,
                      print_table, wait_for_stop)

from protocompat.netutil import Listener, SelectorLoop, Stream

REQUEST = b"?watchdog\n"
REPLY = b"!watchdog ok\n"


class _Lines:
    def __init__(self):
        self.rest = b""

    def feed(self, data):
        *lines, self.rest = (self.rest + data).split(b"\n")
        return lines


def serve_stream(pipe):
    loop = SelectorLoop()
    streams = []

    def on_accept(sock, address):
        stream = Stream(loop, sock, _Lines(), lambda line: stream.write(REPLY))
        streams.append(stream)
        stream.start()

    listener = Listener(loop, LOOPBACK, 0, on_accept)
    listener.start()
    loop.start()
    pipe.send(listener.address[1])
    wait_for_stop(pipe)
    done = threading.Event()

    def close_all():
        listener.close()
        for stream in streams:
            stream.close()
        done.set()

    loop.call_soon(close_all)
    done.wait(5)
    loop.stop(5)


def stream_client_round_trips(port, seconds, drive=False):
    """Round trips/s of a caller thread that writes through a Stream and waits for the answer:
    handed over by the loop thread (the shape of a threaded blocking client), or, with
    ``drive``, read by the caller itself while it runs the loop in ``wait_for``."""
    loop = SelectorLoop(name="bench-client")
    replies = []
    cond = threading.Condition()

    def on_message(line):
        with cond:
            replies.append(line)
            cond.notify()

    sock = socket.create_connection((LOOPBACK, port))
    stream = Stream(loop, sock, _Lines(), on_message)
    stream.start()
    loop.start()
    try:
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            stream.write(REQUEST)
            if drive:
                loop.wait_for(lambda: replies, 5)
                replies.pop()
                count += 1
                if not count % 64 and time.perf_counter() >= deadline:
                    break
                continue
            with cond:
                while not replies:
                    cond.wait(5)
                replies.pop()
            count += 1
            if not count % 64 and time.perf_counter() >= deadline:
                break
        return count / (time.perf_counter() - start)
    finally:
        stream.close()
        loop.stop(5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    seconds, runs = (0.5, 1) if args.quick else (2.0, 3)
    limit = physical_limit(REQUEST, REPLY, seconds, runs)
    with ServerProcess(serve_stream) as port:
        stream = median_rate(lambda: blocking_round_trips(port, REQUEST, len(REPLY), seconds), runs)
        hop = median_rate(lambda: stream_client_round_trips(port, seconds), runs)
        drive = median_rate(lambda: stream_client_round_trips(port, seconds, drive=True), runs)
    print_table("round trips/s, 1 client, server in another process",
                [("physical limit (bare selectors)", limit), ("netutil.Stream server", stream),
                 ("Stream server, Stream client + waiting caller", hop),
                 ("Stream server, Stream client + caller in wait_for", drive)],
                "/s", baseline="physical limit (bare selectors)")


if __name__ == "__main__":
    main()
