"""The chart on the real node: the controller Deployment runs the image built from our Dockerfile.

`helm install` with the locally built image (tools/cluster/projectimage.py) into a
namespace that enforces the restricted Pod Security level; the controller pod runs
on `real-node-0` as the chart sets it up (user 65532, read-only root filesystem,
512 Mi memory limit, liveness probe on /healthz), talks to the API server through
the in-cluster configuration the kubelet gives it, and acts on a run.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import ClusterHandle
from tests.integration.run_helpers import run_manifest
from tests.waiting import wait_until
from tools.cluster.chart import CHART, RELEASE, SYSTEM_NAMESPACE
from tools.cluster.nodeimages import LocalImage, import_image
from tools.cluster.projectimage import project_image
from tools.cluster.realnode import real_node_selector, real_node_toleration

pytestmark = [pytest.mark.integration, pytest.mark.realnode]
RUNS = "real-runs"


@pytest.fixture(scope="module")
def operator_image(real_cluster: ClusterHandle) -> LocalImage:
    assert real_cluster.cluster is not None and real_cluster.cluster.node is not None
    image = project_image()
    import_image(real_cluster.cluster.node.ctr, image)
    return image


@pytest.fixture(scope="module")
def installed_chart(real_cluster: ClusterHandle, operator_image: LocalImage) -> Iterator[dict[str, Any]]:
    repository, tag = operator_image.ref.rsplit(":", 1)
    for namespace in (SYSTEM_NAMESPACE, RUNS):
        real_cluster.kubectl("create", "namespace", namespace)
        real_cluster.kubectl(
            "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite"
        )
    values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "workerImage": {"repository": repository, "tag": tag},
        "nodeSelector": real_node_selector(),
        "tolerations": [real_node_toleration()],
        "worker": {"namespaces": [RUNS]},
    }
    real_cluster.helm(
        "install", RELEASE, str(CHART), "-n", SYSTEM_NAMESPACE, "-f", "-", "--wait", "--timeout", "5m",
        input=yaml.safe_dump(values),
    )  # fmt: skip
    yield values
    real_cluster.helm("uninstall", RELEASE, "-n", SYSTEM_NAMESPACE, "--wait", check=False)


def controller_pod(cluster: ClusterHandle) -> dict[str, Any]:
    pods = json.loads(
        cluster.kubectl(
            "get",
            "pods",
            "-n",
            SYSTEM_NAMESPACE,
            "-l",
            "app.kubernetes.io/name=autolabel-operator",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return dict(pods[0])


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except OSError:
        return None


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
    time.sleep(35)  # initialDelaySeconds 10 + periodSeconds 20: the kubelet has probed it by now
    [container] = controller_pod(real_cluster)["status"]["containerStatuses"]
    assert container["restartCount"] == 0, container


def test_the_containerised_controller_acts_on_a_run(
    real_cluster: ClusterHandle, installed_chart: dict[str, Any]
) -> None:
    """A run naming an image outside the allow-list: the controller, reaching the API server through the
    `kubernetes` Service with its ServiceAccount token, fails it with ImageNotAllowed."""
    endpoint = type("Endpoint", (), {"grpc_url": "grpc://127.0.0.1:1"})()
    manifest = run_manifest("refused", RUNS, "no-dataset", endpoint, execution={"image": "evil.example/x:1"})
    real_cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def failed() -> Any:
        run = json.loads(
            real_cluster.kubectl("get", "autolabelrun", "refused", "-n", RUNS, "-o", "json").stdout
        )
        conditions = run.get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Failed" and c["status"] == "True"), None)

    condition = wait_until("the run Failed", failed, timeout=120)
    assert condition["reason"] == "ImageNotAllowed", condition
    logs = real_cluster.kubectl(
        "logs", "-n", SYSTEM_NAMESPACE, controller_pod(real_cluster)["metadata"]["name"]
    )
    assert "Creation is processed: 1 succeeded" in logs.stdout, logs.stdout[-2000:]
