"""The README says what is true: its quick start, its code and what that code prints.

Every fenced ``python`` block of the README is followed by the line ``prints:`` and a fenced
``text`` block: what the code prints on standard output, line for line. In that text, a word in
angle brackets (``<time>``) stands for any one word. Each block runs as written, in a fresh
interpreter, with this checkout's packages on the path.
"""
import os
import re
import subprocess
import sys
from typing import List, NamedTuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Longest a README example may take (the SAMP one starts a hub and two clients).
SNIPPET_TIMEOUT = 60

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
_PLACEHOLDER = re.compile(r"<[a-z][a-z -]*>")


class Snippet(NamedTuple):
    section: str
    code: str
    expected: str


def _read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def _snippets() -> List[Snippet]:
    text = _read("README.md")
    snippets = []
    for fence in _FENCE.finditer(text):
        if fence.group(1) != "python":
            continue
        section = re.findall(r"^## (.+)$", text[:fence.start()], re.M)[-1]
        label = re.match(r"\nprints:\n\n", text[fence.end():])
        after = _FENCE.match(text, fence.end() + label.end()) if label else None
        assert after is not None and after.group(1) == "text", (
            "the python block of README section %r is not followed by 'prints:' and a text block"
            % section)
        snippets.append(Snippet(section, fence.group(2), after.group(2)))
    return snippets


def _matches(expected: str, output: str) -> bool:
    pattern = "".join(r"\S+" if _PLACEHOLDER.fullmatch(part) else re.escape(part)
                      for part in re.split("(%s)" % _PLACEHOLDER.pattern, expected))
    return re.fullmatch(pattern, output) is not None


SNIPPETS = _snippets()


def test_readme_has_a_python_example_for_every_package() -> None:
    sections = {snippet.section for snippet in SNIPPETS}
    assert {"katcp_compat", "samp_compat", "lib.messaging", "sockproto",
            "protocompat.netutil"} <= sections


@pytest.mark.timeout(SNIPPET_TIMEOUT + 30)
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.section for s in SNIPPETS])
def test_readme_example_prints_what_the_readme_says(snippet: Snippet, tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT, HOME=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", snippet.code], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=SNIPPET_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert _matches(snippet.expected, result.stdout), (
        "printed:\n%s\nthe README says:\n%s" % (result.stdout, snippet.expected))


def test_placeholder_stands_for_one_word() -> None:
    assert _matches("#sensor-value[2] <time> 1\n", "#sensor-value[2] 1796060261.8 1\n")
    assert not _matches("#sensor-value[2] <time> 1\n", "#sensor-value[2] 17 96 1\n")
    assert not _matches("42\n", "")


# -- the quick start ------------------------------------------------------------------------

def _quick_start_commands() -> List[str]:
    text = _read("README.md")
    section = re.search(r"^## Quick start\n(.*?)^## ", text, re.S | re.M).group(1)
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def test_quick_start_has_exactly_two_commands() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    demo, tests = commands
    assert demo.startswith("python3 -m venv v && ") and "pip install ." in demo
    assert demo.endswith("python demo.py")
    assert tests.startswith("python3 -m venv v && ") and "pip install -e '.[test]'" in tests
    assert tests.endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _quick_start_commands()[1]
    ci_lines = [line.strip() for line in _read(".ci", "run").splitlines()]
    assert test_command in ci_lines


# -- the messaging drop-in ------------------------------------------------------------------

def test_readme_gives_the_tested_drop_in_steps() -> None:
    """The two steps of docs/messaging.rst, which tests/test_messaging runs in a clever-show tree."""
    readme = " ".join(_read("README.md").split())
    assert ("replace their `lib/messaging.py` with protocompat's `lib/messaging.py` "
            "and `pip install protocompat`") in readme
