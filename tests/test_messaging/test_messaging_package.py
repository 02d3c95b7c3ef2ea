"""The package and its drop-in: one module under every name, dropped into a clever-show tree."""
import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from messaging_helpers import WAIT

import protocompat.messaging
from lib import messaging

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
PACKAGE_DIR = os.path.dirname(protocompat.messaging.__file__)
DROP_IN = os.path.join(ROOT, "lib", "messaging.py")


def package_modules():
    return sorted(name[:-3] for name in os.listdir(PACKAGE_DIR) if name.endswith(".py"))


def parsed(module):
    with open(os.path.join(PACKAGE_DIR, module + ".py"), encoding="utf-8") as f:
        return ast.parse(f.read())


def test_from_lib_import_messaging_is_the_package_itself():
    assert messaging is protocompat.messaging
    assert messaging.ConnectionManager.messages_callbacks is \
        protocompat.messaging.ConnectionManager.messages_callbacks
    assert messaging.NotifierSock() is protocompat.messaging.NotifierSock()


def test_lib_holds_only_the_drop_in_file():
    names = sorted(name for name in os.listdir(os.path.join(ROOT, "lib")) if name != "__pycache__")
    assert names == ["__init__.py", "messaging.py"]


def test_public_names_are_the_package_api():
    assert set(messaging.__all__) >= {"MessageManager", "ConnectionManager", "NotifierSock",
                                      "Singleton", "Namespace", "PendingRequest",
                                      "message_callback", "request_callback", "set_keepalive",
                                      "get_ip_address", "MAX_CONTENT_LENGTH", "FileAccess"}
    assert all(hasattr(messaging, name) for name in messaging.__all__)
    assert not hasattr(messaging, "_Node")  # the tests' loop lives with the tests


def test_modules_import_each_other_only_relatively_and_at_the_top():
    for module in package_modules():
        tree = parsed(module)
        top_level = set()
        for node in tree.body:  # imports directly in the module, or in a top-level try/if
            for inner in ast.walk(node) if isinstance(node, (ast.Try, ast.If)) else [node]:
                top_level.add(id(inner))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            assert id(node) in top_level, "%s: import inside a function, line %d" % (module, node.lineno)
            for name in names:
                assert name.split(".")[0] not in ("protocompat", "lib", "messaging"), \
                    "%s imports %s absolutely" % (module, name)


def test_package_has_no_import_cycles():
    graph = {}
    for module in package_modules():
        graph[module] = set()
        for node in ast.walk(parsed(module)):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    graph[module].add(node.module)
                else:
                    graph[module].update(alias.name for alias in node.names)
    graph = {m: {d if d in graph else "__init__" for d in deps} - {m} for m, deps in graph.items()}
    graph["__init__"].discard("__main__")
    done, path = set(), []

    def visit(module):
        assert module not in path, "import cycle: %s" % " -> ".join(path + [module])
        if module in done:
            return
        path.append(module)
        for dependency in sorted(graph[module]):
            visit(dependency)
        path.pop()
        done.add(module)
    for module in graph:
        visit(module)
    assert "__init__" not in graph["_codec"] | graph["_json"]  # the codec is a leaf


def test_mypy_sees_the_package_and_the_drop_in(tmp_path):
    api = pytest.importorskip("mypy.api", reason="mypy is not installed")
    user = tmp_path / "user_code.py"
    user.write_text("from lib import messaging\n"
                    "connection = messaging.ConnectionManager('pi')\n"
                    "connection.send_message('takeoff', kwargs={'z': 1.5})\n"
                    "frame = messaging.MessageManager.create_action_message('a')\n"
                    "messaging.NotifierSock().init(None)\n")
    env_path = os.pathsep.join([ROOT, str(tmp_path)])
    old = os.environ.get("MYPYPATH")
    os.environ["MYPYPATH"] = env_path
    try:
        out, err, status = api.run(["--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                                    PACKAGE_DIR, DROP_IN, str(user)])
    finally:
        if old is None:
            os.environ.pop("MYPYPATH")
        else:
            os.environ["MYPYPATH"] = old
    assert status == 0, out + err


def test_distribution_installs_protocompat_messaging_and_no_lib(tmp_path):
    """What setuptools builds into the wheel: the packages, and no top-level ``lib``."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), str(source / name))
    for package in ("protocompat", "lib", "katcp_compat", "samp_compat", "sockproto"):
        shutil.copytree(os.path.join(ROOT, package), str(source / package),
                        ignore=shutil.ignore_patterns("__pycache__"))
    build = tmp_path / "build"
    result = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)],
                            cwd=str(source), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(str(build))) == ["katcp_compat", "protocompat", "samp_compat", "sockproto"]
    assert sorted(os.listdir(str(build / "protocompat" / "messaging"))) == \
        sorted(name for name in os.listdir(PACKAGE_DIR) if name.endswith(".py"))


# -- the documented drop-in, in a clever-show-shaped checkout ------------------------
# clever-show's own files, reduced to what touches messaging: scripts put lib/ first on
# sys.path and ``import messaging``; lib/lib.py then shadows the lib package itself.
CLEVER_SHOW_FILES = {
    "lib/__init__.py": "",
    "lib/lib.py": """
        def b_partial(func, *args, **kwargs):
            return lambda *a: func(*args, **kwargs)
    """,
    "lib/config.py": """
        class ConfigManager(object):
            def __init__(self):
                self.config = {"id": "copter01", "port": 0}
    """,
    "server/modules/__init__.py": "",
    "server/modules/server_core.py": """
        import os, selectors, socket, sys
        current_dir = os.path.dirname(os.path.realpath(__file__))
        sys.path.insert(0, os.path.realpath(os.path.join(current_dir, os.pardir, os.pardir, 'lib')))
        import messaging
        from config import ConfigManager

        class Client(messaging.ConnectionManager):
            clients = {}

            def __init__(self, ip):
                super(Client, self).__init__()
                self.copter_id = None
                self.clients[ip] = self

        class Server(messaging.Singleton):
            def __init__(self):
                self.config = ConfigManager()
                self.sel = selectors.DefaultSelector()
                self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                messaging.set_keepalive(self.listener)
                self.listener.bind(("127.0.0.1", self.config.config["port"]))
                self.listener.listen()
                self.listener.setblocking(False)
                self.sel.register(self.listener, selectors.EVENT_READ, data=None)
                messaging.NotifierSock().init(self.sel)

            def serve(self, done):
                while not done():
                    for key, mask in self.sel.select(timeout=1):
                        if key.data is None:
                            conn, addr = self.listener.accept()
                            conn.setblocking(False)
                            client = Client(addr[0])
                            self.sel.register(conn, selectors.EVENT_READ, data=client)
                            client.connect(self.sel, conn, addr)
                            client.get_response("id", self.got_id)
                        elif isinstance(key.data, messaging.NotifierSock):
                            key.data.process_events(mask)
                        else:
                            try:
                                key.data.process_events(mask)
                            except Exception:
                                key.data._close()
                for client in Client.clients.values():
                    client._close()
                messaging.NotifierSock().close()
                self.listener.close()
                self.sel.close()

            def got_id(self, client, value):
                client.copter_id = value
                client.send_message("takeoff", kwargs={"z": 1.5})
    """,
    "server/server.py": """
        import json, os, sys
        current_dir = os.path.dirname(os.path.realpath(__file__))
        lib_dir = os.path.realpath(os.path.join(current_dir, os.pardir, 'lib'))
        sys.path.insert(0, lib_dir)
        import messaging
        from lib import b_partial
        from modules.server_core import Server

        telemetry = []

        @messaging.message_callback("telemetry")
        def got_telemetry(client, value):
            telemetry.append(value)

        server = Server()
        print(json.dumps({"port": server.listener.getsockname()[1]}), flush=True)
        server.serve(b_partial(lambda: bool(telemetry)))
        print(json.dumps({"telemetry": telemetry[0],
                          "one_module": sys.modules["messaging"] is sys.modules["protocompat.messaging"]
                          and sys.modules["modules.server_core"].messaging is messaging}), flush=True)
    """,
    "drone/modules/__init__.py": "",
    "drone/modules/client_core.py": """
        import os, selectors, socket, sys
        current_dir = os.path.dirname(os.path.realpath(__file__))
        lib_dir = os.path.realpath(os.path.join(current_dir, '../../lib'))
        sys.path.insert(0, lib_dir)
        import messaging
        from config import ConfigManager

        class Client(object):
            def __init__(self):
                self.config = ConfigManager()
                self.selector = selectors.DefaultSelector()
                self.server_connection = messaging.ConnectionManager()

            def start(self, port):
                messaging.NotifierSock().init(self.selector)
                sock = socket.create_connection(("127.0.0.1", port), 2)
                messaging.set_keepalive(sock)
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, data=self.server_connection)
                self.server_connection.connect(self.selector, sock, sock.getpeername())
                notifier_fd = messaging.NotifierSock().get_sock().fileno()
                while set(self.selector.get_map()) != {notifier_fd}:
                    for key, mask in self.selector.select(timeout=1):
                        try:
                            key.data.process_events(mask)
                        except Exception:
                            self.server_connection._close()
                messaging.NotifierSock().close()
                self.selector.close()

        @messaging.request_callback("id")
        def _response_id(*args, **kwargs):
            return "copter01"

        @messaging.message_callback("takeoff")
        def _takeoff(connection, z):
            connection.send_message("telemetry", kwargs={"value": {"z": z, "armed": True}})
    """,
    "drone/client.py": """
        import json, os, sys
        current_dir = os.path.dirname(os.path.realpath(__file__))
        sys.path.insert(0, os.path.realpath(os.path.join(current_dir, '../lib')))
        import messaging
        from modules.client_core import Client

        Client().start(int(sys.argv[1]))
        print(json.dumps({"one_module": sys.modules["modules.client_core"].messaging is messaging
                          is sys.modules["protocompat.messaging"]}), flush=True)
    """,
    "tools/check_imports.py": """
        import json, os, sys
        root = os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(__file__)), os.pardir))
        sys.path.insert(0, root)
        from lib import messaging as packaged
        sys.path.insert(0, os.path.join(root, "lib"))
        import messaging
        import protocompat.messaging
        print(json.dumps({"same": packaged is messaging is protocompat.messaging,
                          "file": protocompat.messaging.__file__}), flush=True)
    """,
}


@pytest.fixture
def clever_show(tmp_path):
    """A clever-show-shaped checkout with our lib/messaging.py dropped in, and protocompat on the path.

    protocompat is reached as an installed package would be: through a directory holding
    only the ``protocompat`` package of this checkout, never through the checkout's own
    root (whose ``lib`` must not be found).
    """
    tree = tmp_path / "clever-show"
    for name, text in CLEVER_SHOW_FILES.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    (tree / "lib" / "messaging.py").write_text("raise ImportError('their original module')\n")
    shutil.copy(DROP_IN, str(tree / "lib" / "messaging.py"))  # step 1: replace their file
    site = tmp_path / "site-packages"  # step 2: protocompat installed
    site.mkdir()
    os.symlink(os.path.join(ROOT, "protocompat"), str(site / "protocompat"))
    env = dict(os.environ, PYTHONPATH=str(site))
    return tree, env


def run_script(tree, env, script, *args):
    return subprocess.Popen([sys.executable, os.path.basename(script)] + list(args),
                            cwd=str(tree / os.path.dirname(script)),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_clever_show_server_and_drone_talk_through_the_drop_in(clever_show):
    tree, env = clever_show
    server = run_script(tree, env, "server/server.py")
    try:
        port = json.loads(server.stdout.readline() or "null")
        assert port, server.stderr.read()
        drone = run_script(tree, env, "drone/client.py", str(port["port"]))
        server_out, server_err = server.communicate(timeout=WAIT)
        drone_out, drone_err = drone.communicate(timeout=WAIT)
    finally:
        for proc in (server, locals().get("drone")):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert server.returncode == 0, server_err
    assert drone.returncode == 0, drone_err
    assert json.loads(server_out) == {"telemetry": {"z": 1.5, "armed": True}, "one_module": True}
    assert json.loads(drone_out) == {"one_module": True}


def test_clever_show_imports_both_ways_give_one_module(clever_show):
    tree, env = clever_show
    out, err = run_script(tree, env, "tools/check_imports.py").communicate(timeout=WAIT)
    result = json.loads(out or "null")
    assert result, err
    assert result["same"]
    assert os.path.realpath(result["file"]) == os.path.realpath(protocompat.messaging.__file__)


def test_documented_drop_in_steps_are_the_tested_ones():
    with open(os.path.join(ROOT, "docs", "messaging.rst"), encoding="utf-8") as f:
        page = f.read()
    steps = page.split("Using it in a clever-show checkout", 1)[1].split("\nLayout\n", 1)[0]
    assert "1. Replace clever-show's ``lib/messaging.py`` with protocompat's ``lib/messaging.py``" in steps
    assert "2. Install protocompat where clever-show runs: ``pip install protocompat``." in steps
    assert ".. literalinclude:: ../lib/messaging.py" in steps  # the very file the fixture copies
    assert os.path.samefile(os.path.join(ROOT, "docs", "..", "lib", "messaging.py"), DROP_IN)
