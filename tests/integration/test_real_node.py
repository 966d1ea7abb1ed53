"""The real node runs real containers: images from containerd, cgroup limits, logs, the pod network.

Pods here go to `real-node-0` (the kubelet from the pinned module on Debian's
containerd and runc), never to the kwok nodes, and use the locally built busybox
image: nothing is faked between the Pod object and the process in its container.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import ClusterHandle
from tests.waiting import wait_until
from tools.cluster.harness import LocalCluster
from tools.cluster.kwoknodes import GPU_NODE_NAMES, kwok_node_toleration
from tools.cluster.nodeimages import busybox_image
from tools.cluster.realnode import BRIDGE_IP, RealNodeError, real_node_selector

pytestmark = [pytest.mark.integration, pytest.mark.realnode]


def busybox_pod(name: str, script: str, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "nodeSelector": real_node_selector(),
            "containers": [
                {
                    "name": "main",
                    "image": busybox_image().ref,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                    **container,
                }
            ],
        },
    }


def pod_json(cluster: ClusterHandle, namespace: str, name: str) -> Any:
    return json.loads(cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout)


def wait_for_phase(cluster: ClusterHandle, namespace: str, name: str, phases: set[str]) -> Any:
    def done() -> Any:
        pod = pod_json(cluster, namespace, name)
        return pod if pod["status"].get("phase") in phases else None

    return wait_until(f"pod {name} in {phases}", done, timeout=120)


@pytest.fixture
def real_namespace(real_cluster: ClusterHandle) -> Iterator[str]:
    name = f"real-{uuid.uuid4().hex[:8]}"
    real_cluster.kubectl("create", "namespace", name)
    real_cluster.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    yield name
    real_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_pod_runs_to_succeeded_with_logs_on_the_pod_network(
    real_cluster: ClusterHandle, real_namespace: str
) -> None:
    script = "echo hello from $(hostname); ip -4 -o addr show eth0 | grep -o 'inet [0-9.]*'"
    real_cluster.kubectl(
        "apply", "-n", real_namespace, "-f", "-", input=yaml.safe_dump(busybox_pod("hello", script))
    )
    pod = wait_for_phase(real_cluster, real_namespace, "hello", {"Succeeded", "Failed"})
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    assert pod["spec"]["nodeName"] == "real-node-0"
    assert pod["status"]["podIP"].startswith("10.123.")
    logs = real_cluster.kubectl("logs", "hello", "-n", real_namespace).stdout
    assert "hello from hello" in logs
    assert f"inet {pod['status']['podIP']}" in logs


def test_memory_limit_is_enforced_by_the_container_cgroup(
    real_cluster: ClusterHandle, real_namespace: str
) -> None:
    # A command substitution holds all its output in the shell's memory: 256 MiB against a 32 MiB limit.
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "big=$(head -c 268435456 /dev/zero | tr '\\0' a); echo survived ${#big}"
    )
    resources = {"limits": {"memory": "32Mi", "cpu": "500m"}, "requests": {"memory": "32Mi", "cpu": "100m"}}
    manifest = busybox_pod("hungry", script, resources=resources)
    real_cluster.kubectl("apply", "-n", real_namespace, "-f", "-", input=yaml.safe_dump(manifest))
    pod = wait_for_phase(real_cluster, real_namespace, "hungry", {"Succeeded", "Failed"})
    assert pod["status"]["phase"] == "Failed", pod["status"]
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled", terminated
    assert terminated["exitCode"] == 137
    logs = real_cluster.kubectl("logs", "hungry", "-n", real_namespace).stdout
    assert logs.split()[0] == str(32 * 1024 * 1024)
    assert "survived" not in logs


def test_pods_reach_the_api_server_on_the_bridge_and_by_its_service(
    real_cluster: ClusterHandle, real_namespace: str
) -> None:
    assert_pods_reach_the_api_server(real_cluster, real_namespace)


def assert_pods_reach_the_api_server(real_cluster: ClusterHandle, real_namespace: str) -> None:
    assert real_cluster.cluster is not None
    port = real_cluster.cluster.api_port
    # The in-cluster configuration: the kubelet's KUBERNETES_SERVICE_* variables and the mounted token.
    script = (
        "test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token mounted; "
        f"nc -w 3 {BRIDGE_IP} {port} </dev/null && echo api server reachable; "
        'echo "service $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; '
        "nc -w 3 $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT </dev/null && echo service reachable"
    )
    real_cluster.kubectl(
        "apply", "-n", real_namespace, "-f", "-", input=yaml.safe_dump(busybox_pod("reach", script))
    )
    pod = wait_for_phase(real_cluster, real_namespace, "reach", {"Succeeded", "Failed"})
    logs = real_cluster.kubectl("logs", "reach", "-n", real_namespace).stdout
    assert "token mounted" in logs and "api server reachable" in logs, (pod["status"], logs)
    assert "service 10.0.0.1:443" in logs and "service reachable" in logs, logs


def test_pods_choose_the_real_node_or_by_toleration_a_kwok_node(
    real_cluster: ClusterHandle, real_namespace: str
) -> None:
    """The kwok nodes stay beside the real node, tainted: only a pod that tolerates and selects them goes
    there (and runs as a local process of the pod runner); any other pod runs in a container."""
    kwok = busybox_pod("on-kwok", "echo kwok")
    kwok["spec"]["nodeSelector"] = {"type": "kwok"}
    kwok["spec"]["tolerations"] = [kwok_node_toleration()]
    plain = busybox_pod("anywhere", "echo real")
    del plain["spec"]["nodeSelector"]
    real_cluster.kubectl("apply", "-n", real_namespace, "-f", "-", input=yaml.safe_dump_all([kwok, plain]))
    on_kwok = wait_for_phase(real_cluster, real_namespace, "on-kwok", {"Succeeded", "Failed"})
    anywhere = wait_for_phase(real_cluster, real_namespace, "anywhere", {"Succeeded", "Failed"})
    assert on_kwok["status"]["phase"] == anywhere["status"]["phase"] == "Succeeded"
    assert on_kwok["spec"]["nodeName"] in GPU_NODE_NAMES
    assert anywhere["spec"]["nodeName"] == "real-node-0"
    assert anywhere["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")


def test_a_second_real_node_is_refused_and_leaves_the_first_untouched(
    real_cluster: ClusterHandle, real_namespace: str, tmp_path: Path
) -> None:
    with pytest.raises(RealNodeError, match="another real node runs on this machine"):
        LocalCluster(tmp_path / "second", real_node=True).start()
    # The refused cluster's clean-up left the running node's bridge, NAT rule and pods alone.
    assert_pods_reach_the_api_server(real_cluster, real_namespace)
