"""astropy's and pyvo's own SAMP test files, run against samp_compat by import aliasing.

The test files are taken from the installed packages at test time (nothing of
them is copied here) and run in a separate pytest process whose
``astropy.samp`` / ``pyvo.samp`` modules are samp_compat's
(see ``upstream_alias.py``).
"""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.interop

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
#: Seconds the whole upstream suite of one package may take.
SUITE_TIMEOUT = 50


def upstream_tests_dir(package):
    """The installed ``<package>/tests`` folder, or skip when the package is not installed."""
    parent, _, child = package.rpartition(".")
    spec = importlib.util.find_spec(parent)
    if spec is None or spec.origin is None:
        pytest.skip("%s is not installed" % parent)
    tests_dir = os.path.join(os.path.dirname(spec.origin), child, "tests")
    if not os.path.isfile(os.path.join(tests_dir, "__init__.py")):
        pytest.skip("%s has no installed tests folder" % package)
    return tests_dir


def run_upstream_suite(package, tmp_path):
    tests_dir = upstream_tests_dir(package)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, SAMP_COMPAT_UPSTREAM=package, HOME=str(tmp_path),
               PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    env.pop("SAMP_HUB", None)
    env.pop("CI", None)  # the upstream Web Profile tests skip themselves under CI
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "upstream_alias", "-p", "no:cacheprovider",
         "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path),
         "--confcutdir", tests_dir, "-q", "-rA", tests_dir],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT)


@pytest.mark.parametrize("package", ["astropy.samp", "pyvo.samp"])
def test_upstream_samp_test_files_pass_against_samp_compat(package, tmp_path):
    result = run_upstream_suite(package, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary), output
    assert not re.search(r"failed|error|skipped", summary), output
    # The Web Profile suite (a subclass written like astropy's SAMPWebClient) ran too.
    assert "PASSED test_web_profile.py::TestWebProfile::test_main" in output
