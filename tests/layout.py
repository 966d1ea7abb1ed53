"""The project's Python packages, as pyproject.toml installs them: what tests that walk the source read."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES: tuple[str, ...] = tuple(
    pattern.removesuffix("*")
    for pattern in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"
    ]["include"]
)
POD_PACKAGES: tuple[str, ...] = tuple(p for p in PACKAGES if p not in ("contract", "controller"))
"""What runs in the run's pods: the entry point, the pipeline, the dataset steps, review and their runtime."""
