"""Runs queued by the real Kueue controller: quota, suspension through Kueue, preemption, a missing queue.

Real control plane, the real Kueue (built from its Go module, webhooks served to
our API server), the real controller with the chart's RBAC, real worker processes,
Triton and FiftyOne. The queues are those of ``examples/kueue/queues.yaml`` with one
GPU of quota, and every run is ``examples/classification-kueue.yaml`` (dataset,
Triton address, namespace, name and label field set for the test): each run's worker
asks for that one GPU, so two runs can never hold it together.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, grpc_address, new_dataset
from tests.integration.test_controller_faults import assert_each_sample_labeled_once, labeled_by, worker_pids
from tests.waiting import POLL_INTERVAL_S, wait_until

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "classification-kueue.yaml"


@pytest.fixture
def secret(cluster: ClusterHandle, operator: Operator, mongo: Any) -> str:
    return database_secret(cluster, operator.namespace, mongo)


def queued_run(name: str, operator: Operator, dataset: Any, triton: Any, **execution: Any) -> dict[str, Any]:
    """examples/classification-kueue.yaml for this test's namespace, dataset and Triton."""
    manifest: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"] = {"name": name, "namespace": operator.namespace}
    spec = manifest["spec"]
    spec["dataset"]["name"] = dataset.name
    spec["model"]["endpoint"]["address"] = grpc_address(triton)
    spec["labelField"] = f"q_{uuid.uuid4().hex[:6]}"
    spec["execution"].update(execution)
    return manifest


def condition(run: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in (run.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return found[0] if found else {}


def wait_for(operator: Operator, name: str, check: Any, what: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = operator.get_run(name)
        if check(run):
            return run
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}; status {json.dumps(run.get('status'), indent=1)}"
        f"\n{operator.log_tail()}"
    )


def phase(run: dict[str, Any]) -> str:
    return str((run.get("status") or {}).get("phase"))


@contextmanager
def watch_workers(uids: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Samples, every 0.5 s, which runs have worker processes."""
    seen: dict[str, Any] = {"together": [], "ran": set()}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            running = {name for name, uid in uids.items() if worker_pids(uid)}
            seen["ran"] |= running
            if len(running) > 1:
                seen["together"].append(sorted(running))
            stop.wait(POLL_INTERVAL_S)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=5)


def workloads_of(cluster: ClusterHandle, namespace: str, job: str) -> list[dict[str, Any]]:
    workloads = json.loads(
        cluster.kubectl("get", "workloads.kueue.x-k8s.io", "-n", namespace, "-o", "json").stdout
    )
    return [
        w
        for w in workloads["items"]
        if any(owner.get("name") == job for owner in w["metadata"].get("ownerReferences") or [])
    ]


def workload_of(cluster: ClusterHandle, namespace: str, job: str) -> dict[str, Any]:
    owned = workloads_of(cluster, namespace, job)
    assert owned, f"no Workload owned by Job {job}"
    return dict(owned[0])


def quota_probe(namespace: str, queue: str) -> dict[str, Any]:
    """A Job asking `queue` for one GPU; its pod selects no node, so it never runs anything."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "quota-probe",
            "namespace": namespace,
            "labels": {"kueue.x-k8s.io/queue-name": queue},
        },
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"autolabel.dev/no-such-node": "true"},
                    "containers": [
                        {
                            "name": "probe",
                            "image": "busybox",
                            "command": ["true"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                }
            },
        },
    }


def admitted(workload: dict[str, Any]) -> bool:
    conditions = (workload.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Admitted" and c["status"] == "True" for c in conditions)


def test_two_runs_needing_the_whole_quota_run_one_after_the_other_and_suspend_acts_through_kueue(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, gpu_queue: str, tmp_path: Path
) -> None:
    namespace = operator.namespace
    first = queued_run("kueue-first", operator, new_dataset(tmp_path / "a", 10), triton, queueName=gpu_queue)
    second_dataset = new_dataset(tmp_path / "b", 10)
    second = queued_run("kueue-second", operator, second_dataset, triton, queueName=gpu_queue)
    apply(cluster, first)
    wait_for(operator, "kueue-first", lambda r: phase(r) == "Inferring", "the first run admitted")
    uids = {"kueue-first": operator.get_run("kueue-first")["metadata"]["uid"]}
    apply(cluster, second)
    waiting = wait_for(operator, "kueue-second", lambda r: phase(r) == "Queued", "the second run queued")
    uids["kueue-second"] = waiting["metadata"]["uid"]
    queued = condition(waiting, "Queued")
    assert queued["reason"] == "WaitingForQuota" and "LocalQueue gpu" in queued["message"], queued
    listed = cluster.kubectl("get", "alr", "kueue-second", "-n", namespace).stdout
    assert "Queued" in listed, listed

    with watch_workers(uids) as seen:
        # spec.suspend on the queued run: Kueue's Workload is deactivated, the Job stays held.
        cluster.kubectl(
            "patch", "alr", "kueue-second", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
        )
        wait_for(operator, "kueue-second", lambda r: phase(r) == "Suspended", "the queued run suspended")
        job = waiting["status"]["jobName"]
        wait_until(
            "the Workload deactivated",
            lambda: workload_of(cluster, namespace, job)["spec"].get("active") is False,
            60,
        )
        wait_for(operator, "kueue-first", lambda r: phase(r) == "Review", "the first run done", timeout=420)
        # The GPU is free now. Kueue gives it to the next Job that asks (a probe): it has decided
        # with the quota free, and the suspended run must still be held.
        cluster.kubectl("apply", "-f", "-", input=json.dumps(quota_probe(namespace, gpu_queue)))

        def probe_admitted() -> bool:
            held = json.loads(cluster.kubectl("get", "job", job, "-n", namespace, "-o", "json").stdout)
            assert held["spec"]["suspend"] is True, "Kueue started the suspended run"
            return any(admitted(w) for w in workloads_of(cluster, namespace, "quota-probe"))

        wait_until("Kueue to admit the probe with the GPU the first run freed", probe_admitted, 60)
        assert not worker_pids(uids["kueue-second"])
        cluster.kubectl("delete", "job", "quota-probe", "-n", namespace, "--wait=true")
        cluster.kubectl(
            "patch",
            "alr",
            "kueue-second",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec":{"suspend":false}}',
        )
        done = wait_for(
            operator, "kueue-second", lambda r: phase(r) in {"Review", "Failed"}, "second done", 420
        )
    assert phase(done) == "Review", json.dumps(done["status"], indent=1)
    assert condition(done, "Queued")["reason"] == "Admitted"
    assert seen["ran"] == {"kueue-first", "kueue-second"}
    assert seen["together"] == [], f"both runs had workers at once: {seen['together'][:3]}"
    assert_each_sample_labeled_once(second_dataset, done["status"]["reviewField"], uids["kueue-second"])


def test_a_preempted_run_keeps_its_labels_and_resumes(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, gpu_queue: str, tmp_path: Path
) -> None:
    low_dataset, high_dataset = new_dataset(tmp_path / "low", 40), new_dataset(tmp_path / "high", 6)
    low = queued_run("kueue-low", operator, low_dataset, triton, queueName=gpu_queue)
    high = queued_run(
        "kueue-high",
        operator,
        high_dataset,
        triton,
        queueName=gpu_queue,
        priorityClassName="autolabel-urgent",
    )
    apply(cluster, low)
    started = wait_for(operator, "kueue-low", lambda r: phase(r) == "Inferring", "the low run admitted")
    uid, field = started["metadata"]["uid"], started["status"]["reviewField"]  # the staging field
    wait_until("the low run labeled some samples", lambda: labeled_by(low_dataset, field, uid) >= 4, 300)
    progress: list[int] = []

    def preempted_seen(r: dict[str, Any]) -> bool:
        progress.append(int(((r.get("status") or {}).get("progress") or {}).get("processed") or 0))
        return condition(r, "Queued").get("reason") == "Preempted"

    apply(cluster, high)
    preempted = wait_for(operator, "kueue-low", preempted_seen, "the low run preempted", timeout=180)
    assert phase(preempted) == "Queued" and "Failed" not in {
        c["type"] for c in preempted["status"]["conditions"] if c["status"] == "True"
    }
    kept = labeled_by(low_dataset, field, uid)
    assert 4 <= kept < len(low_dataset), "the low run finished before it was preempted; give it more images"
    wait_until("the preempted run's workers stopped", lambda: not worker_pids(uid), 60)

    high_done = wait_for(operator, "kueue-high", lambda r: phase(r) in {"Review", "Failed"}, "high done", 420)
    assert phase(high_done) == "Review", json.dumps(high_done["status"], indent=1)
    assert labeled_by(low_dataset, field, uid) >= kept  # nothing of the preempted run was lost

    def low_progress(r: dict[str, Any]) -> bool:
        progress.append(int(((r.get("status") or {}).get("progress") or {}).get("processed") or 0))
        return phase(r) in {"Review", "Failed"}

    done = wait_for(operator, "kueue-low", low_progress, "the low run resumed and done", timeout=600)
    assert phase(done) == "Review", json.dumps(done["status"], indent=1)
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    assert_each_sample_labeled_once(low_dataset, field, uid)
    assert_each_sample_labeled_once(
        high_dataset, high_done["status"]["reviewField"], high_done["metadata"]["uid"]
    )


def test_a_queue_name_without_a_local_queue_fails_with_the_reason(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, gpu_queue: str, tmp_path: Path
) -> None:
    manifest = queued_run(
        "kueue-nowhere", operator, new_dataset(tmp_path, 2), triton, queueName="no-such-queue"
    )
    apply(cluster, manifest)
    failed = wait_for(operator, "kueue-nowhere", lambda r: phase(r) == "Failed", "the run failed")
    reason = condition(failed, "Failed")
    assert reason["reason"] == "QueueNotFound"
    assert "'no-such-queue'" in reason["message"] and operator.namespace in reason["message"]
    assert not failed["status"].get("jobName")
