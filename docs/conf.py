"""Sphinx configuration for protocompat."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "protocompat"
author = "protocompat developers"
copyright = "2026, protocompat developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
napoleon_google_docstring = True
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# astropy is optional at run time; documenting must not need it.
autodoc_mock_imports = ["astropy"]
suppress_warnings = ["autodoc.import_object"]
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
