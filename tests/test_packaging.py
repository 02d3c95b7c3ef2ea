"""The distribution: what the sdist and the wheel carry, their metadata, the versions reported,
and which real peers a test run has."""
import email.parser
import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from typing import Dict, List, Set

import pytest

import katcp_compat
import protocompat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Top-level import packages the wheel installs, for good.
PACKAGES = {"protocompat", "katcp_compat", "samp_compat", "sockproto"}

#: Files outside the packages that the sdist carries so that the tests, docs and demo run from it.
SDIST_EXTRA_FILES = ["LICENSE", "README.md", "demo.py", "tox.ini", "pyproject.toml", "setup.py",
                     "MANIFEST.in", os.path.join(".ci", "run")]
#: Folders the sdist carries whole (``lib`` holds the drop-in file for clever-show's lib/;
#: the wheel does not install it).
SDIST_EXTRA_FOLDERS = ["tests", "docs", "lib"]
#: What is never part of a source tree's content: caches, build output, checkouts.
NOT_SOURCE = {".git", ".tox", ".hypothesis", ".pytest_cache", "__pycache__", "build", "dist",
              "_build"}

#: Extract members as plain data (no links out, no devices) where tarfile offers it.
SAFE_EXTRACT = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}

SUPPORTED_PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
#: The build frontend and backend, by oldest release, run offline (--no-isolation).
BUILD_TOOLS = {"build": "1.0", "setuptools": "77.0"}
BUILD_TIMEOUT = 240  # seconds to build the sdist and the wheel
COLLECT_TIMEOUT = 120  # seconds for pytest to collect the suite
# Building (in the first test that needs it) and collecting twice take longer than a usual test.
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 2 * COLLECT_TIMEOUT)

#: The real peers of the test extra, by the oldest Python each one installs on.
PEERS = {"katcp": "3.9", "aiokatcp": "3.9", "astropy.samp": "3.9", "pyvo.samp": "3.10"}
#: Distributions that must be absent from a run without peers.
PEER_DISTRIBUTIONS = ["katcp", "aiokatcp", "astropy", "pyvo"]
#: Environment variable a CI run sets to say which peers it installed: "all" or "none".
PEERS_VARIABLE = "PROTOCOMPAT_PEERS"


def _is_source(directory: str, name: str) -> bool:
    path = os.path.join(directory, name)
    if name in NOT_SOURCE or name.endswith((".egg-info", ".pyc")):
        return False
    return not os.path.exists(os.path.join(path, "pyvenv.cfg"))  # a virtual environment


def _source_files(top: str) -> List[str]:
    """Paths relative to ROOT of the source files under ``top``."""
    found = []
    for directory, dirs, files in os.walk(os.path.join(ROOT, top)):
        dirs[:] = [d for d in dirs if _is_source(directory, d)]
        found += [os.path.relpath(os.path.join(directory, f), ROOT) for f in files
                  if _is_source(directory, f)]
    return sorted(found)


def _version_tuple(text: str) -> tuple:
    return tuple(int(part) for part in text.split(".")[:2])


def _require_distribution(name: str, oldest: str) -> None:
    """Skip unless distribution ``name``, ``oldest`` or later, is installed."""
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("%s is not installed (the test extra has it)" % name)
    if _version_tuple(installed) < _version_tuple(oldest):
        pytest.skip("%s %s is installed; building needs %s or later" % (name, installed, oldest))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    """The sdist and the wheel, built offline from a copy of the source tree."""
    for distribution, oldest in BUILD_TOOLS.items():
        _require_distribution(distribution, oldest)
    work = tmp_path_factory.mktemp("build")
    source = str(work / "source")
    shutil.copytree(ROOT, source,
                    ignore=lambda d, names: [n for n in names if not _is_source(d, n)])
    out = str(work / "dist")
    # Run from outside the source tree: its build/ folder would shadow the build tool.
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out,
                             source], cwd=str(work), capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names = os.listdir(out)
    sdist = [n for n in names if n.endswith(".tar.gz")]
    wheel = [n for n in names if n.endswith(".whl")]
    assert len(sdist) == 1 and len(wheel) == 1, names
    return {"sdist": os.path.join(out, sdist[0]), "wheel": os.path.join(out, wheel[0]),
            "work": str(work)}


def _sdist_names(sdist: str) -> Set[str]:
    with tarfile.open(sdist) as archive:
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


def _wheel_names(wheel: str) -> Set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _wheel_metadata(wheel: str, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        info = [n for n in archive.namelist() if n.endswith(".dist-info/" + name)]
        return archive.read(info[0]).decode("utf-8")


def test_sdist_carries_tests_docs_demo_and_configuration(built):
    names = _sdist_names(built["sdist"])
    wanted = SDIST_EXTRA_FILES + [f for top in SDIST_EXTRA_FOLDERS for f in _source_files(top)]
    assert [f for f in wanted if f.replace(os.sep, "/") not in names] == []


def test_sdist_carries_every_package_file(built):
    names = _sdist_names(built["sdist"])
    wanted = [f for top in sorted(PACKAGES) for f in _source_files(top)]
    assert [f for f in wanted if f.replace(os.sep, "/") not in names] == []


def test_unpacked_sdist_collects_the_same_tests_as_the_source_tree(built):
    unpacked = os.path.join(built["work"], "unpacked")
    with tarfile.open(built["sdist"]) as archive:
        archive.extractall(unpacked, **SAFE_EXTRACT)
    (top,) = os.listdir(unpacked)

    def collect(directory: str) -> List[str]:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
            cwd=directory, capture_output=True, text=True, timeout=COLLECT_TIMEOUT)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return [line for line in result.stdout.splitlines() if "::" in line]

    from_sdist = collect(os.path.join(unpacked, top))
    assert from_sdist and from_sdist == collect(ROOT)


def test_wheel_installs_only_the_distribution_packages(built):
    top_level = {name.split("/", 1)[0] for name in _wheel_names(built["wheel"])}
    dist_info = {name for name in top_level if name.endswith(".dist-info")}
    assert top_level - dist_info == PACKAGES
    assert "tests" not in top_level


def test_wheel_carries_every_package_module(built):
    names = _wheel_names(built["wheel"])
    wanted = [f.replace(os.sep, "/") for top in sorted(PACKAGES)
              for f in _source_files(top)]
    assert [f for f in wanted if f not in names] == []


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_wheel_marks_each_package_typed(built, package):
    assert package + "/py.typed" in _wheel_names(built["wheel"])


def test_wheel_carries_the_license(built):
    licenses = [n for n in _wheel_names(built["wheel"]) if ".dist-info/licenses/" in n]
    assert [n.rsplit("/", 1)[1] for n in licenses] == ["LICENSE"]
    with open(os.path.join(ROOT, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("BSD 3-Clause License") and "the protocompat developers" in text


def test_wheel_metadata_names_version_python_license_and_extras(built):
    meta = email.parser.Parser().parsestr(_wheel_metadata(built["wheel"], "METADATA"))
    assert meta["Name"] == "protocompat"
    assert meta["Version"] == protocompat.__version__
    assert meta["Requires-Python"] == ">=3.9"
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta["License-File"] == "LICENSE"
    assert set(meta.get_all("Provides-Extra")) == {"tables", "test", "docs"}
    assert meta.get_all("Project-URL")
    classifiers = meta.get_all("Classifier")
    assert ["Programming Language :: Python :: %s" % v for v in SUPPORTED_PYTHONS if
            "Programming Language :: Python :: %s" % v not in classifiers] == []
    assert "Typing :: Typed" in classifiers


def test_wheel_declares_the_samp_hub_console_script(built):
    entry_points = _wheel_metadata(built["wheel"], "entry_points.txt")
    assert "samp-compat-hub = samp_compat.hub_script:hub_script" in entry_points.splitlines()


def test_distribution_version_is_protocompat_version():
    try:
        installed = importlib.metadata.version("protocompat")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("protocompat is not installed (pip install -e .)")
    assert installed == protocompat.__version__


def test_katcp_compat_reports_the_katcp_version_it_provides():
    assert katcp_compat.__version__ == "0.9.3"
    assert katcp_compat.VERSION[:3] == (0, 9, 3)


def test_katcp_compat_version_matches_the_real_katcp():
    katcp = pytest.importorskip("katcp")
    assert katcp_compat.__version__ == katcp.__version__


def _required_peers() -> List[str]:
    running = "%d.%d" % sys.version_info[:2]
    return [name for name, oldest in sorted(PEERS.items())
            if _version_tuple(running) >= _version_tuple(oldest)]


@pytest.mark.parametrize("module", sorted(PEERS))
def test_run_with_peers_has_every_peer_of_the_test_extra(module):
    if os.environ.get(PEERS_VARIABLE) != "all":
        pytest.skip("%s is not 'all': this run need not have every peer" % PEERS_VARIABLE)
    if module not in _required_peers():
        pytest.skip("%s does not install on Python %d.%d" % ((module,) + sys.version_info[:2]))
    importlib.import_module(module)


@pytest.mark.parametrize("distribution", PEER_DISTRIBUTIONS)
def test_run_without_peers_has_none_installed(distribution):
    if os.environ.get(PEERS_VARIABLE) != "none":
        pytest.skip("%s is not 'none': peers may be installed" % PEERS_VARIABLE)
    assert importlib.util.find_spec(distribution) is None
