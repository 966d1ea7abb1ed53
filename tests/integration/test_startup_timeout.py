"""Pods that never start fail the run after execution.startupTimeoutSeconds, naming the cause, end to end.

The real job controller reports a missing PriorityClass as FailedCreate Events on the
Job (no pod exists); the real scheduler reports a missing PVC on the pod's PodScheduled
condition. Either way the run leaves Inferring for Failed with reason StartupTimeout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest

pytestmark = pytest.mark.integration
QUICK = {"parallelism": 1, "startupTimeoutSeconds": 10}


@pytest.fixture
def secret(cluster: ClusterHandle, operator: Operator, mongo: Any) -> str:
    return database_secret(cluster, operator.namespace, mongo)


def failed_condition(run: dict[str, Any]) -> dict[str, Any]:
    found = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    return dict(found)


def assert_startup_timeout(operator: Operator, cluster: ClusterHandle, name: str, cause: str) -> None:
    run = operator.wait_for_phase(name, {"Failed", "Review"}, timeout=240)
    failed = failed_condition(run)
    assert (failed["status"], failed["reason"]) == ("True", "StartupTimeout"), json.dumps(run["status"])
    assert "startupTimeoutSeconds=10" in failed["message"] and cause in failed["message"], failed["message"]
    job = json.loads(
        cluster.kubectl("get", "job", run["status"]["jobName"], "-n", operator.namespace, "-o", "json").stdout
    )
    assert job["spec"]["suspend"] is True


def test_missing_priority_class(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 2)
    execution = {**QUICK, "priorityClassName": "no-such-class"}
    apply(
        cluster,
        run_manifest("no-priority-class", operator.namespace, dataset.name, triton, execution=execution),
    )
    assert_startup_timeout(operator, cluster, "no-priority-class", "no PriorityClass with name no-such-class")


def test_missing_pvc(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 2)
    media = {"persistentVolumeClaim": {"claimName": "no-such-claim", "mountPath": str(tmp_path / "images")}}
    manifest = run_manifest("no-pvc", operator.namespace, dataset.name, triton, execution=QUICK)
    manifest["spec"]["dataset"]["media"] = media
    apply(cluster, manifest)
    assert_startup_timeout(operator, cluster, "no-pvc", "no-such-claim")


def test_missing_worker_service_account(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    """No worker ServiceAccount: the validation step's pod is never created; the run fails, naming it."""
    namespace = operator.namespace
    account = json.loads(
        cluster.kubectl("get", "serviceaccount", "autolabel-worker", "-n", namespace, "-o", "json").stdout
    )
    cluster.kubectl("delete", "serviceaccount", "autolabel-worker", "-n", namespace)
    try:
        dataset = new_dataset(tmp_path, 2)
        apply(cluster, run_manifest("no-worker-sa", namespace, dataset.name, triton, execution=QUICK))
        run = operator.wait_for_phase("no-worker-sa", {"Failed", "Review"}, timeout=240)
        failed = failed_condition(run)
        assert (failed["status"], failed["reason"]) == ("True", "StartupTimeout"), json.dumps(run["status"])
        assert "never created" in failed["message"] and "autolabel-worker" in failed["message"], failed
        assert run["status"].get("jobName") is None  # no worker Job was ever made
    finally:
        metadata = {
            key: account["metadata"][key]
            for key in ("name", "namespace", "labels", "annotations")
            if key in account["metadata"]
        }
        restored = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(restored))
        # Tokens of the deleted account are dead: the review agent (if any) restarts with a new one.
        cluster.kubectl(
            "delete",
            "pod",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/component=review-agent",
            "--wait=false",
            check=False,
        )
