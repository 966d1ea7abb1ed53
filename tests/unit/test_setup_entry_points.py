"""`.ci/run` and `make test` install the same things: CI is `make test`, and `make test` installs first.

README promises that `make test` works on a fresh machine; CI runs `.ci/run`. These tests read the
three files that decide what gets installed, so a step added to one of them alone fails here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def commands(script: Path) -> list[str]:
    """The shell commands of a script: its lines less comments, blanks and shell syntax alone."""
    found = []
    for line in script.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line in ("fi", "then", "else", "done"):
            continue
        found.append(line)
    return found


def make_rule(target: str) -> tuple[list[str], list[str]]:
    """A Makefile rule's prerequisites and recipe lines."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}:(?!=)", line))
    prerequisites = lines[start].split(":", 1)[1].split()
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return prerequisites, recipe


def test_ci_runs_make_test_and_installs_nothing_else() -> None:
    ci = commands(REPO / ".ci" / "run")
    assert "make test" in ci
    installs = [c for c in ci if "apt-get install" in c]
    # Only `make` itself, which is needed to read the Makefile at all.
    assert installs and all(shlex.split(c)[-1] == "make" for c in installs), installs
    assert not [c for c in ci if "tools/" in c or "pip " in c], "an install step .ci/run has alone"


def test_make_test_sets_up_first() -> None:
    prerequisites, recipe = make_rule("test")
    assert prerequisites == ["setup"]
    assert recipe and all(line.split()[0] == "$(MAKE)" for line in recipe), recipe
    tiers = {word for line in recipe for word in line.split()[1:] if not word.startswith("-")}
    assert {"lint", "typecheck", "verify", "unit", "integration", "test-realnode"} <= tiers
    _, setup = make_rule("setup")
    assert setup == ["./tools/setup.sh"]


def test_setup_installs_what_the_tests_ask_for() -> None:
    setup = "\n".join(commands(REPO / "tools" / "setup.sh"))
    for package in ("chromium", "python3.11", "python3.11-venv", "libpython3.11", "openssl"):
        assert re.search(rf"need_apt\+=\({re.escape(package)}\)", setup), package
    for step in (
        "./tools/node-packages.sh",
        "./tools/build-tools.sh",
        "AUTOLABEL_REAL_NODE=1 ./tools/build-tools.sh",
        "./tools/setup-venv.sh",
    ):
        assert step in setup, step
    # The browser fixture's message for a missing chromium points at what installs it.
    browser = (REPO / "tests" / "fixtures" / "browser.py").read_text()
    assert "make setup installs it" in browser and ".ci/run installs" not in browser
