"""The `autolabel` CLI fails the way kubectl does, against the real control plane and a closed port.

Each failure is one line on stderr naming the API server and the cause, a
non-zero exit, and never a traceback: a port nobody listens on, a token the
server does not know (401), a token it knows without the right (403), and a
server that does not serve AutoLabelRuns (no CRD).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fixtures.cluster import ClusterHandle
from tests.integration.worker_helpers import REPO_ROOT
from tools.cluster.kubeconfig import token_kubeconfig
from tools.cluster.processes import free_port

pytestmark = pytest.mark.integration


def autolabel(kubeconfig: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", "--kubeconfig", str(kubeconfig), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )


def server_of(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])


def with_server(kubeconfig: Path, server: str, path: Path) -> Path:
    document = yaml.safe_load(kubeconfig.read_text())
    document["clusters"][0]["cluster"]["server"] = server
    path.write_text(yaml.safe_dump(document))
    return path


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_a_closed_port_is_one_line_naming_the_server(cluster: ClusterHandle, tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    kubeconfig = with_server(cluster.kubeconfig, server, tmp_path / "closed")
    for argv in (["status", "my-run"], ["list"], ["finalize", "my-run"]):
        line = one_line_error(autolabel(kubeconfig, "-n", "default", *argv))
        assert line == f"error: cannot reach the Kubernetes API server {server}: connection refused", line


def test_refused_and_insufficient_credentials(cluster: ClusterHandle, namespace: str, tmp_path: Path) -> None:
    server = server_of(cluster.kubeconfig)
    unknown = token_kubeconfig(cluster.kubeconfig, "not-a-token", tmp_path / "unknown", namespace)
    line = one_line_error(autolabel(unknown, "status", "my-run"))
    assert (
        line == f"error: the server {server} refused the credentials (401 Unauthorized): check the kubeconfig"
    )

    token = cluster.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    weak = token_kubeconfig(cluster.kubeconfig, token, tmp_path / "weak", namespace)
    line = one_line_error(autolabel(weak, "list"))
    assert line.startswith(f"error: the server {server} forbids it (403 Forbidden): "), line
    assert f'system:serviceaccount:{namespace}:default" cannot list resource "autolabelruns"' in line


def test_a_server_without_the_crd(cluster: ClusterHandle, tmp_path: Path) -> None:
    """A server that does not serve autolabel.dev answers a bare "404 page not found".

    The session's CRD is shared with other tests, so it is not deleted here: when it is
    installed, the same server is asked under a path prefix it serves nothing at, where
    it gives that very answer (and without the CRD the plain kubeconfig is asked too).
    """
    server = server_of(cluster.kubeconfig)
    kubeconfigs = [with_server(cluster.kubeconfig, f"{server}/nothing-here", tmp_path / "prefix")]
    installed = cluster.kubectl("get", "crd", "autolabelruns.autolabel.dev", check=False).returncode == 0
    if not installed:
        kubeconfigs.append(cluster.kubeconfig)
    for kubeconfig in kubeconfigs:
        for argv in (["status", "my-run"], ["list"]):
            line = one_line_error(autolabel(kubeconfig, "-n", "default", *argv))
            assert "doesn't have a resource type 'autolabelruns' (autolabel.dev/v1alpha1)" in line, line
            assert line.startswith(f"error: the server {server_of(kubeconfig)} "), line
