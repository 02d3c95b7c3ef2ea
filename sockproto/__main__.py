"""Command line: ``python -m sockproto serve|call|demo``.

serve
    Run a server with a small key-value service: a READ request returns
    the value stored under its Data-ID, a WRITE request stores its data
    under its Data-ID, an EXECUTE request echoes its data back. It listens
    on 127.0.0.1 unless ``--host`` says otherwise.
call HOST:PORT SID DID JSON
    Send one request and print the response as JSON. It exits with status
    1 and one line on stderr when the server cannot be reached, the
    authentification fails, no response comes within ``--timeout``, or
    the server refuses the request for lack of authentification.
demo
    Run a server and a client in this process, show a few exchanges
    (with authentification) and exit.

Every command takes ``-v``/``--verbose`` and ``--log-level``; failures
such as a port in use, an unknown host or a refused connection are
reported as one line, without a traceback.
"""

import argparse
import json
import signal
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from protocompat.cli import CommandError, add_logging_arguments, configure_logging, run

from .constants import (
    SID_EXECUTE_REQUEST, SID_READ_REQUEST, SID_WRITE_REQUEST, STATUS_AUTH_REQUIRED, STATUS_OKAY,
    STATUS_SERVICE_OR_DATA_UNKNOWN,
)
from .protocol import pure_json_protocol
from .storage import data_storage
from .tcp import tcp_client_stp, tcp_server_stp

PROG = "python -m sockproto"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 0
# Seconds `call` waits for the connection, the authentification and the response.
DEFAULT_CALL_TIMEOUT = 5.0
_DEMO_SECRET = "demo-secret"
_DEMO_TIMEOUT = 5.0


class _KeyValueService:
    """The services of the example server (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[int, Any] = {}

    def read(self, msg: data_storage) -> Tuple[int, Any]:
        with self._lock:
            if msg.get_data_id() not in self._values:
                return STATUS_SERVICE_OR_DATA_UNKNOWN, None
            return STATUS_OKAY, self._values[msg.get_data_id()]

    def write(self, msg: data_storage) -> Tuple[int, Any]:
        with self._lock:
            self._values[msg.get_data_id()] = msg.get_data()
        return STATUS_OKAY, True

    @staticmethod
    def execute(msg: data_storage) -> Tuple[int, Any]:
        return STATUS_OKAY, msg.get_data()

    def register(self, prot: pure_json_protocol) -> None:
        prot.register_callback(SID_READ_REQUEST, None, self.read)
        prot.register_callback(SID_WRITE_REQUEST, None, self.write)
        prot.register_callback(SID_EXECUTE_REQUEST, None, self.execute)


def _serve(args: argparse.Namespace) -> int:
    server = tcp_server_stp(args.host, args.port)
    prot = pure_json_protocol(server, secret=args.secret, channel_name=args.channel_name)
    _KeyValueService().register(prot)
    print("sockproto listening on %s:%d" % (server.host, server.port), flush=True)
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not done.wait(0.5):  # wakes up so signals are handled promptly
            pass
    finally:
        server.close()
    return 0


def _parse_address(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, not %r" % text)
    return host, int(port)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("invalid JSON data %r: %s" % (text, exc)) from None


def _connect(client: tcp_client_stp, timeout: float) -> None:
    """Wait until ``client`` is connected; raise the first failure, or CommandError on timeout."""
    client.wait_for(lambda: client.is_connected() or client.connect_error is not None, timeout)
    if client.is_connected():
        return
    error = client.connect_error
    if error is not None:
        raise error
    raise CommandError("no connection to %s:%d within %s s" % (client.host, client.port, timeout))


def _call(args: argparse.Namespace) -> int:
    host, port = args.address
    client = tcp_client_stp(host, port)
    try:
        prot = pure_json_protocol(client, secret=args.secret)
        _connect(client, args.timeout)
        if args.secret is not None and not prot.authentificate(args.timeout):
            raise CommandError("authentification at %s:%d failed: wrong secret, or the server has "
                               "none" % (host, port))
        if not prot.send(args.sid, args.did, args.json, timeout=args.timeout):
            raise CommandError("sending to %s:%d failed: the connection was lost" % (host, port))
        # Every service this client knows is answered on Service-ID + 1.
        response = prot.receive(args.sid + 1, args.did, timeout=args.timeout)
        if response is None:
            raise CommandError("no response from %s:%d within %s s" % (host, port, args.timeout))
        print(json.dumps(response), flush=True)
        if response.get_status() == STATUS_AUTH_REQUIRED:
            raise CommandError("request refused by %s:%d: it needs authentification (give the "
                               "server's secret with --secret)" % (host, port))
        return 0
    finally:
        client.close()


def _demo(args: argparse.Namespace) -> int:
    server = tcp_server_stp(DEFAULT_HOST, 0)
    client = tcp_client_stp(DEFAULT_HOST, server.port)
    try:
        server_prot = pure_json_protocol(server, secret=_DEMO_SECRET, channel_name="demo")
        _KeyValueService().register(server_prot)
        print("server listening on %s:%d" % (server.host, server.port))
        client_prot = pure_json_protocol(client, secret=_DEMO_SECRET)
        if not client.wait_connected(_DEMO_TIMEOUT):
            print("client did not connect", file=sys.stderr)
            return 1
        exchanges: List[Tuple[str, int, int, Any]] = [
            ("execute before authentification", SID_EXECUTE_REQUEST, 0, "hello"),
        ]
        for title, sid, did, data in exchanges:
            _demo_exchange(client_prot, title, sid, did, data)
        trusted = client_prot.authentificate(_DEMO_TIMEOUT)
        print("authentificate() -> %s (channel name %r)" % (trusted, client_prot.get_channel_name()))
        if not trusted:
            return 1
        for title, sid, did, data in [
            ("execute (echo)", SID_EXECUTE_REQUEST, 0, "hello"),
            ("write", SID_WRITE_REQUEST, 7, {"answer": 42}),
            ("read", SID_READ_REQUEST, 7, None),
            ("read of an unknown data id", SID_READ_REQUEST, 8, None),
        ]:
            if _demo_exchange(client_prot, title, sid, did, data) is None:
                return 1
        return 0
    finally:
        client.close()
        server.close()


def _demo_exchange(prot: pure_json_protocol, title: str, sid: int, did: int,
                   data: Any) -> Optional[data_storage]:
    prot.send(sid, did, data, timeout=_DEMO_TIMEOUT)
    response = prot.receive(sid + 1, did, timeout=_DEMO_TIMEOUT)
    print("%-32s sid=%d did=%d data=%s -> %s" % (title, sid, did, json.dumps(data),
                                                  json.dumps(response)))
    return response


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    common = argparse.ArgumentParser(add_help=False)
    add_logging_arguments(common)
    # `call` reports its failures itself, in one line: the library's warnings about them are not shown.
    quiet = argparse.ArgumentParser(add_help=False)
    add_logging_arguments(quiet, default_level="ERROR")
    parser = argparse.ArgumentParser(prog=PROG, formatter_class=formatter,
                                     description="sockproto: example server, one-shot request, demo")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", parents=[common], formatter_class=formatter,
                                help="run an example server (READ, WRITE, EXECUTE services)",
                                description="Run an example server: READ returns the value stored "
                                            "under the Data-ID, WRITE stores the data under it, "
                                            "EXECUTE echoes the data.")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help="address to listen on (0.0.0.0 for every interface)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help="port to listen on; 0 picks a free one (printed at start)")
    serve.add_argument("--secret", default=None,
                       help="shared secret: clients must authentificate with it")
    serve.add_argument("--channel-name", default=None, help="channel name shown in log lines")
    call = commands.add_parser("call", parents=[quiet], formatter_class=formatter,
                               help="send one request and print the response",
                               description="Send one request and print the response as JSON.")
    call.add_argument("address", type=_parse_address, metavar="HOST:PORT", help="the server")
    call.add_argument("sid", type=int, metavar="SID",
                      help="request Service-ID (10 read, 20 write, 30 execute)")
    call.add_argument("did", type=int, metavar="DID", help="Data-ID")
    call.add_argument("json", type=_parse_json, metavar="JSON", help="the data, as JSON")
    call.add_argument("--secret", default=None, help="authentificate with this shared secret first")
    call.add_argument("--timeout", type=float, default=DEFAULT_CALL_TIMEOUT,
                      help="seconds to wait for the connection, the authentification and the "
                           "response, each")
    commands.add_parser("demo", parents=[common], formatter_class=formatter,
                        help="run a server and a client and show a few exchanges",
                        description="Run a server and a client in this process and show a few "
                                    "exchanges, with authentification.")
    return parser


def _address(args: argparse.Namespace) -> Any:
    """What the command reaches or listens on, for an error line."""
    if args.command == "call":
        return args.address
    if args.command == "serve":
        return args.host, args.port
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    exit_code : int
        0 on success; 1 after a failure reported on stderr (port in use,
        unknown host, connection refused, authentification failed or
        required, no response); 2 for a usage error.
    """
    args = _parser().parse_args(argv)
    configure_logging(args)
    handlers: Dict[str, Callable[[argparse.Namespace], int]] = {
        "serve": _serve, "call": _call, "demo": _demo}
    handler = handlers[args.command]
    return run(lambda: handler(args), prog="%s %s" % (PROG, args.command),
               address=lambda: _address(args))


if __name__ == "__main__":
    sys.exit(main())
