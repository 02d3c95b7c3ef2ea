"""Sphinx configuration for protocompat.

Build with ``python -m sphinx -n -W -b html docs docs/_build``: nitpicky, warnings as errors.

References to the Python documentation resolve through intersphinx. The inventory is read from
Debian's ``python3-doc`` package when it is installed (no network needed) and fetched from
docs.python.org otherwise. Setting the environment variable ``PROTOCOMPAT_DOCS_INTERSPHINX=0``
builds without intersphinx (offline, without python3-doc): names from outside protocompat are
then shown as text, and ``nitpicky`` still checks every reference to protocompat's own names
(docs/_pyrefs.py).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath(os.path.dirname(__file__)))

import protocompat  # noqa: E402  (after the path is set)

project = "protocompat"
author = "protocompat developers"
copyright = "2026, protocompat developers"
release = protocompat.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    # Names resolved as Python resolves them (docs/_pyrefs.py).
    "_pyrefs",
]

# -- Cross-references --------------------------------------------------------------------------

nitpicky = True

#: The Python documentation's inventory that Debian's python3-doc installs.
LOCAL_PYTHON_INVENTORY = "/usr/share/doc/python3/html/objects.inv"

if os.environ.get("PROTOCOMPAT_DOCS_INTERSPHINX", "1") == "0":
    intersphinx_mapping = {}
else:
    # The local file when present, else the online inventory (None).
    intersphinx_mapping = {
        "python": (
            "https://docs.python.org/3",
            (LOCAL_PYTHON_INVENTORY if os.path.exists(LOCAL_PYTHON_INVENTORY) else None),
        ),
    }
intersphinx_timeout = 10

# -- Docstrings --------------------------------------------------------------------------------

# The house style is numpydoc.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
# Types in "Parameters" sections ("int, optional", "callable") become references.
napoleon_preprocess_types = True
napoleon_use_rtype = True
#: Words used in docstring types, mapped to what they mean.
napoleon_type_aliases = {
    "any": ":py:class:`object`",
    "objects": ":py:class:`objects <object>`",
    "ints": ":py:class:`ints <int>`",
    "tuples": ":py:class:`tuples <tuple>`",
    "future": ":py:class:`~concurrent.futures.Future`",
    "callable": ":term:`callable`",
    "function": ":term:`callable`",
    "iterable": ":term:`iterable`",
    "iterator": ":term:`iterator`",
    "sequence": ":term:`sequence`",
    "container": ":py:class:`container <collections.abc.Container>`",
    "mapping": ":term:`mapping`",
    "hashable": ":term:`hashable`",
    "file-like": ":term:`file-like object <file object>`",
    "file-like object": ":term:`file-like object <file object>`",
    "path-like": ":term:`path-like object`",
    "bytes-like": ":term:`bytes-like object`",
    # astropy's documentation is online only: its names are shown, not linked.
    "astropy.table.Table": "``astropy.table.Table``",
    "astropy.io.votable.tree.VOTableFile": "``astropy.io.votable.tree.VOTableFile``",
    "VOTableFile": "``astropy.io.votable.tree.VOTableFile``",
    # "int, optional (keyword)": a parameter that can only be given by keyword.
    "optional (keyword)": ":emphasis:`optional, keyword-only`",
    "optional (keyword only)": ":emphasis:`optional, keyword-only`",
}

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# astropy is optional at run time; documenting must not need it.
autodoc_mock_imports = ["astropy"]

# -- Output ------------------------------------------------------------------------------------

html_theme = "alabaster"
exclude_patterns = ["_build"]


def _attribute_text_as_written(app, what, name, obj, options, lines):
    """Keep napoleon from reading "text: more text" in an attribute's docstring as "type: text".

    The type of an attribute comes from its annotation; its docstring is prose, and prose has
    colons. Napoleon takes the first line for its inline "type: text": an empty comment there
    (``..``, which renders as nothing) leaves that empty and the text as written.
    """
    if what in ("attribute", "data", "property") and lines and lines[0].strip():
        lines[0:0] = ["..", ""]


def setup(app):
    # Before napoleon, which handles the same event at the default priority (500).
    app.connect("autodoc-process-docstring", _attribute_text_as_written, priority=400)
