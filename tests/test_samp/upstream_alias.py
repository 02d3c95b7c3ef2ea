"""pytest plugin: run the installed astropy.samp or pyvo.samp test files against samp_compat.

``SAMP_COMPAT_UPSTREAM=astropy.samp python -m pytest -p upstream_alias <its test files>``
(this folder on ``PYTHONPATH``). Before any test file is imported, the
upstream package name and each of its submodule names are made the matching
samp_compat modules in ``sys.modules``; the upstream ``tests`` package itself
is loaded from where it is installed, so that its relative imports work and
every name its files import resolves to samp_compat.
"""
import importlib
import importlib.util
import os
import sys
import warnings

import samp_compat

#: Submodules of the upstream packages that samp_compat provides.
SUBMODULES = ("client", "constants", "errors", "hub", "hub_proxy", "hub_script",
              "integrated_client", "lockfile_helpers", "standard_profile", "utils",
              "vo_helpers", "web_profile")


def install_aliases(upstream: str) -> None:
    """Make ``upstream`` (``astropy.samp`` or ``pyvo.samp``) and its submodules samp_compat's."""
    parent_name, _, child = upstream.rpartition(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parent = importlib.import_module(parent_name)  # the real astropy / pyvo
    tests_dir = os.path.join(os.path.dirname(parent.__file__), child, "tests")
    sys.modules[upstream] = samp_compat
    setattr(parent, child, samp_compat)
    for name in SUBMODULES:
        sys.modules["%s.%s" % (upstream, name)] = importlib.import_module("samp_compat." + name)
    spec = importlib.util.spec_from_file_location(
        upstream + ".tests", os.path.join(tests_dir, "__init__.py"),
        submodule_search_locations=[tests_dir])
    tests = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tests
    spec.loader.exec_module(tests)


install_aliases(os.environ["SAMP_COMPAT_UPSTREAM"])
