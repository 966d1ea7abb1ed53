"""The controller under faults: a killed worker, a killed controller, deletion and suspension mid-run.

Each run labels enough real images that there is time to act while it infers
(a change stream on the samples says when a write has landed); every test ends
by checking the dataset: each target sample carries exactly one prediction of
the run, none lost, none doubled.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest
from tests.integration.worker_helpers import wait_for_marked
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
SLOW_RUN: dict[str, Any] = {
    "execution": {"parallelism": 2, "maxInFlight": 1, "backoffLimitPerIndex": 2, "writeBatchSize": 4}
}


@pytest.fixture
def secret(cluster: ClusterHandle, operator: Operator, mongo: Any) -> str:
    return database_secret(cluster, operator.namespace, mongo)


def worker_pids(run_uid: str, shard: int | None = None) -> list[int]:
    """Local worker processes of the run (their env holds the run's uid and their shard index)."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            env = environ.read_bytes().split(b"\0")
            cmdline = (environ.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if b"worker" not in cmdline or not any(run_uid.encode() in item for item in env):
            continue
        if shard is not None and f"JOB_COMPLETION_INDEX={shard}".encode() not in env:
            continue
        pids.append(int(environ.parent.name))
    return pids


def labeled_by(dataset: Any, field: str, run_uid: str) -> int:
    dataset.reload()
    if not dataset.has_sample_field(f"{field}_run"):
        return 0
    return sum(1 for marker in dataset.values(f"{field}_run") if marker == run_uid)


def assert_each_sample_labeled_once(dataset: Any, field: str, run_uid: str) -> None:
    dataset.reload()
    markers = dataset.values(f"{field}_run")
    labels = dataset.values(field)
    assert markers.count(run_uid) == len(dataset)
    assert all(label is not None for label in labels)  # classification: one label per sample, never a list


def jobs_of(cluster: ClusterHandle, namespace: str, run_name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        cluster.kubectl(
            "get", "jobs", "-n", namespace, "-l", f"autolabel.dev/run={run_name}", "-o", "json"
        ).stdout
    )["items"]
    return items


def job_held(cluster: ClusterHandle, job: dict[str, Any]) -> bool:
    """The Job controller has seen `job` suspended (condition Suspended) and no pod of it runs on
    (each is finished or being deleted, which stops its processes)."""
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    current = json.loads(cluster.kubectl("get", "job", name, "-n", namespace, "-o", "json").stdout)
    status = current.get("status") or {}
    suspended = any(
        c["type"] == "Suspended" and c["status"] == "True" for c in status.get("conditions") or []
    )
    pods = json.loads(
        cluster.kubectl(
            "get", "pods", "-n", namespace, "-l", f"batch.kubernetes.io/job-name={name}", "-o", "json"
        ).stdout
    )["items"]
    running = [
        pod
        for pod in pods
        if not pod["metadata"].get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    return suspended and not status.get("active") and not running


def test_a_shard_killed_once_is_retried_and_the_run_completes(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 40)
    apply(cluster, run_manifest("retry-shard", operator.namespace, dataset.name, triton, **SLOW_RUN))
    uid = operator.wait_for_phase("retry-shard", {"Inferring"})["metadata"]["uid"]
    field = operator.get_run("retry-shard")["status"]["reviewField"]
    wait_for_marked(dataset, uid, 1, None, marker=f"{field}_run")  # the first write of either shard
    for pid in wait_until("shard 0's worker", lambda: worker_pids(uid, 0)):
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
    run = operator.wait_for_phase("retry-shard", {"Review", "Failed"}, timeout=300)
    assert run["status"]["phase"] == "Review", run["status"]
    shard0 = next(s for s in run["status"]["shards"] if s["index"] == 0)
    assert shard0["attempts"] == 2
    assert_each_sample_labeled_once(dataset, field, uid)


def test_a_shard_that_exhausts_its_retries_fails_the_run_naming_it(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 40)
    manifest = run_manifest(
        "exhausted",
        operator.namespace,
        dataset.name,
        triton,
        execution={"parallelism": 1, "maxInFlight": 1, "backoffLimitPerIndex": 0},
    )
    apply(cluster, manifest)
    uid = operator.wait_for_phase("exhausted", {"Inferring"})["metadata"]["uid"]
    pids = wait_until("the worker to start", lambda: worker_pids(uid, 0))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    run = operator.wait_for_phase("exhausted", {"Failed", "Review"}, timeout=180)
    assert run["status"]["phase"] == "Failed"
    failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "ShardFailed"
    assert "shard 0" in failed["message"] and "exit code 137" in failed["message"]


def test_controller_killed_mid_inference_resumes_without_duplicates(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 40)
    apply(cluster, run_manifest("restart-me", operator.namespace, dataset.name, triton, **SLOW_RUN))
    run = operator.wait_for_phase("restart-me", {"Inferring"})
    uid, job_name = run["metadata"]["uid"], run["status"]["jobName"]
    field = run["status"]["reviewField"]
    operator.kill()
    at_kill = labeled_by(dataset, field, uid)
    # Down until the workers have written on without it: the restarted controller meets work it never saw.
    wait_until(
        "the workers to write while the controller is down",
        lambda: labeled_by(dataset, field, uid) > at_kill or at_kill == len(dataset),
        120,
    )
    operator.start()
    run = operator.wait_for_phase("restart-me", {"Review", "Failed"}, timeout=300)
    assert run["status"]["phase"] == "Review", run["status"]
    assert [j["metadata"]["name"] for j in jobs_of(cluster, operator.namespace, "restart-me")] == [job_name]
    assert run["status"]["startTime"] and run["status"]["progress"]["summary"] == "40/40"
    assert_each_sample_labeled_once(dataset, run["status"]["reviewField"], uid)


def test_suspend_stops_the_shards_and_resume_skips_finished_samples(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 40)
    manifest = run_manifest("pause-me", operator.namespace, dataset.name, triton, **SLOW_RUN)
    apply(cluster, manifest)
    uid = operator.wait_for_phase("pause-me", {"Inferring"})["metadata"]["uid"]
    field = operator.get_run("pause-me")["status"]["reviewField"]
    wait_until("some samples labeled", lambda: labeled_by(dataset, field, uid) > 0)
    cluster.kubectl(
        "patch",
        "alr",
        "pause-me",
        "-n",
        operator.namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"suspend": True}}),
    )
    run = operator.wait_for_phase("pause-me", {"Suspended"})
    job = jobs_of(cluster, operator.namespace, "pause-me")[0]
    assert job["spec"]["suspend"] is True
    wait_until("worker processes to stop", lambda: not worker_pids(uid), 60)
    done_while_suspended = labeled_by(dataset, field, uid)
    assert done_while_suspended > 0
    # The Job controller has taken the suspension in (its Suspended condition) and no pod runs on:
    # nothing can write any more until the run is resumed.
    wait_until("the Job suspended by its controller, without pods", lambda: job_held(cluster, job), 60)
    assert labeled_by(dataset, field, uid) == done_while_suspended  # nothing runs while suspended
    cluster.kubectl(
        "patch",
        "alr",
        "pause-me",
        "-n",
        operator.namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"suspend": False}}),
    )
    run = operator.wait_for_phase("pause-me", {"Review", "Failed"}, timeout=300)
    assert run["status"]["phase"] == "Review", run["status"]
    suspended = next(c for c in run["status"]["conditions"] if c["type"] == "Suspended")
    assert suspended["status"] == "False" and suspended["reason"] == "Resumed"
    assert_each_sample_labeled_once(dataset, field, uid)


def test_deleting_a_run_mid_inference_removes_jobs_and_by_policy_its_predictions(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 40)
    manifest = run_manifest(
        "delete-me", operator.namespace, dataset.name, triton, deletionPolicy="delete", **SLOW_RUN
    )
    apply(cluster, manifest)
    uid = operator.wait_for_phase("delete-me", {"Inferring"})["metadata"]["uid"]
    field = operator.get_run("delete-me")["status"]["reviewField"]
    wait_until("some samples labeled", lambda: labeled_by(dataset, field, uid) > 0)
    cluster.kubectl("delete", "alr", "delete-me", "-n", operator.namespace, "--timeout=120s")
    wait_until("the Job to be collected", lambda: not jobs_of(cluster, operator.namespace, "delete-me"), 60)
    wait_until("the workers to stop", lambda: not worker_pids(uid), 60)
    dataset.reload()
    assert not dataset.has_sample_field(field)
    assert not dataset.has_sample_field(f"{field}_run")


def test_progress_is_reported_while_inferring(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    # One shard, one request in flight: long enough (~10 s here) to be seen part-way; progress counts
    # written samples, so small write batches make it move often.
    dataset = new_dataset(tmp_path, 300)
    apply(
        cluster,
        run_manifest(
            "progressing",
            operator.namespace,
            dataset.name,
            triton,
            execution={"parallelism": 1, "maxInFlight": 1, "writeBatchSize": 16},
        ),
    )
    operator.wait_for_phase("progressing", {"Inferring"})

    def partial_progress() -> bool:
        progress = operator.get_run("progressing")["status"].get("progress") or {}
        return 0 < int(progress.get("processed", 0)) < 300

    wait_until("status.progress between 0 and 300", partial_progress, 120)
    shown = cluster.kubectl("get", "alr", "progressing", "-n", operator.namespace).stdout
    assert "/300" in shown
    operator.wait_for_phase("progressing", {"Review"}, timeout=300)


def test_an_unreachable_database_fails_validation_and_never_blocks_deletion(
    cluster: ClusterHandle, operator: Operator, triton: Any, tmp_path: Path
) -> None:
    dead = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "dead-db", "namespace": operator.namespace},
        "stringData": {"uri": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=500&connectTimeoutMS=500"},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(dead))
    manifest = run_manifest("dead-db", operator.namespace, "any", triton, deletionPolicy="delete")
    manifest["spec"]["dataset"]["databaseSecretRef"]["name"] = "dead-db"
    apply(cluster, manifest)
    run = operator.wait_for_phase("dead-db", {"Failed", "Review"}, timeout=120)
    failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DatabaseUnreachable"
    cluster.kubectl("delete", "alr", "dead-db", "-n", operator.namespace, "--wait=false")

    def gone() -> bool:
        result = cluster.kubectl("get", "alr", "dead-db", "-n", operator.namespace, check=False)
        return result.returncode != 0

    wait_until("the run to be deleted despite the dead database", gone, 180)
    events = json.loads(
        cluster.kubectl(
            "get",
            "events",
            "-n",
            operator.namespace,
            "--field-selector=involvedObject.name=dead-db",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert "CleanupAbandoned" in {event["reason"] for event in events}
