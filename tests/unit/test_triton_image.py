"""The Triton image's model list (tools/cluster/triton.Dockerfile) matches what the image can run.

A model folder belongs in the image exactly when its python-backend code imports
only the standard library, the backend's utilities and the packages the image
installs, and an ensemble only when all its steps do; the cache key follows the
folders copied.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

from tests.unit.test_packaging import hadolint
from tools.cluster.projectimage import REPO_ROOT
from tools.cluster.tritonimage import DOCKERFILE, bundled_models, image_key

MODELS = REPO_ROOT / "models"
# Import name -> the distribution the Dockerfile installs for it.
IMAGE_PACKAGES = {"numpy": "numpy", "PIL": "Pillow", "mediapipe": "mediapipe", "onnxruntime": "onnxruntime"}
BACKEND_MODULES = {"triton_python_backend_utils"}


def imports(model: Path) -> set[str]:
    """Top-level modules the model's python files import, less its own files."""
    own = {p.stem for p in model.rglob("*.py")}
    found: set[str] = set()
    for source in model.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - own


def ensemble_steps(model: Path) -> list[str]:
    return re.findall(r'model_name:\s*"([^"]+)"', (model / "config.pbtxt").read_text())


@cache
def runs_in_image(name: str) -> bool:
    model = MODELS / name
    allowed = set(sys.stdlib_module_names) | BACKEND_MODULES | set(IMAGE_PACKAGES)
    return imports(model) <= allowed and all(runs_in_image(step) for step in ensemble_steps(model))


def test_the_image_bundles_exactly_the_models_its_packages_run() -> None:
    expected = sorted(
        p.name for p in MODELS.iterdir() if (p / "config.pbtxt").exists() and runs_in_image(p.name)
    )
    assert sorted(bundled_models()) == expected
    assert "face_detector" in expected and "efficientnet_lite0" not in expected


def test_the_dockerfile_installs_the_packages_the_models_import() -> None:
    [install] = re.findall(r"pip install -c \S+ ([^\\&]+)", DOCKERFILE.read_text())
    assert set(install.split()) >= {*IMAGE_PACKAGES.values(), "nvidia-pytriton"}
    assert "torch" not in install.split()


def test_the_cache_key_follows_the_base_and_the_bundled_models() -> None:
    assert image_key("localhost/a:1") == image_key("localhost/a:1")
    assert image_key("localhost/a:1") != image_key("localhost/a:2")
    assert len(set(bundled_models())) == len(bundled_models()) > 0


def test_the_dockerfile_lints_clean_with_hadolint() -> None:
    done = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout
