"""A worker, probe or review process never runs FiftyOne's exit clean-up of non-persistent datasets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import pathlib, sys
import fiftyone.core.odm.database as database
marker = pathlib.Path(sys.argv[1])
database._delete_non_persistent_datasets_if_allowed = lambda: marker.write_text("deleted")
import fiftyone as fo
fo.list_datasets()  # connects, which registers the exit hook
if sys.argv[2] == "worker":
    from worker.__main__ import _keep_other_datasets
    _keep_other_datasets()
"""


@pytest.mark.parametrize(("mode", "hook_runs"), [("plain", True), ("worker", False)])
def test_exit_hook_is_dropped_by_inference_processes(
    mongo: Any, tmp_path: Path, mode: str, hook_runs: bool
) -> None:
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(marker), mode], check=True, env=env, cwd=REPO_ROOT, timeout=120
    )
    assert marker.exists() is hook_runs
