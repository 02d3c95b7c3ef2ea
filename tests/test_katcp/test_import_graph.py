"""The module graph of katcp_compat: no cycles, leaves that stay leaves."""
import ast
import pathlib

import pytest

import katcp_compat

PACKAGE = "katcp_compat"
PACKAGE_DIR = pathlib.Path(katcp_compat.__file__).parent

#: Modules that import nothing from the package but the modules listed.
LEAVES = {
    "_errors": set(),
    "_protocol": set(),
    "_handlers": set(),
    "_codec": {"_errors"},
}


def _module_names():
    return sorted(path.stem for path in PACKAGE_DIR.glob("*.py") if path.stem != "__init__")


def _resolve(node, module):
    """Names of package modules a relative or absolute import statement loads."""
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[1] for alias in node.names
                if alias.name.startswith(PACKAGE + ".")]
    if node.level == 0:
        if node.module and node.module.startswith(PACKAGE + "."):
            return [node.module.split(".")[1]]
        if node.module == PACKAGE:
            return [alias.name for alias in node.names]
        return []
    if node.module:
        return [node.module.split(".")[0]]
    return [alias.name for alias in node.names]  # from . import x


def _is_type_checking(node):
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module):
    """(module-level imports, imports inside functions or classes) of a module."""
    tree = ast.parse((PACKAGE_DIR / (module + ".py")).read_text(encoding="utf-8"))
    top, nested = set(), set()

    def visit(node, inside):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # annotations only: never executed
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (nested if inside else top).update(_resolve(child, module))
            visit(child, inside or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))

    visit(tree, False)
    known = set(_module_names())
    return top & known, nested & known


GRAPH = {name: _imports(name)[0] for name in _module_names()}


def _find_cycle(graph):
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_module_graph_has_no_cycle():
    cycle = _find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", _module_names())
def test_module_has_no_function_level_package_imports(module):
    assert _imports(module)[1] == set()


@pytest.mark.parametrize("leaf, allowed", sorted(LEAVES.items()))
def test_leaf_module_imports_nothing_above_it(leaf, allowed):
    assert GRAPH[leaf] <= allowed


def test_cycle_finder_reports_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("path, name", [
    ("katcp_compat.core", "Message"), ("katcp_compat.core", "MessageParser"),
    ("katcp_compat.core", "Sensor"), ("katcp_compat.core", "Reading"),
    ("katcp_compat.core", "ProtocolFlags"), ("katcp_compat.core", "DeviceMetaclass"),
    ("katcp_compat.core", "FailReply"), ("katcp_compat.core", "MAX_MSG_SIZE"),
    ("katcp_compat.core", "LineDecoder"), ("katcp_compat.server", "MAX_MSG_SIZE"),
    ("katcp_compat", "GenericSensorTree"), ("katcp_compat.kattypes", "Int"),
])
def test_public_import_paths_work(path, name):
    module = __import__(path, fromlist=[name])
    assert getattr(module, name) is not None


def test_message_size_limit_is_one_constant():
    from katcp_compat import client, core, server
    assert core.MAX_MSG_SIZE == server.MAX_MSG_SIZE == client.DeviceClient.MAX_MSG_SIZE
    assert core.MAX_MSG_SIZE == 2 * 1024 * 1024
