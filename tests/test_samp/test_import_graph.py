"""samp_compat's modules import each other without cycles, at module level only."""
import ast
import os

import pytest

import samp_compat

PACKAGE = "samp_compat"
PACKAGE_DIR = os.path.dirname(samp_compat.__file__)
MODULES = sorted(name[:-3] for name in os.listdir(PACKAGE_DIR) if name.endswith(".py"))
#: Modules that import nothing else of the package.
LEAVES = ["_conf", "_http", "_mtypes", "_url_tracker", "constants", "errors", "xmlrpc"]


def parse(module):
    with open(os.path.join(PACKAGE_DIR, module + ".py"), encoding="utf-8") as fobj:
        return ast.parse(fobj.read())


def imported_modules(node):
    """Package modules named by one import statement."""
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[1] for alias in node.names
                if alias.name.startswith(PACKAGE + ".")]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0 and node.module and node.module.startswith(PACKAGE + "."):
        return [node.module.split(".")[1]]
    if node.level == 0 and node.module == PACKAGE or node.level == 1 and not node.module:
        return [alias.name if alias.name in MODULES else "__init__" for alias in node.names]
    if node.level == 1:
        return [node.module.split(".")[0]]
    return []


def module_level_imports(tree):
    found = set()
    for node in tree.body:
        for inner in ast.walk(node):
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                break
            found.update(imported_modules(inner))
    return found


GRAPH = {module: module_level_imports(parse(module)) for module in MODULES}


def find_cycle():
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in MODULES:
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def test_the_import_graph_has_no_cycle():
    assert find_cycle() is None


@pytest.mark.parametrize("module", LEAVES)
def test_leaf_modules_import_nothing_of_the_package(module):
    assert GRAPH[module] == set()


@pytest.mark.parametrize("module", MODULES)
def test_no_package_import_inside_functions_or_classes(module):
    # (Optional third-party modules, such as astropy for tables, are imported when used.)
    inner = []
    for node in ast.walk(parse(module)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner += [sub.lineno for sub in ast.walk(node) if imported_modules(sub)]
    assert inner == []


@pytest.mark.parametrize("module", MODULES)
def test_no_module_attribute_is_rewritten(module):
    assigned = [node.lineno for node in ast.walk(parse(module))
                if isinstance(node, ast.Attribute) and node.attr == "__module__"
                and isinstance(node.ctx, ast.Store)]
    assert assigned == []
