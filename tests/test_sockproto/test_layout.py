"""sockproto's modules: no import cycles, no imports inside functions, no reading of others' privates."""
import ast
import pathlib

import pytest

import sockproto

PACKAGE_DIR = pathlib.Path(sockproto.__file__).parent
MODULES = {"sockproto" if path.stem == "__init__" else "sockproto." + path.stem: path
           for path in sorted(PACKAGE_DIR.glob("*.py"))}


def _tree(module):
    return ast.parse(MODULES[module].read_text(encoding="utf-8"), str(MODULES[module]))


def _top_level_statements(body):
    """Statements run at import time (into if/try blocks, not into functions or classes)."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                 ast.ClassDef)):
                yield from _top_level_statements(inner)


def _imported_modules(module):
    """The sockproto modules ``module`` imports at import time."""
    package = module if module == "sockproto" else module.rpartition(".")[0]
    found = set()
    for node in _top_level_statements(_tree(module).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else node.module
            if node.level and node.module:
                base = package + "." + node.module
            found.add(base)
            found.update(base + "." + alias.name for alias in node.names)
    # The parent package is imported before any of its modules anyway: not an edge.
    return {name for name in found if name in MODULES and name not in (module, "sockproto")}


def _cycle():
    """One import cycle among sockproto's modules, as a list of names, or None."""
    graph = {module: _imported_modules(module) for module in MODULES}
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in MODULES:
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_modules_import_each_other_without_cycles():
    assert _cycle() is None


def test_codec_and_constants_are_leaves():
    assert _imported_modules("sockproto.constants") == set()
    assert _imported_modules("sockproto.codec") <= {"sockproto.storage"}


def test_protocol_layer_imports_no_transport():
    transports = {"sockproto.tcp", "sockproto.memory", "sockproto._commbase"}
    for module in ("sockproto.protocol", "sockproto._peer", "sockproto._services", "sockproto._buffer",
                   "sockproto.codec"):
        assert _imported_modules(module) & transports == set(), module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_imports_inside_functions_or_classes(module):
    inner = [node.lineno for scope in ast.walk(_tree(module))
             if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
             for node in ast.walk(scope) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert inner == []


def _is_own(node, own_classes):
    """``self``, ``cls``, ``type(self)`` or a class of the module itself."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls") or node.id in own_classes
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Name) and node.args[0].id == "self")


@pytest.mark.parametrize("module", ["sockproto._peer", "sockproto._services", "sockproto._buffer",
                                    "sockproto.protocol"])
def test_no_private_member_of_another_object_is_read(module):
    """``x._name`` only on the object itself (a connection gets objects with an interface)."""
    tree = _tree(module)
    own_classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    reads = [(node.lineno, node.attr) for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr.startswith("_")
             and not node.attr.startswith("__") and not _is_own(node.value, own_classes)]
    assert reads == []
