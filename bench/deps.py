"""Packages only the ``apply_model`` baseline needs, installed on demand outside the shared virtualenv.

FiftyOne's ``apply_model`` feeds torch models through ``fiftyone.utils.torch``,
which imports torchvision; the project's virtualenv does not carry it (nothing
else needs it). The pinned wheel (pure Python plus torch's stable ABI) goes to
a cache directory with ``pip install --no-deps --target`` and is put on the
``PYTHONPATH`` of the ``apply_model`` child process only.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

TORCHVISION = "torchvision==0.29.2"
CACHE = Path.home() / ".cache" / "autolabel-operator" / "bench-deps"


def torchvision_path() -> Path | None:
    """A directory to add to PYTHONPATH for torchvision, or None when the interpreter already has it."""
    if importlib.util.find_spec("torchvision") is not None:
        return None
    target = CACHE / TORCHVISION.replace("==", "-")
    if not (target / "torchvision").is_dir():
        partial = target.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        print(f"installing {TORCHVISION} into {target} (apply_model baseline only)", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(partial),
                TORCHVISION,
            ],
            check=True,
        )
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target
