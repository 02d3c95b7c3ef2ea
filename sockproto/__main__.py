"""Command line: ``python -m sockproto serve|call|demo``.

serve
    Run a server with a small key-value service: a READ request returns
    the value stored under its Data-ID, a WRITE request stores its data
    under its Data-ID, an EXECUTE request echoes its data back.
call HOST:PORT SID DID JSON
    Send one request and print the response as JSON.
demo
    Run a server and a client in this process, show a few exchanges
    (with authentification) and exit.
"""

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .constants import (
    SID_EXECUTE_REQUEST, SID_READ_REQUEST, SID_WRITE_REQUEST, STATUS_OKAY,
    STATUS_SERVICE_OR_DATA_UNKNOWN,
)
from .protocol import pure_json_protocol
from .storage import data_storage
from .tcp import tcp_client_stp, tcp_server_stp

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


def _call(args: argparse.Namespace) -> int:
    host, port = args.address
    try:
        data = json.loads(args.json)
    except ValueError as exc:
        print("invalid JSON data %r: %s" % (args.json, exc), file=sys.stderr)
        return 2
    client = tcp_client_stp(host, port)
    try:
        prot = pure_json_protocol(client, secret=args.secret)
        if not client.wait_connected(args.timeout):
            print("no connection to %s:%d" % (host, port), file=sys.stderr)
            return 1
        if args.secret is not None and not prot.authentificate(args.timeout):
            print("authentification failed", file=sys.stderr)
            return 1
        if not prot.send(args.sid, args.did, data, timeout=args.timeout):
            print("sending failed", file=sys.stderr)
            return 1
        # Every service this client knows is answered on Service-ID + 1.
        response = prot.receive(args.sid + 1, args.did, timeout=args.timeout)
        if response is None:
            print("no response within %ss" % args.timeout, file=sys.stderr)
            return 1
        print(json.dumps(response))
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    exit_code : int
    """
    parser = argparse.ArgumentParser(prog="python -m sockproto",
                                     description="sockproto: example server, one-shot request, demo")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run an example server")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--secret", default=None)
    serve.add_argument("--channel-name", default=None)
    call = commands.add_parser("call", help="send one request and print the response")
    call.add_argument("address", type=_parse_address, metavar="HOST:PORT")
    call.add_argument("sid", type=int, metavar="SID")
    call.add_argument("did", type=int, metavar="DID")
    call.add_argument("json", metavar="JSON")
    call.add_argument("--secret", default=None)
    call.add_argument("--timeout", type=float, default=DEFAULT_CALL_TIMEOUT)
    commands.add_parser("demo", help="run a server and a client and show a few exchanges")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler = {"serve": _serve, "call": _call, "demo": _demo}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
