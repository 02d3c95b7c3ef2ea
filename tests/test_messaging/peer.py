"""A messaging peer run as a separate process by the two-process tests.

It drives its selector the way clever-show's server and drone do and imports
the module as top-level ``messaging`` (``lib/`` on ``sys.path``).

Usage::

    python peer.py server            # prints {"port": N}, serves until stdin closes
    python peer.py client PORT       # connects, serves until stdin closes or the server goes
    python peer.py halfframe PORT    # sends half a frame, then disconnects
    python peer.py importcheck       # prints {"ok": true} if both import styles work
"""
import hashlib
import json
import os
import selectors
import socket
import sys
import threading

LIB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "lib")
sys.path.insert(0, os.path.abspath(LIB_DIR))

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


SIBLINGS = ("_messaging_codec", "_messaging_files", "_messaging_notifier", "_messaging_transport",
            "_messaging_example")


def import_check():
    import importlib
    top = importlib.import_module("messaging")
    top_siblings = {name: importlib.import_module(name) for name in SIBLINGS}
    sys.path.insert(0, os.path.abspath(os.path.join(LIB_DIR, os.pardir)))
    from lib import messaging as packaged
    packaged_siblings = {name: importlib.import_module("lib." + name) for name in SIBLINGS}
    ok = all(hasattr(m, name) for m in (top, packaged)
             for name in ("ConnectionManager", "MessageManager", "NotifierSock", "Singleton",
                          "set_keepalive", "get_ip_address", "_Node", "_main"))
    # Each style uses its own siblings, never a mix of the two.
    for module, siblings in ((top, top_siblings), (packaged, packaged_siblings)):
        ok = ok and module.MessageManager is siblings["_messaging_codec"].MessageManager
        ok = ok and module.NotifierSock is siblings["_messaging_notifier"].NotifierSock
        ok = ok and issubclass(module.ConnectionManager, siblings["_messaging_transport"]._Transport)
        ok = ok and siblings["_messaging_transport"].NotifierSock is module.NotifierSock
        ok = ok and module._Node is siblings["_messaging_example"]._Node
        ok = ok and siblings["_messaging_example"].ConnectionManager is module.ConnectionManager
    modules = [m.__name__ for m in [top] + list(top_siblings.values())
               + [packaged] + list(packaged_siblings.values())]
    print(json.dumps({"ok": ok, "modules": modules}), flush=True)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "halfframe":
        half_frame(int(sys.argv[2]))
    elif command == "importcheck":
        import_check()
    else:
        run(command, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
