"""Small command-line KATCP client.

``python -m katcp_compat.cmd HOST:PORT '?help' ['?sensor-value wave' ...]``
sends each request in turn and prints its informs and reply (unescaped,
one message per line). The exit status is 0 if every reply was ``ok``.
"""

import argparse
import sys
from typing import List, Optional, Tuple

from ._text import to_str
from .client import BlockingClient
from .core import Message, MessageParser

#: Seconds to wait for the connection.
CONNECT_TIMEOUT = 5.0


def parse_address(text: str) -> Tuple[str, int]:
    """Split ``host:port`` (the host may be omitted: ``:7147``).

    Parameters
    ----------
    text : str
        The address.

    Returns
    -------
    host : str
        The host, ``127.0.0.1`` when omitted.
    port : int

    Raises
    ------
    ValueError
        If the port is missing or not a number.
    """
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError("address must be HOST:PORT, not %r" % text)
    return host or "127.0.0.1", int(port)


def readable(msg: Message) -> str:
    """Format a message for people: arguments unescaped, separated by spaces.

    Parameters
    ----------
    msg : Message
        The message.

    Returns
    -------
    text : str
    """
    args = " ".join(to_str(arg, "replace") for arg in msg.arguments)
    mid = "[%s]" % msg.mid.decode() if msg.mid else ""
    return ("%s%s%s %s" % ("?!#"[msg.mtype], msg.name, mid, args)).rstrip()


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 if every reply was ok, 1 otherwise, 2 for usage errors.
    """
    parser = argparse.ArgumentParser(prog="python -m katcp_compat.cmd",
                                     description="Send KATCP requests and print the answers.")
    parser.add_argument("address", help="device address HOST:PORT")
    parser.add_argument("requests", nargs="+", help="requests in wire form, e.g. '?help'")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--raw", action="store_true", help="print messages escaped, as sent")
    args = parser.parse_args(argv)
    try:
        host, port = parse_address(args.address)
        msgs = [MessageParser().parse(text.encode("utf-8")) for text in args.requests]
    except ValueError as exc:
        parser.error(str(exc))
    for msg in msgs:
        if msg.mtype != Message.REQUEST:
            parser.error("not a request: %s" % msg)
    client = BlockingClient(host, port, timeout=args.timeout, auto_reconnect=False)
    client.start(timeout=CONNECT_TIMEOUT)
    status = 0
    try:
        if not client.wait_connected(CONNECT_TIMEOUT):
            print("could not connect to %s:%d" % (host, port), file=sys.stderr)
            return 1
        client.wait_protocol(CONNECT_TIMEOUT)
        show = str if args.raw else readable
        for msg in msgs:
            reply, informs = client.blocking_request(msg, use_mid=False)
            for inform in informs:
                print(show(inform))
            print(show(reply))
            if not reply.reply_ok():
                status = 1
    finally:
        client.stop(CONNECT_TIMEOUT)
        client.join(CONNECT_TIMEOUT)
    return status


if __name__ == "__main__":
    sys.exit(main())
