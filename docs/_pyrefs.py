"""Resolve Python cross-references the way Python resolves the names they spell.

A docstring in ``katcp_compat.server`` writes :class:`Message` and means the ``Message`` that
module imported, documented as ``katcp_compat.core.Message``; a type hint names
``concurrent.futures._base.Future``, which the Python documentation describes as
``concurrent.futures.Future``. Sphinx looks such names up only as written. This extension, on a
reference Sphinx could not resolve, imports the object the name denotes from where the
reference stands (class, then module, then absolute) and links to the place that documents that
very object: here, or in the Python documentation through intersphinx. A name that denotes
nothing, or an object documented nowhere, stays unresolved, and the nitpicky build reports it.

Without the Python documentation's inventory (``intersphinx_mapping`` empty), names from
outside protocompat's packages are left as text; references to protocompat's own names are
checked all the same.

Base classes listed by ``show-inheritance`` that are private (``_Name``, or a class of a private
module that no public module imports, such as a mixin of request handlers) are replaced by
their own bases, so the documented hierarchy is the public one.
"""

import builtins
import importlib
import inspect
import re
import sys
import typing
from typing import Any, Dict, List, Optional

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext import intersphinx

#: The top-level packages this documentation describes.
OWN_PACKAGES = ("protocompat", "katcp_compat", "samp_compat", "sockproto", "lib")

_MISSING = object()

#: Object types whose identity names one thing (unlike an int or a str attribute value).
_IDENTIFIED_TYPES = ("class", "exception", "function", "method", "classmethod",
                     "staticmethod", "module")


def import_object(dotted: str) -> Any:
    """The object that *dotted* names, importing its longest module prefix; None if none."""
    parts = dotted.split(".")
    if not all(part.isidentifier() for part in parts):
        return None
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _identity(obj: Any) -> int:
    """Identity of *obj*; a method reached through its class or instance counts as its function."""
    return id(getattr(obj, "__func__", obj))


def _public_names(obj: Any) -> List[str]:
    """Dotted names under which *obj* is reachable from a parent package of its module."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return []
    if module == "builtins":
        return [qualname]
    parts = module.split(".")
    names = []
    for split in range(1, len(parts) + 1):
        prefix = ".".join(parts[:split])
        if import_object(prefix + "." + qualname) is obj:
            names.append(prefix + "." + qualname)
    return names


class _Documented:
    """The documented Python objects of this build, found by identity."""

    def __init__(self, env: BuildEnvironment) -> None:
        self.by_id: Dict[int, str] = {}
        self._keep: List[Any] = []  # keeps the objects alive, so ids stay unique
        for name, entry in env.get_domain("py").objects.items():
            if entry.objtype not in _IDENTIFIED_TYPES or entry.aliased:
                continue
            obj = import_object(name)
            if obj is not None:
                self._keep.append(obj)
                self.by_id.setdefault(_identity(obj), name)


#: ``[env, _Documented]`` of the build in progress, made once every page has been read
#: (references are resolved after that).
_DOCUMENTED: List[Any] = []


def _documented(env: BuildEnvironment) -> _Documented:
    if not _DOCUMENTED or _DOCUMENTED[0] is not env:
        _DOCUMENTED[:] = [env, _Documented(env)]
    return _DOCUMENTED[1]


def _candidates(target: str, modname: Optional[str], classname: Optional[str]) -> List[str]:
    """Where *target* may live, innermost first, as Python would look it up from there."""
    names = []
    if modname and classname:
        names.append(modname + "." + classname + "." + target)
    if modname:
        names.append(modname + "." + target)
    # A class documented where it is re-exported: the names of the module that defines it.
    cls = import_object(modname + "." + classname) if modname and classname else None
    if inspect.isclass(cls) and cls.__module__ != modname:
        names.append(cls.__module__ + "." + target)
    names.append(target)
    return names


def _retarget(node: nodes.Element, target: str) -> nodes.Element:
    copy = node.deepcopy()
    copy["reftarget"] = target
    copy["refspecific"] = False
    return copy


def _resolve_here(app: Sphinx, env: BuildEnvironment, node: nodes.Element,
                  contnode: nodes.Element, target: str) -> Optional[nodes.Element]:
    domain = env.get_domain("py")
    for role in (node["reftype"], "obj"):
        found = domain.resolve_xref(env, node["refdoc"], app.builder, role, target,
                                    _retarget(node, target), contnode)
        if found is not None:
            return found
    return None


def _resolve_elsewhere(app: Sphinx, env: BuildEnvironment, node: nodes.Element,
                       contnode: nodes.Element, target: str) -> Optional[nodes.Element]:
    for role in (node["reftype"], "obj"):
        copy = _retarget(node, target)
        copy["reftype"] = role
        found = intersphinx.missing_reference(app, env, copy, contnode)
        if found is not None:
            return found
    return None


def resolve(app: Sphinx, env: BuildEnvironment, node: nodes.Element,
            contnode: nodes.Element) -> Optional[nodes.Element]:
    """Sphinx ``missing-reference`` handler for the ``py`` domain."""
    if not app.config.intersphinx_mapping and _outside(node):
        # Built without the Python documentation's inventory: names outside protocompat
        # stay text. Names of protocompat's own packages are still checked.
        return contnode
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    for candidate in _candidates(target, node.get("py:module"), node.get("py:class")):
        owner_name, _, last = candidate.rpartition(".")
        owner = import_object(owner_name) if owner_name else None
        obj = import_object(candidate)
        if obj is None:
            # An attribute that instances get in the class's own code (``self.port = ...``).
            if (node["reftype"] in ("attr", "obj") and inspect.isclass(owner)
                    and _assigns_attribute(owner, last)):
                return _resolve_at_owner(app, env, node, contnode, owner, last)
            continue
        if not _fits_role(obj, node["reftype"]):
            continue
        if isinstance(obj, typing.TypeVar):
            # A type variable is a placeholder with no page of its own: its name, unlinked.
            return contnode
        if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
            name = _documented(env).by_id.get(_identity(obj))
            if name is not None:
                return _resolve_here(app, env, node, contnode, name)
            found = _resolve_in_python_docs(app, env, node, contnode, obj)
            if found is not None:
                return found
        # Not documented on its own (a constant, a private method): where its owner is.
        return _resolve_at_owner(app, env, node, contnode, owner, last)
    return _resolve_in_package(app, env, node, contnode, target)


#: What each role may name (a role not listed may name anything).
_ROLE_KINDS = {
    "class": inspect.isclass,
    "exc": inspect.isclass,
    "meth": inspect.isroutine,
    "func": inspect.isroutine,
    "mod": inspect.ismodule,
}


def _fits_role(obj: Any, role: str) -> bool:
    """Whether *obj* is the kind of thing *role* names (a TypeVar passes for a class)."""
    test = _ROLE_KINDS.get(role)
    return test is None or test(obj) or (role == "class" and isinstance(obj, typing.TypeVar))


def _outside(node: nodes.Element) -> bool:
    """Whether *node* refers to what the Python documentation describes.

    That is a glossary term, a builtin, or a name that imports from outside protocompat's
    packages.
    """
    if node.get("refdomain") == "std":
        return node.get("reftype") == "term"
    if node.get("refdomain") != "py":
        return False
    target = node["reftarget"].lstrip(".~")
    if hasattr(builtins, target):
        return True
    for candidate in _candidates(target, node.get("py:module"), node.get("py:class")):
        obj = import_object(candidate)
        if obj is not None:
            module = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
            return isinstance(module, str) and module.split(".")[0] not in OWN_PACKAGES
    return False


def _assigns_attribute(cls: type, name: str) -> bool:
    """Whether the code of *cls* or of one of its own bases assigns ``self.<name>``."""
    pattern = re.compile(r"\bself\.%s\s*(:[^=\n]*)?=[^=]" % re.escape(name))
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] not in OWN_PACKAGES:
            continue
        try:
            if pattern.search(inspect.getsource(klass)):
                return True
        except (OSError, TypeError):
            continue
    return False


def _resolve_at_owner(app: Sphinx, env: BuildEnvironment, node: nodes.Element,
                      contnode: nodes.Element, owner: Any,
                      last: str) -> Optional[nodes.Element]:
    """The entry of *owner*'s member *last*, else *owner*'s own entry.

    A module that is not documented (a private one) gives way to the documented modules of its
    package that import the same member.
    """
    documented = _documented(env)
    owners = []
    if owner is not None and _identity(owner) in documented.by_id:
        owners.append(documented.by_id[_identity(owner)])
    elif inspect.ismodule(owner) and owner.__name__.split(".")[0] in OWN_PACKAGES:
        value = getattr(owner, last)
        package = owner.__name__.split(".")[0] + "."
        owners.extend(name for name, entry in env.get_domain("py").objects.items()
                      if entry.objtype == "module" and name.startswith(package)
                      and getattr(import_object(name), last, _MISSING) is value)
    domain_objects = env.get_domain("py").objects
    for name in owners:
        if name + "." + last in domain_objects:
            return _resolve_here(app, env, node, contnode, name + "." + last)
    if len(owners) == 1:
        return _resolve_here(app, env, node, contnode, owners[0])
    return None


def _resolve_in_python_docs(app: Sphinx, env: BuildEnvironment, node: nodes.Element,
                            contnode: nodes.Element, obj: Any) -> Optional[nodes.Element]:
    """*obj*'s entry in the Python documentation, under a public name; else its module's."""
    for public in _public_names(obj):
        found = _resolve_elsewhere(app, env, node, contnode, public)
        if found is not None:
            return found
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str) or module.split(".")[0] in OWN_PACKAGES:
        return None
    # Not described on its own there (xmlrpc.client.Transport): its module's page.
    parts = module.split(".")
    while any(part.startswith("_") for part in parts):
        parts.pop()
    if not parts:
        return None
    copy = _retarget(node, ".".join(parts))
    copy["reftype"] = "mod"
    return intersphinx.missing_reference(app, env, copy, contnode)


def _resolve_in_package(app: Sphinx, env: BuildEnvironment, node: nodes.Element,
                        contnode: nodes.Element, target: str) -> Optional[nodes.Element]:
    """The one object of the referring package whose name ends with *target*, if only one.

    This is how Sphinx already resolves the names in a parameter's type; a docstring names
    :class:`SAMPHubServer` in a module that does not import it.
    """
    package = (node.get("py:module") or "").split(".")[0]
    # Names of classes and constants only: a lower-case word is more often prose.
    if package not in OWN_PACKAGES or not target[:1].isupper():
        return None
    suffix = "." + target
    matches = {name for name in env.get_domain("py").objects
               if name.startswith(package + ".") and name.endswith(suffix)}
    # One object documented under several names (a module and the package re-exporting it).
    found = [(name, import_object(name)) for name in sorted(matches)]
    objects = {_identity(obj): name for name, obj in found if obj is not None}
    if len(objects) == 1:
        return _resolve_here(app, env, node, contnode, next(iter(objects.values())))
    return None


def _is_private(cls: type) -> bool:
    """Whether *cls* is named private, or lives in a private module no public module imports."""
    if cls.__name__.startswith("_"):
        return True
    if not any(part.startswith("_") for part in cls.__module__.split(".")):
        return False
    return not any(getattr(module, cls.__name__, None) is cls
                   for name, module in list(sys.modules.items())
                   if name.split(".")[0] in OWN_PACKAGES
                   and not any(part.startswith("_") for part in name.split(".")))


def public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: List[Any]) -> None:
    """``autodoc-process-bases``: private bases give way to their own bases."""
    result: List[Any] = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if inspect.isclass(base) and _is_private(base):
            pending[0:0] = [b for b in base.__bases__ if b is not object]
        elif base not in result:
            result.append(base)
    bases[:] = result or [object]


def setup(app: Sphinx) -> Dict[str, Any]:
    # After intersphinx (500), which knows the names the Python documentation describes.
    app.connect("missing-reference", resolve, priority=900)
    app.connect("autodoc-process-bases", public_bases)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
