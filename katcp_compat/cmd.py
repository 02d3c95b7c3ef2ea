"""Command-line KATCP client.

``python -m katcp_compat.cmd HOST:PORT '?help' ['?sensor-value wave' ...]``
sends each request in turn and prints its informs and reply (unescaped,
one message per line). The exit status is 0 if every reply was ``ok``.

Without requests it reads them from stdin, one per line, or, on a terminal,
prompts for them with line editing, history and tab completion of request
and sensor names. ``--watch [PATTERN ...]`` subscribes to sensors and prints
their ``#sensor-status`` updates as they arrive, until Ctrl-C.

Installed as ``katcp-compat-cmd`` and, under katcp's example script name,
``katcp-exampleclient`` (which also takes the example's ``-a HOST -p PORT``).
"""

import argparse
import socket
import sys
from typing import List, Optional, Tuple

from protocompat.cli import (CommandError, HelpFormatter, add_logging_arguments, command_name,
                             configured_logging, connect_error, interrupt_on_sigterm, run)

from ._cli_console import DEFAULT_HISTORY, ConsoleClient, Session, parse_request
from ._cli_format import readable

__all__ = ["main", "parse_address", "readable", "CONNECT_TIMEOUT", "DEFAULT_PORT"]

#: Seconds to wait for the connection.
CONNECT_TIMEOUT = 5.0
#: The well-known KATCP port.
DEFAULT_PORT = 7147
#: The device when no address is given.
DEFAULT_HOST = "127.0.0.1"


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


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=HelpFormatter,
        description="Send KATCP requests to a device and print the answers.",
        epilog="Requests are in wire form: '?sensor-value wave', '?set-mode observe'.\n"
               "Without requests: read them from stdin, one per line, or prompt for them\n"
               "on a terminal (line editing, history, Tab completes request and sensor\n"
               "names; 'watch [PATTERN ...]' watches sensors; 'quit' or Ctrl-D leaves).\n"
               "A sensor PATTERN is a name, a glob (wave*) or a /regex/.")
    parser.add_argument("address", nargs="?", metavar="HOST:PORT",
                        help="the device (default: --host and --port)")
    parser.add_argument("words", nargs="*", metavar="REQUEST",
                        help="requests, e.g. '?help'; with --watch, sensor patterns")
    parser.add_argument("-a", "--host", default=DEFAULT_HOST,
                        help="the device's host, when HOST:PORT is not given")
    parser.add_argument("-p", "--port", type=int, default=DEFAULT_PORT,
                        help="the device's port, when HOST:PORT is not given")
    parser.add_argument("-t", "--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="seconds per request")
    parser.add_argument("--raw", action="store_true", help="print messages escaped, as sent")
    parser.add_argument("-i", "--interactive", action="store_true",
                        help="prompt for requests (after those given), even without a terminal")
    parser.add_argument("-w", "--watch", action="store_true",
                        help="after the requests, watch the sensors matching the patterns "
                             "given (all if none) until Ctrl-C")
    parser.add_argument("-s", "--strategy", default="event",
                        help="sampling strategy used to watch, with its parameters "
                             "('period 0.5', 'differential 0.1', ...)")
    parser.add_argument("-n", "--count", type=int, default=0,
                        help="with --watch, stop after this many updates (0: until Ctrl-C)")
    parser.add_argument("--history", default=DEFAULT_HISTORY, metavar="FILE",
                        help="history file of the prompt, kept if its folder is writable "
                             "('' for none)")
    add_logging_arguments(parser)
    return parser


def _split(parser: argparse.ArgumentParser,
           args: argparse.Namespace) -> Tuple[Tuple[str, int], List[str], List[str]]:
    """(device address, requests, sensor patterns) from the positional words."""
    words = list(args.words)
    address = (args.host, args.port)
    if args.address is not None:
        if args.address.startswith("?") or (args.watch and ":" not in args.address):
            words.insert(0, args.address)  # -a/-p name the device; this is a request
        else:
            try:
                address = parse_address(args.address)
            except ValueError as exc:
                parser.error(str(exc))
    requests = [word for word in words if word.startswith("?")]
    patterns = [word for word in words if not word.startswith("?")]
    if patterns and not args.watch:
        parser.error("not a request (requests start with '?'): %r" % patterns[0])
    try:
        for request in requests:
            parse_request(request)
    except CommandError as exc:
        parser.error(str(exc))
    return address, requests, patterns


def _connect(address: Tuple[str, int], timeout: float) -> ConsoleClient:
    """A started client connected to ``address``.

    Raises
    ------
    OSError
        Why no connection could be made (unknown host, refused, timed out).
    """
    socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)  # unknown host: at once
    client = ConsoleClient(address[0], address[1], timeout)
    client.start(timeout=CONNECT_TIMEOUT)
    if client.wait_connected(CONNECT_TIMEOUT):
        client.wait_protocol(CONNECT_TIMEOUT)
        return client
    client.stop(CONNECT_TIMEOUT)
    client.join(CONNECT_TIMEOUT)
    error = connect_error(address, CONNECT_TIMEOUT)
    if error is not None:
        raise error
    raise CommandError("could not connect to %s:%s" % address)


def _session(args: argparse.Namespace, address: Tuple[str, int], requests: List[str],
             patterns: List[str]) -> int:
    client = _connect(address, args.timeout)
    try:
        session = Session(client, raw=args.raw, strategy=args.strategy.split())
        status = session.run_lines(requests)
        if args.watch:
            session.watch(patterns, args.count)
        elif args.interactive or (not requests and sys.stdin.isatty()):
            status = max(status, session.interactive(args.history or None))
        elif not requests:
            status = session.run_lines(sys.stdin)
        return status
    finally:
        client.stop(CONNECT_TIMEOUT)
        client.join(CONNECT_TIMEOUT)


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point (``python -m katcp_compat.cmd``, ``katcp-compat-cmd``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 if every reply was ok, 1 otherwise or when the device cannot be
        reached (one line on stderr says why), 2 for usage errors.
    """
    parser = _parser(command_name("python -m katcp_compat.cmd"))
    args = parser.parse_intermixed_args(argv)
    address, requests, patterns = _split(parser, args)
    with configured_logging(args), interrupt_on_sigterm():
        return run(lambda: _session(args, address, requests, patterns), parser.prog,
                   lambda: address)


if __name__ == "__main__":
    sys.exit(main())
