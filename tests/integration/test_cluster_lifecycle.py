"""`python -m tools.cluster up/down` leaves nothing behind, even when its supervisor is killed.

The two control planes (one stopped by `down`, one by killing its supervisor) start together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(f"{cmdline.parent.name}: {args[:120]}")
    return found


def cluster_cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cluster", *args, "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def wait_for_no_processes(state_dir: Path, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(str(state_dir))) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.fixture(scope="module")
def control_planes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Two control planes, started by `up` at the same time, one for each way of stopping: `down`, and
    a SIGKILL of the supervisor. Both are brought `down` at the end."""
    state_dirs = {name: tmp_path_factory.mktemp(name) / "state" for name in ("downed", "killed")}
    with ThreadPoolExecutor(len(state_dirs)) as pool:
        starts = [pool.submit(cluster_cli, "up", state_dir=state_dir) for state_dir in state_dirs.values()]
    ups = [start.result() for start in starts]
    try:
        for up in ups:
            assert up.returncode == 0, up.stdout + up.stderr
        yield state_dirs
    finally:
        for state_dir in state_dirs.values():
            cluster_cli("down", state_dir=state_dir)


def test_up_serves_the_pinned_version_and_down_stops_everything(control_planes: dict[str, Path]) -> None:
    state_dir = control_planes["downed"]
    try:
        assert len(processes_mentioning(str(state_dir))) >= 5  # etcd, apiserver, kcm, scheduler, kwok
        version = subprocess.run(
            [
                str(state_dir / "bin" / "kubectl"),
                "--kubeconfig",
                str(state_dir / "kubeconfig"),
                "version",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(version.stdout)["serverVersion"]["gitVersion"].startswith("v1.")
        assert (state_dir / "bin" / "helm").exists()
    finally:
        down = cluster_cli("down", state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    assert wait_for_no_processes(state_dir) == []


def test_killing_the_supervisor_takes_the_control_plane_with_it(control_planes: dict[str, Path]) -> None:
    state_dir = control_planes["killed"]
    assert len(processes_mentioning(str(state_dir))) >= 5
    supervisor = int((state_dir / "supervisor.pid").read_text())
    os.kill(supervisor, signal.SIGKILL)
    assert wait_for_no_processes(state_dir) == []
