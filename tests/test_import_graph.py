"""The import graph of each package: no cycles, and no imports of its own modules inside functions."""
import ast
import os
from typing import Dict, List, Set

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["protocompat", "katcp_compat", "samp_compat", "sockproto"]
#: Leaf modules: what each may import from its own package, and nothing else.
LEAVES = {
    "katcp_compat._errors": set(),
    "katcp_compat._protocol": set(),
    "katcp_compat._handlers": set(),
    "katcp_compat._codec": {"katcp_compat._errors"},
    "protocompat._threads": set(),
    "samp_compat._conf": set(),
    "samp_compat._http": set(),
    "samp_compat._mtypes": set(),
    "samp_compat._url_tracker": set(),
    "samp_compat.constants": set(),
    "samp_compat.errors": set(),
    "samp_compat.xmlrpc": set(),
}


def _modules(package: str) -> Dict[str, str]:
    """Dotted module name -> file path, for every module of ``package``."""
    found = {}
    base = os.path.join(ROOT, package)
    for folder, _, files in os.walk(base):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(module: str, path: str, known: Set[str]):
    """(imported module, at module level?) for each import of a module in ``known``."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_package = path.endswith("__init__.py")
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    top_level = set(id(node) for node in tree.body)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package_parts[:len(package_parts) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [base] + [base + "." + alias.name for alias in node.names]
        else:
            continue
        module_level = id(node) in top_level or _inside_top_level_block(tree, node)
        for name in names:
            if name in known and name != module:
                yield name, module_level


def _inside_top_level_block(tree: ast.Module, target: ast.AST) -> bool:
    """True if ``target`` sits in a module-level if/try block (not in a def or class)."""
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            for inner in ast.walk(node):
                if inner is target:
                    return True
    return False


def _graph(package: str):
    modules = _modules(package)
    known = set(modules)
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    late: List[str] = []
    for name, path in modules.items():
        for target, module_level in _imports(name, path, known):
            if module_level:
                graph[name].add(target)
            else:
                late.append("%s imports %s inside a function" % (name, target))
    return graph, late


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            # A package's __init__ importing its submodules is not a cycle by itself.
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _without_parent_package_edges(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
    """Drop edges from a submodule to its own package: ``from . import x`` names the sibling."""
    return {name: {t for t in targets if not name.startswith(t + ".")}
            for name, targets in graph.items()}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_has_no_import_cycle(package):
    graph, _ = _graph(package)
    cycles = _cycles(_without_parent_package_edges(graph))
    assert not cycles, "import cycles: %s" % "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_its_own_modules_only_at_module_level(package):
    _, late = _graph(package)
    assert not late, "; ".join(late)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_rewrites_no_module_attribute(package):
    rewrites = []
    for name, path in _modules(package).items():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        rewrites += ["%s:%d" % (name, node.lineno) for node in ast.walk(tree)
                     if isinstance(node, ast.Attribute) and node.attr == "__module__"
                     and isinstance(node.ctx, ast.Store)]
    assert rewrites == []


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_module_imports_nothing_above_it(leaf):
    graph, _ = _graph(leaf.split(".")[0])
    assert graph[leaf] <= LEAVES[leaf]


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
