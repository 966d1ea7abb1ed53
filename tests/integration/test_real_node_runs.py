"""Whole runs on the real node: the chart's controller and every pod of the run in containers.

The chart is installed with the image built from the Dockerfile; the controller
runs as its Deployment, and the run's validation step, worker Job, review agent
and finalize step run as containers of that image on `real-node-0`, under the
restricted Pod Security level, with the in-cluster configuration. The images lie
in a MinIO bucket and the dataset in a mongod replica set, reached from the pods
over the bridge (tests/fixtures/realnode.py). The model is served by the tier's
Triton (endpoint mode) or by the Triton image (tools/cluster/tritonimage.py) as
the native sidecar of each worker pod (sidecar mode).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.realnode import REAL_RUNS, RealServices, controller_pod, controller_pods
from tests.integration.run_helpers import apply, database_secret, grpc_address, run_manifest
from tests.integration.test_controller_faults import assert_each_sample_labeled_once, labeled_by
from tests.integration.test_object_storage import bucket_dataset, media, s3_secret
from tests.waiting import wait_until
from tools.cluster.chart import SYSTEM_NAMESPACE
from tools.cluster.nodeimages import LocalImage
from tools.cluster.pki import NODE_NAME

pytestmark = [pytest.mark.integration, pytest.mark.realnode]


@pytest.fixture(scope="module")
def run_secrets(real_cluster: ClusterHandle, real_services: RealServices, installed_chart: Any) -> str:
    """The database Secret (the mongod's URI on the bridge) and the bucket's credentials Secret."""
    database_secret(real_cluster, REAL_RUNS, real_services.mongo)
    return s3_secret(real_cluster, REAL_RUNS, real_services.minio.credentials_env(), "media-keys")


def get_run(cluster: ClusterHandle, name: str) -> dict[str, Any]:
    run: dict[str, Any] = json.loads(
        cluster.kubectl("get", "autolabelrun", name, "-n", REAL_RUNS, "-o", "json").stdout
    )
    return run


def wait_for_phase(cluster: ClusterHandle, name: str, phases: set[str], timeout: float) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        run = get_run(cluster, name)
        return run if run.get("status", {}).get("phase") in phases else None

    result: dict[str, Any] = wait_until(f"run {name} in {phases}", reached, timeout=timeout)
    return result


def pods_of(cluster: ClusterHandle, run: str, component: str) -> list[dict[str, Any]]:
    selector = f"autolabel.dev/run={run},app.kubernetes.io/component={component}"
    pods: list[dict[str, Any]] = json.loads(
        cluster.kubectl("get", "pods", "-n", REAL_RUNS, "-l", selector, "-o", "json").stdout
    )["items"]
    return pods


def running_container_id(pod: dict[str, Any], container: str) -> str | None:
    for status in pod.get("status", {}).get("containerStatuses", []):
        if status["name"] == container and "running" in status.get("state", {}):
            return str(status["containerID"]).removeprefix("containerd://")
    return None


def finalize_all(cluster: ClusterHandle, name: str) -> None:
    """GitOps: approve every label, then finalize, as a patch of the run's spec."""
    patch = {"spec": {"review": {"approve": [{"minConfidence": 0.0}]}, "finalize": True}}
    cluster.kubectl("patch", "autolabelrun", name, "-n", REAL_RUNS, "--type=merge", "-p", json.dumps(patch))


def test_an_endpoint_run_survives_a_killed_worker_and_a_deleted_controller_pod(
    real_cluster: ClusterHandle, real_services: RealServices, run_secrets: str, tmp_path: Path
) -> None:
    assert real_cluster.cluster is not None and real_cluster.cluster.node is not None
    count = 24
    dataset, bucket = bucket_dataset(real_services.minio, tmp_path, count)
    manifest = run_manifest(
        "real-endpoint",
        REAL_RUNS,
        dataset.name,
        real_services.triton,
        execution={
            "shards": 2,
            "parallelism": 2,
            "maxInFlight": 1,
            "writeBatchSize": 2,
            "backoffLimitPerIndex": 2,
        },
    )
    manifest["spec"]["dataset"]["media"] = media(real_services.minio, bucket, run_secrets)
    assert manifest["spec"]["model"]["endpoint"]["address"] == grpc_address(real_services.triton)
    apply(real_cluster, manifest)
    run = wait_for_phase(real_cluster, "real-endpoint", {"Inferring", "Failed"}, timeout=300)
    assert run["status"]["phase"] == "Inferring", json.dumps(run["status"], indent=1)
    uid, field = run["metadata"]["uid"], run["status"]["reviewField"]

    # A worker container killed mid-shard (SIGKILL through containerd, as the OOM killer would).
    def shard0_writing() -> str | None:
        if labeled_by(dataset, field, uid) == 0:
            return None
        pods = [p for p in pods_of(real_cluster, "real-endpoint", "worker") if _index(p) == 0]
        return next((cid for p in pods if (cid := running_container_id(p, "worker"))), None)

    container = wait_until("shard 0 writing in its container", shard0_writing, timeout=300)
    assert labeled_by(dataset, field, uid) < count
    ctr = real_cluster.cluster.node.ctr
    subprocess.run([*ctr, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", container], check=True)

    # The controller's pod deleted mid-run: its Deployment makes a new one, which picks the run up.
    old = controller_pod(real_cluster)["metadata"]["name"]
    real_cluster.kubectl("delete", "pod", old, "-n", SYSTEM_NAMESPACE, "--wait=false")
    wait_until(
        "a new controller pod running",
        lambda: any(
            p["metadata"]["name"] != old and running_container_id(p, "controller")
            for p in controller_pods(real_cluster)
        ),
        timeout=180,
    )

    run = wait_for_phase(real_cluster, "real-endpoint", {"Review", "Failed"}, timeout=600)
    assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)
    assert run["status"]["progress"]["summary"] == f"{count}/{count}"
    shard0 = next(s for s in run["status"]["shards"] if s["index"] == 0)
    assert shard0["attempts"] == 2, run["status"]["shards"]
    assert_each_sample_labeled_once(dataset, field, uid)

    # Every pod of the run ran here, in a container; the workers' logs hold their progress lines.
    workers = pods_of(real_cluster, "real-endpoint", "worker")
    assert {p["spec"]["nodeName"] for p in workers} == {NODE_NAME}
    killed = [p for p in workers if _exit_code(p) == 137]
    assert len(killed) == 1 and _index(killed[0]) == 0, [(_index(p), _exit_code(p)) for p in workers]
    for pod in workers:
        if _exit_code(pod) == 0:
            logs = real_cluster.kubectl(
                "logs", "-n", REAL_RUNS, pod["metadata"]["name"], "-c", "worker"
            ).stdout
            assert f"progress shard={_index(pod)} state=Succeeded processed=" in logs, logs[-2000:]

    finalize_all(real_cluster, "real-endpoint")
    run = wait_for_phase(real_cluster, "real-endpoint", {"Finalized", "Failed"}, timeout=300)
    assert run["status"]["phase"] == "Finalized", json.dumps(run["status"], indent=1)
    assert run["status"]["finalized"] == {"promoted": count, "discarded": 0}
    dataset.reload()
    label_field = manifest["spec"]["labelField"]
    assert sum(1 for label in dataset.values(label_field) if label is not None) == count
    steps = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in _run_pods(real_cluster)}
    # The validation and finalize steps and the database's review agent ran here too.
    assert {"worker", "dataset-step", "review-agent"} <= steps, steps


def _index(pod: dict[str, Any]) -> int:
    return int(pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])


def _exit_code(pod: dict[str, Any]) -> int | None:
    for status in pod.get("status", {}).get("containerStatuses", []):
        if status["name"] == "worker" and "terminated" in status.get("state", {}):
            return int(status["state"]["terminated"]["exitCode"])
    return None


def _run_pods(cluster: ClusterHandle) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = json.loads(
        cluster.kubectl("get", "pods", "-n", REAL_RUNS, "-o", "json").stdout
    )["items"]
    return [p for p in pods if p["spec"].get("nodeName") == NODE_NAME]


def test_a_sidecar_mode_run_goes_to_finalized_with_triton_in_each_worker_pod(
    real_cluster: ClusterHandle,
    real_services: RealServices,
    run_secrets: str,
    sidecar_image: LocalImage,
    tmp_path: Path,
) -> None:
    count = 8
    dataset, bucket = bucket_dataset(real_services.minio, tmp_path, count)
    manifest = run_manifest(
        "real-sidecar",
        REAL_RUNS,
        dataset.name,
        real_services.triton,
        task="detection",
        execution={"shards": 2, "parallelism": 2, "maxInFlight": 2},
    )
    manifest["spec"]["dataset"]["media"] = media(real_services.minio, bucket, run_secrets)
    # No endpoint: each worker pod starts Triton from the image as its native sidecar, with one model.
    model = manifest["spec"]["model"]
    del model["endpoint"]
    model["sidecar"] = {
        "image": sidecar_image.ref,
        "modelRepository": "/models",
        "args": ["--model-control-mode=explicit", f"--load-model={model['name']}"],
    }
    apply(real_cluster, manifest)
    run = wait_for_phase(real_cluster, "real-sidecar", {"Review", "Failed"}, timeout=600)
    assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)
    assert run["status"]["progress"]["summary"] == f"{count}/{count}"
    uid, field = run["metadata"]["uid"], run["status"]["reviewField"]
    assert labeled_by(dataset, field, uid) == count
    dataset.reload()
    detections = sum(len(d.detections) for d in dataset.values(field) if d is not None)
    assert detections > 0  # the astronaut's face, at least

    workers = pods_of(real_cluster, "real-sidecar", "worker")
    assert len(workers) == 2 and {p["spec"]["nodeName"] for p in workers} == {NODE_NAME}
    for pod in workers:
        [sidecar] = pod["status"]["initContainerStatuses"]
        assert sidecar["name"] == "triton" and sidecar["image"].endswith(sidecar_image.ref.split("/")[-1])
        assert sidecar["containerID"].startswith("containerd://")
        assert _exit_code(pod) == 0
        triton_logs = real_cluster.kubectl(
            "logs", "-n", REAL_RUNS, pod["metadata"]["name"], "-c", "triton"
        ).stdout
        assert "Started GRPCInferenceService" in triton_logs, triton_logs[-2000:]
        # Only the worker holds the ServiceAccount token, and it reported progress with it.
        assert pod["spec"]["automountServiceAccountToken"] is False
        token_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
        [worker] = pod["spec"]["containers"]
        [triton] = pod["spec"]["initContainers"]
        assert token_dir in {m["mountPath"] for m in worker["volumeMounts"]}
        assert token_dir not in {m["mountPath"] for m in triton.get("volumeMounts", [])}
        worker_logs = real_cluster.kubectl(
            "logs", "-n", REAL_RUNS, pod["metadata"]["name"], "-c", "worker"
        ).stdout
        assert "progress patch of configmap" not in worker_logs, worker_logs[-2000:]

    finalize_all(real_cluster, "real-sidecar")
    run = wait_for_phase(real_cluster, "real-sidecar", {"Finalized", "Failed"}, timeout=300)
    assert run["status"]["phase"] == "Finalized", json.dumps(run["status"], indent=1)
    assert run["status"]["finalized"] == {"promoted": detections, "discarded": 0}
    dataset.reload()
    kept = dataset.values(manifest["spec"]["labelField"])
    assert sum(len(d.detections) for d in kept if d is not None) == detections
