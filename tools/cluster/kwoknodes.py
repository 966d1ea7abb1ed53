"""The fake GPU nodes that kwok keeps Ready and the local pod runner serves.

`gpu_node_manifest()` is the Node object the control plane creates for each of
`GPU_NODE_NAMES`: it advertises `nvidia.com/gpu` and carries the label the pod
runner (tools/cluster/podrunner.py) selects. kwok runs with `KWOK_CONFIG`, whose
stages make these nodes Ready and turn the pod runner's exit annotation into a
finished pod. Beside a real node the kwok nodes are tainted (`KWOK_TAINT`), so
only pods that tolerate the taint land on them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.cluster.podrunner import RUNNER_NODE_LABEL

KWOK_CONFIG = Path(__file__).with_name("kwok-config.yaml")
GPU_NODE_NAMES = ("gpu-node-0", "gpu-node-1")
KWOK_TAINT = {"key": "autolabel.dev/node", "value": "kwok", "effect": "NoSchedule"}
"""On the kwok nodes of a cluster with a real node: pods go to the real node unless they tolerate it."""


def kwok_node_toleration() -> dict[str, str]:
    return {**KWOK_TAINT, "operator": "Equal"}


def gpu_node_manifest(name: str, gpus: int = 4, tainted: bool = False) -> dict[str, Any]:
    """A kwok-managed node advertising `nvidia.com/gpu`, served by the local pod runner."""
    resources = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
    spec = {"spec": {"taints": [KWOK_TAINT]}} if tainted else {}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
                "nvidia.com/gpu.present": "true",
                RUNNER_NODE_LABEL: "local",
            },
        },
        **spec,
        "status": {"allocatable": resources, "capacity": resources},
    }


def ready_gpu_nodes(nodes: dict[str, Any]) -> int:
    """How many nodes of a NodeList (the GPU nodes, by their pod-runner label) are Ready."""
    return sum(
        1
        for node in nodes.get("items", [])
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )
    )
