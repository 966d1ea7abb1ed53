"""The operator's Helm chart installed the way the tests, the demo and the controller benchmark use it.

`install_chart`: CRD, ClusterRole and the worker ServiceAccount and Role in the given
namespace, with ``replicaCount=0``: the controller then runs as a local process under a
token of the chart's own controller ServiceAccount (kwok nodes, the local pod runner).
`install_chart_with_image`: on the real node, the chart whole, with the image built from
the Dockerfile: the controller is its Deployment, in namespaces that enforce the
restricted Pod Security level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tools.cluster.projectimage import IMAGE_NAME
from tools.cluster.realnode import real_node_selector

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "autolabel-operator"
RELEASE, SYSTEM_NAMESPACE = "autolabel", "autolabel-system"
CONTROLLER_SA = "autolabel-autolabel-operator"
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"


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


def chart_values(image_ref: str, namespace: str) -> dict[str, Any]:
    """The chart's values: the local image (never pulled), on the real node, workers in `namespace`."""
    repository, tag = image_ref.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "workerImage": {"repository": repository, "tag": tag},
        "allowedImages": [f"{IMAGE_NAME}:*", "localhost/autolabel/*"],
        "nodeSelector": real_node_selector(),
        "worker": {"namespaces": [namespace]},
    }


def install_chart_with_image(cluster: Any, image_ref: str, namespace: str) -> None:
    """`helm install` of the chart with the controller as its Deployment, both namespaces restricted."""
    for name in (SYSTEM_NAMESPACE, namespace):
        cluster.kubectl("create", "namespace", name)
        cluster.kubectl("label", "namespace", name, RESTRICTED, "--overwrite")
    cluster.helm(
        "install", RELEASE, str(CHART), "-n", SYSTEM_NAMESPACE, "-f", "-", "--wait", "--timeout", "5m",
        input=yaml.safe_dump(chart_values(image_ref, namespace)),
    )  # fmt: skip
