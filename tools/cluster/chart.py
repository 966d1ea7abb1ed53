"""The operator's Helm chart installed the way the tests, the demo and the controller benchmark use it.

CRD, ClusterRole and the worker ServiceAccount and Role in the given namespaces, with
``replicaCount=0``: the controller then runs as a local process (no container engine
here) under a token of the chart's own controller ServiceAccount.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "autolabel-operator"
RELEASE, SYSTEM_NAMESPACE = "autolabel", "autolabel-system"
CONTROLLER_SA = "autolabel-autolabel-operator"


def install_chart(cluster: Any, worker_namespace: str) -> None:
    """`helm upgrade --install` with zero controller replicas; `cluster` has `.helm` (a LocalCluster or
    the tests' ClusterHandle)."""
    cluster.helm(
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "-n",
        SYSTEM_NAMESPACE,
        "--create-namespace",
        "--set",
        "replicaCount=0",
        "--set",
        f"worker.namespaces={{{worker_namespace}}}",
        "--wait",
    )
