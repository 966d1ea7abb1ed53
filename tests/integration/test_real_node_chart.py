"""The chart on the real node: the controller Deployment runs the image built from our Dockerfile.

`helm install` with the locally built image (tools/cluster/projectimage.py) into a
namespace that enforces the restricted Pod Security level; the controller pod runs
on `real-node-0` as the chart sets it up (user 65532, read-only root filesystem,
512 Mi memory limit, liveness probe on /healthz), talks to the API server through
the in-cluster configuration the kubelet gives it, and acts on a run.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.realnode import REAL_RUNS, controller_pod
from tests.integration.run_helpers import run_manifest
from tests.waiting import wait_until
from tools.cluster.chart import SYSTEM_NAMESPACE

pytestmark = [pytest.mark.integration, pytest.mark.realnode]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except OSError:
        return None


def liveness_probes(cluster: ClusterHandle, pod: dict[str, Any]) -> dict[str, float]:
    """The kubelet's own count of the liveness probes of `pod`, by result (`successful`, `failed`,
    `unknown`): `prober_probe_total` on its /metrics/probes, read through the API server's node proxy."""
    from prometheus_client.parser import text_string_to_metric_families

    node, uid = pod["spec"]["nodeName"], pod["metadata"]["uid"]
    text = cluster.kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/metrics/probes").stdout
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            ours = labels.get("probe_type") == "Liveness" and labels.get("pod_uid") == uid
            if sample.name == "prober_probe_total" and ours:
                counts[labels["result"]] = counts.get(labels["result"], 0.0) + sample.value
    return counts


def test_the_controller_runs_as_the_charts_deployment_on_the_real_node(
    real_cluster: ClusterHandle, installed_chart: dict[str, Any]
) -> None:
    pod = controller_pod(real_cluster)
    assert pod["spec"]["nodeName"] == "real-node-0"
    name = pod["metadata"]["name"]
    [container] = pod["status"]["containerStatuses"]
    assert container["ready"] and "running" in container["state"], container

    def in_pod(script: str) -> str:
        return real_cluster.kubectl("exec", "-n", SYSTEM_NAMESPACE, name, "--", "sh", "-c", script).stdout

    assert in_pod("id -u; id -g").split() == ["65532", "65532"]
    assert "Read-only file system" in in_pod("touch /opt/autolabel/x 2>&1 || true")
    assert in_pod("cat /sys/fs/cgroup/memory/memory.limit_in_bytes").strip() == str(512 * 1024 * 1024)
    # The liveness endpoint the kubelet probes answers, from the pod's own address on the bridge.
    # (Ready comes first: the chart sets no readiness probe, and the controller binds the port once started.)
    url = f"http://{pod['status']['podIP']}:8080/healthz"
    wait_until(f"{url} answering 200", lambda: _status(url) == 200, timeout=90)
    # The kubelet's first liveness probes come 10 s after the start, then every 20 s.
    probes = wait_until(
        "the kubelet's first successful liveness probe of the pod",
        lambda: (counts := liveness_probes(real_cluster, pod)).get("successful") and counts,
        timeout=120,
    )
    [container] = controller_pod(real_cluster)["status"]["containerStatuses"]
    assert container["restartCount"] == 0, (container, probes)


def test_the_containerised_controller_acts_on_a_run(
    real_cluster: ClusterHandle, installed_chart: dict[str, Any]
) -> None:
    """A run naming an image outside the allow-list: the controller, reaching the API server through the
    `kubernetes` Service with its ServiceAccount token, fails it with ImageNotAllowed."""
    endpoint = type("Endpoint", (), {"grpc_url": "grpc://127.0.0.1:1"})()
    manifest = run_manifest(
        "refused", REAL_RUNS, "no-dataset", endpoint, execution={"image": "evil.example/x:1"}
    )
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def failed() -> Any:
        run = json.loads(
            real_cluster.kubectl("get", "autolabelrun", "refused", "-n", REAL_RUNS, "-o", "json").stdout
        )
        conditions = run.get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Failed" and c["status"] == "True"), None)

    condition = wait_until("the run Failed", failed, timeout=120)
    assert condition["reason"] == "ImageNotAllowed", condition
    logs = real_cluster.kubectl(
        "logs", "-n", SYSTEM_NAMESPACE, controller_pod(real_cluster)["metadata"]["name"]
    )
    assert "Creation is processed: 1 succeeded" in logs.stdout, logs.stdout[-2000:]
