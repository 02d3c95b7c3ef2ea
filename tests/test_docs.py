"""The Sphinx documentation builds with no warning, every cross-reference resolved.

The build is nitpicky (``-n``) with warnings as errors (``-W``). References to the Python
documentation resolve through intersphinx, from the inventory that Debian's ``python3-doc``
installs: no network is needed. Where that file is missing, the build runs without intersphinx
(``PROTOCOMPAT_DOCS_INTERSPHINX=0``, see docs/conf.py): names outside protocompat are then
left as text, and every reference to protocompat's own names is still checked.
"""

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="Sphinx is not installed (pip install protocompat[docs])")

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
#: Where Debian's python3-doc puts the Python documentation's inventory (docs/conf.py reads it).
LOCAL_PYTHON_INVENTORY = pathlib.Path("/usr/share/doc/python3/html/objects.inv")
#: A full build takes about 40 s on a quiet machine of two cores.
BUILD_TIMEOUT = 600


def _build(out: pathlib.Path, intersphinx: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PROTOCOMPAT_DOCS_INTERSPHINX"] = "1" if intersphinx else "0"
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env)


@pytest.mark.timeout(BUILD_TIMEOUT + 30)
def test_docs_build_nitpicky_with_no_warning(tmp_path: pathlib.Path) -> None:
    intersphinx = LOCAL_PYTHON_INVENTORY.exists()
    result = _build(tmp_path, intersphinx)
    assert result.returncode == 0, "sphinx -n -W failed:\n" + result.stderr
    html = (tmp_path / "html" / "katcp.html").read_text(encoding="utf-8")
    # The API reference is there: autodoc imported the packages.
    assert 'id="katcp_compat.core.Message"' in html
    if intersphinx:
        assert "https://docs.python.org/3/library/socket.html#socket.socket" in html
