"""Import the real ``katcp.testutils`` (the reference) on Python 3.10+, for tests only.

katcp 0.9.3's testutils imports tornado 4.5, whose modules still use the
``collections`` aliases of the abstract base classes (``collections.MutableMapping``,
...) that Python 3.10 removed. Putting the missing aliases back before the import
lets the reference load; nothing in katcp_compat needs this.
"""
import collections
import collections.abc
import importlib
from types import ModuleType

#: The ``collections`` aliases tornado 4.5 reads (all removed in Python 3.10).
_REMOVED_ALIASES = ("Callable", "Hashable", "Iterable", "Mapping", "MutableMapping",
                    "MutableSequence", "MutableSet", "Sequence", "Set")


def import_katcp_testutils() -> ModuleType:
    """Return ``katcp.testutils``; raises ImportError if katcp is not installed."""
    for name in _REMOVED_ALIASES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    return importlib.import_module("katcp.testutils")
