"""A messaging peer run as a separate process by the two-process tests.

It drives its selector the way clever-show's server and drone do and imports
the module as top-level ``messaging`` (``lib/`` on ``sys.path``).

Usage::

    python peer.py server            # prints {"port": N}, serves until stdin closes
    python peer.py client PORT       # connects, serves until stdin closes or the server goes
    python peer.py halfframe PORT    # sends half a frame, then disconnects
    python peer.py importcheck       # prints which names give the one messaging module
"""
import hashlib
import json
import os
import selectors
import socket
import sys
import threading

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))
LIB_DIR = os.path.join(ROOT, "lib")
sys.path.insert(0, ROOT)  # this checkout's protocompat
sys.path.insert(0, LIB_DIR)  # lib/ first, as clever-show puts it

import messaging  # noqa: E402  (top-level import style, as clever-show does)

POLL = 0.5
records = []


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@messaging.request_callback("add")
def add(connection, a, b):
    return a + b


@messaging.request_callback("records")
def get_records(connection):
    return records


@messaging.request_callback("sha256")
def file_sha256(connection, path):
    return sha256(path)


@messaging.request_callback("fail")
def fail(connection):
    raise RuntimeError("this request always fails")


@messaging.message_callback("record")
def record(connection, i):
    records.append(i)


@messaging.message_callback("ping")
def ping(connection, n):
    connection.send_message("pong", [n])


@messaging.message_callback("push_file")
def push_file(connection, src, dest):
    connection.send_file(src, dest)


@messaging.message_callback("pull_file")
def pull_file(connection, remote, local):
    def done(c, value, filepath):
        c.send_message("pulled", [filepath, sha256(filepath)])
    connection.get_file(remote, local, callback=done)


@messaging.message_callback("ask")
def ask(connection, name, args):
    connection.get_response(name, lambda c, value: c.send_message("answer", [name, value]),
                            request_args=args)


def attach(selector, sock, addr):
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    messaging.set_keepalive(sock)
    connection = messaging.ConnectionManager()
    selector.register(sock, selectors.EVENT_READ, data=connection)
    connection.connect(selector, sock, addr)
    return connection


def run(role, port):
    selector = selectors.DefaultSelector()
    messaging.NotifierSock().init(selector)
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()
        messaging.NotifierSock().notify()
    threading.Thread(target=watch_stdin, daemon=True).start()

    connections = []
    listener = None
    if role == "server":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, data=None)
        print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
    else:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        connections.append(attach(selector, sock, sock.getpeername()))
        print(json.dumps({"connected": True}), flush=True)

    while not stop.is_set():
        for key, mask in selector.select(timeout=POLL):
            if key.data is None:
                sock, addr = listener.accept()
                connections.append(attach(selector, sock, addr))
            elif isinstance(key.data, messaging.NotifierSock):
                key.data.process_events(mask)
            else:
                try:
                    key.data.process_events(mask)
                except Exception:
                    key.data._close()
                    if role == "client":
                        stop.set()
    for connection in connections:
        connection._close()
    messaging.NotifierSock().close()
    if listener is not None:
        listener.close()
    selector.close()


def half_frame(port):
    frame = messaging.MessageManager.create_action_message("record", [1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(frame[:len(frame) // 2])
    print(json.dumps({"sent": len(frame) // 2}), flush=True)


def import_check():
    """Print the names under which the one messaging module is known, and its file."""
    import importlib
    top = importlib.import_module("messaging")
    from lib import messaging as packaged
    implementation = importlib.import_module("protocompat.messaging")
    names = sorted(name for name, module in sys.modules.items() if module is implementation)
    print(json.dumps({"same": top is packaged is implementation, "names": names,
                      "registry_shared": top.ConnectionManager.messages_callbacks
                      is packaged.ConnectionManager.messages_callbacks,
                      "file": implementation.__file__}), flush=True)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "halfframe":
        half_frame(int(sys.argv[2]))
    elif command == "importcheck":
        import_check()
    else:
        run(command, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
