"""The local control plane is real: schema validation, pruning, RBAC, Jobs, retries, GC.

These tests talk to the harness's kube-apiserver, controller-manager, scheduler
and kwok nodes, and the local pod runner executes the Jobs' pods.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import ClusterHandle
from tests.integration.run_helpers import wait_for_crd
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.harness.autolabel.dev
spec:
  group: harness.autolabel.dev
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10}
          status:
            type: object
            properties:
              phase: {type: string}
"""


def get_json(cluster: ClusterHandle, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def widget_manifest(name: str, namespace: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": "harness.autolabel.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"size": size},
    }


@pytest.fixture(scope="module")
def widget_crd(cluster: ClusterHandle) -> str:
    cluster.kubectl("apply", "-f", "-", input=WIDGET_CRD)
    wait_for_crd(cluster, "widgets.harness.autolabel.dev")
    return "widgets.harness.autolabel.dev"


def test_server_reports_the_pinned_version(cluster: ClusterHandle) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    pinned = dict(
        line.split("=", 1)
        for line in Path("tools/versions.env").read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    assert version["serverVersion"]["gitVersion"] == f"v{pinned['K8S_VERSION']}"
    assert version["clientVersion"]["gitVersion"] == f"v{pinned['K8S_VERSION']}"


def test_applied_crd_is_served(cluster: ClusterHandle, widget_crd: str, namespace: str) -> None:
    widget = widget_manifest("w1", namespace, 3)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(widget))
    assert get_json(cluster, "widget", "w1", "-n", namespace)["spec"] == {"size": 3}


def test_schema_violation_is_rejected_with_the_servers_message(
    cluster: ClusterHandle, widget_crd: str, namespace: str
) -> None:
    widget = widget_manifest("too-big", namespace, 11)
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(widget), check=False)
    assert result.returncode != 0
    assert "spec.size" in result.stderr
    assert "should be less than or equal to 10" in result.stderr
    assert cluster.kubectl("get", "widget", "too-big", "-n", namespace, check=False).returncode != 0


def test_status_subresource_patch_and_pruning(
    cluster: ClusterHandle, widget_crd: str, namespace: str
) -> None:
    widget = widget_manifest("w2", namespace, 2)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(widget))
    cluster.kubectl(
        "patch",
        "widget",
        "w2",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Ready", "undeclared": 1}}),
    )
    status = get_json(cluster, "widget", "w2", "-n", namespace)["status"]
    assert status == {"phase": "Ready"}
    # A plain update cannot write status when the subresource is on.
    cluster.kubectl(
        "patch",
        "widget",
        "w2",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Hijacked"}}),
    )
    assert get_json(cluster, "widget", "w2", "-n", namespace)["status"] == {"phase": "Ready"}


def test_service_account_is_held_to_its_role(cluster: ClusterHandle, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "narrow", "-n", namespace)
    cluster.kubectl(
        "create", "role", "read-configmaps", "--verb=get,list", "--resource=configmaps", "-n", namespace
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "narrow-read",
        "--role=read-configmaps",
        f"--serviceaccount={namespace}:narrow",
        "-n",
        namespace,
    )
    token = cluster.kubectl("create", "token", "narrow", "-n", namespace).stdout.strip()
    as_sa = ("--token", token, "-n", namespace)
    allowed = cluster.kubectl("get", "configmaps", *as_sa, check=False)
    assert allowed.returncode == 0, allowed.stderr
    denied = cluster.kubectl("get", "secrets", *as_sa, check=False)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert f"system:serviceaccount:{namespace}:narrow" in denied.stderr
    denied_write = cluster.kubectl("create", "configmap", "x", *as_sa, check=False)
    assert "forbidden" in denied_write.stderr


def indexed_job(
    name: str,
    namespace: str,
    script: str,
    completions: int,
    backoff_limit_per_index: int = 0,
    env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "completions": completions,
            "parallelism": completions,
            "completionMode": "Indexed",
            "backoffLimitPerIndex": backoff_limit_per_index,
            "maxFailedIndexes": completions,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"nvidia.com/gpu.present": "true"},
                    "containers": [
                        {
                            "name": "worker",
                            "image": "local/worker:unused",
                            "command": [sys.executable, "-c", textwrap.dedent(script)],
                            "env": env or [],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                }
            },
        },
    }


def job_condition(cluster: ClusterHandle, name: str, namespace: str) -> str | None:
    job = get_json(cluster, "job", name, "-n", namespace)
    for condition in job.get("status", {}).get("conditions", []):
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return str(condition["type"])
    return None


def test_indexed_job_runs_each_pod_through_the_local_runner(
    cluster: ClusterHandle, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl(
        "create", "secret", "generic", "db", "--from-literal=uri=mongodb://example", "-n", namespace
    )
    script = f"""
        import os, pathlib
        index = os.environ["JOB_COMPLETION_INDEX"]
        pathlib.Path({str(tmp_path)!r}, "shard-" + index).write_text(
            os.environ["DATABASE_URI"] + " " + os.environ["POD_NAME"])
        print("shard", index, "done")
    """
    env = [
        {"name": "DATABASE_URI", "valueFrom": {"secretKeyRef": {"name": "db", "key": "uri"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(indexed_job("three", namespace, script, 3, env=env)))
    assert wait_until("job to finish", lambda: job_condition(cluster, "three", namespace), 120) == "Complete"
    outputs = sorted(p.name for p in tmp_path.iterdir())
    assert outputs == ["shard-0", "shard-1", "shard-2"]
    pods = get_json(cluster, "pods", "-n", namespace, "-l", "job-name=three")["items"]
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
    assert {p["spec"]["nodeName"] for p in pods} <= {"gpu-node-0", "gpu-node-1"}
    for pod in pods:
        assert (
            tmp_path / f"shard-{pod['metadata']['annotations']['batch.kubernetes.io/job-completion-index']}"
        ).read_text() == f"mongodb://example {pod['metadata']['name']}"


def test_failing_index_is_retried_per_backoff_limit_then_job_fails(
    cluster: ClusterHandle, namespace: str
) -> None:
    script = """
        import os, sys
        print("index", os.environ["JOB_COMPLETION_INDEX"], "failing on purpose")
        sys.exit(1 if os.environ["JOB_COMPLETION_INDEX"] == "1" else 0)
    """
    job = indexed_job("flaky", namespace, script, 2, backoff_limit_per_index=1)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(job))
    assert wait_until("job to finish", lambda: job_condition(cluster, "flaky", namespace), 180) == "Failed"
    status = get_json(cluster, "job", "flaky", "-n", namespace)["status"]
    assert status["failedIndexes"] == "1"
    assert status["completedIndexes"] == "0"
    pods = get_json(cluster, "pods", "-n", namespace, "-l", "job-name=flaky")["items"]
    failed = [
        p for p in pods if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1"
    ]
    assert len(failed) == 2  # the first try and one retry
    terminated = failed[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1
    assert "failing on purpose" in terminated["message"]


def test_deleting_an_owner_garbage_collects_what_it_owns(cluster: ClusterHandle, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner_uid = get_json(cluster, "configmap", "owner", "-n", namespace)["metadata"]["uid"]
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "namespace": namespace,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(owned))
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)
    wait_until(
        "owned ConfigMap to be collected",
        lambda: cluster.kubectl("get", "configmap", "owned", "-n", namespace, check=False).returncode != 0,
        60,
    )


def test_deleting_a_running_job_stops_its_local_processes(
    cluster: ClusterHandle, namespace: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    script = f"""
        import os, pathlib, time
        pathlib.Path({str(marker)!r}).write_text(str(os.getpid()))
        time.sleep(300)
    """
    cluster.kubectl("apply", "-f", "-", input=json.dumps(indexed_job("sleeper", namespace, script, 1)))
    pid = int(wait_until("the pod's process to start", lambda: marker.exists() and marker.read_text(), 60))
    cluster.kubectl("delete", "job", "sleeper", "-n", namespace, "--cascade=foreground", "--wait=false")

    def process_gone() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except OSError:
            return True

    wait_until("the local process to be stopped", process_gone, 60)
