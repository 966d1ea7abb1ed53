"""The tree is the design: every package is installed, copied into the image and hashed for its rebuild.

Also: the App plugin finds the project's packages as installed packages (or on
``PYTHONPATH``), never by editing ``sys.path`` itself.
"""

from __future__ import annotations

import ast
import re

from tests.layout import PACKAGES, POD_PACKAGES, REPO
from tools.cluster.projectimage import IMAGE_INPUTS


def test_every_top_level_package_is_installed() -> None:
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "tools", "bench"}
    assert on_disk == set(PACKAGES)
    assert set(POD_PACKAGES) == {"worker", "inference", "steps", "review", "runtime"}


def test_the_image_copies_and_hashes_every_package() -> None:
    copied = set(re.findall(r"^COPY (\w+)/ \1/$", (REPO / "Dockerfile").read_text(), flags=re.M))
    assert copied == set(PACKAGES)
    assert set(PACKAGES) <= set(IMAGE_INPUTS)


def test_the_worker_script_is_the_worker_package() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert 'autolabel-worker = "worker.__main__:main"' in text


def test_the_plugin_never_edits_sys_path() -> None:
    for path in (REPO / "plugins").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        touched = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr == "path"
            and getattr(node.value, "id", "") == "sys"
        ]
        assert touched == [], f"{path} edits sys.path"


MAX_MODULE_LINES = 400
"""Past this a module probably holds two ideas (the project's style guide)."""


def test_no_module_is_over_400_lines() -> None:
    tops = (*PACKAGES, "tools", "bench", "plugins", "tests")
    long = {
        str(path.relative_to(REPO)): lines
        for top in tops
        for path in (REPO / top).rglob("*.py")
        if "__pycache__" not in path.parts
        and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
