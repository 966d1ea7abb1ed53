"""`pip install "autolabel-operator[cli]"` in a fresh virtualenv: `autolabel` and the kubectl plugin, no more.

The package is built and installed from this checkout into an empty virtualenv (by the test
environment's pip, so the virtualenv needs no pip of its own), then run outside the repository:
`kubectl autolabel` (the real kubectl finding ``kubectl-autolabel`` on PATH) lists the runs of a
real cluster, and fails in one line with kubectl's exit code against a closed port. Its
dependencies and the build backend come from a wheelhouse that ``pip download`` fills from PyPI
once per set of requirements (``~/.cache/autolabel-operator/cli-wheels-<key>``); the install
resolves from it alone (``--no-index``), so what the extra pulls in is still pip's own resolution.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.integration.run_helpers import install_crd
from tests.integration.test_cli_errors import with_server
from tests.integration.worker_helpers import REPO_ROOT
from tests.layout import PACKAGES
from tools.cluster.processes import free_port

pytestmark = pytest.mark.integration
CACHE = Path.home() / ".cache" / "autolabel-operator"
HEAVY = ("torch", "fiftyone", "numpy", "tritonclient", "kopf", "opencv-python")


def build_and_cli_requirements() -> list[str]:
    """The build backend and the `[cli]` extra, as pyproject.toml names them."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return [*project["build-system"]["requires"], *project["project"]["optional-dependencies"]["cli"]]


def wheelhouse() -> Path:
    """Wheels of the build backend and of the `[cli]` extra's dependencies, downloaded from PyPI once."""
    requirements = build_and_cli_requirements()
    key = hashlib.sha256(json.dumps([sys.version_info[:2], requirements]).encode()).hexdigest()[:12]
    target = CACHE / f"cli-wheels-{key}"
    if not target.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=CACHE))
        try:
            download = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
            subprocess.run(
                [*download, "--dest", str(partial), *requirements],
                check=True,
                timeout=600,
            )
            with contextlib.suppress(OSError):  # another session filled it meanwhile: theirs is as good
                partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return target


def pip_in(root: Path, *args: str) -> list[str]:
    """This environment's pip acting on the virtualenv at `root` (which has no pip of its own)."""
    return [sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), *args]


def clean_source(target: Path) -> Path:
    """The files a release builds from, copied: pip builds in the tree, and a checkout's stale
    ``build/lib`` (modules since moved or removed) would be packaged into the wheel."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, target / name)
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="module")
def cli_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = wheelhouse()
    root = tmp_path_factory.mktemp("cli-venv")
    venv.create(root, with_pip=False)
    source = clean_source(tmp_path_factory.mktemp("cli-source"))
    # --no-compile: the modules compile when first imported, as they would from an unwritable prefix.
    install = ("install", "--quiet", "--no-compile", "--no-index", "--find-links", str(wheels))
    subprocess.run(
        pip_in(root, *install, f"{source}[cli]"),
        check=True,
        timeout=600,
        cwd=root,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_FIND_LINKS")},
    )
    return root


def user_env(cli_venv: Path, cluster: ClusterHandle) -> dict[str, str]:
    """A user's shell: the virtualenv and kubectl on PATH, not the repository on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KUBECONFIG")}
    env["PATH"] = os.pathsep.join([str(cli_venv / "bin"), str(cluster.bin_dir), env.get("PATH", "")])
    return env


def test_the_cli_extra_installs_both_commands_without_heavy_packages(cli_venv: Path) -> None:
    listed = subprocess.run(
        pip_in(cli_venv, "list", "--format=freeze"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    names = {line.split("==")[0] for line in listed.splitlines()}
    assert {"autolabel-operator", "kubernetes", "pydantic"} <= names
    assert not names & set(HEAVY), names & set(HEAVY)
    for script in ("autolabel", "kubectl-autolabel"):
        assert (cli_venv / "bin" / script).exists()
    usage = subprocess.run(
        [str(cli_venv / "bin" / "kubectl-autolabel"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert usage.startswith("usage: kubectl autolabel ")


def test_kubectl_autolabel_against_a_real_cluster_and_a_closed_port(
    cli_venv: Path, cluster: ClusterHandle, namespace: str, tmp_path: Path
) -> None:
    install_crd(cluster)
    env = user_env(cli_venv, cluster)
    kubectl = [str(cluster.bin_dir / "kubectl"), "autolabel", "--kubeconfig", str(cluster.kubeconfig)]
    done = subprocess.run(
        [*kubectl, "-n", namespace, "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"No AutoLabelRuns in namespace {namespace}.\n"
    missing = subprocess.run(
        [*kubectl, "-n", namespace, "status", "nope"], capture_output=True, text=True, env=env, timeout=120
    )
    assert missing.returncode == 3
    assert missing.stderr == f"error: autolabelrun 'nope' not found in namespace '{namespace}'\n"

    server = f"https://127.0.0.1:{free_port()}"
    closed = with_server(cluster.kubeconfig, server, tmp_path / "closed")
    failed = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "autolabel", "--kubeconfig", str(closed), "status", "my-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert failed.returncode == 1
    assert failed.stderr == f"error: cannot reach the Kubernetes API server {server}: connection refused\n"
    assert sys.executable not in failed.stderr  # the installed script ran, not the repository's
