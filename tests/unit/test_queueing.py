"""Runs queued by Kueue, in the pure reconcile: Kueue alone suspends and resumes the Job."""

from __future__ import annotations

from typing import Any

from contract.verdicts import ValidationReason
from controller.api import AutoLabelRun, Phase
from controller.reconcile import reconcile
from controller.reconcile_types import Observed, Validation
from tests.unit.test_controller_reconcile import NOW, conditions, run

QUEUED: dict[str, Any] = {"execution": {"parallelism": 1, "queueName": "gpu"}}


def validated(**spec: Any) -> AutoLabelRun:
    verdict = Validation(1, True, ValidationReason.VALIDATION_PASSED, "ok", 10)
    first = reconcile(run(**{**QUEUED, **spec}), Observed(now=NOW, validation=verdict))
    return run(status=first.status.dump(), **{**QUEUED, **spec})


def job(suspend: bool) -> dict[str, Any]:
    return {"metadata": {"name": "alr-r", "uid": "job-1"}, "spec": {"suspend": suspend}, "status": {}}


def workload(
    *conditions_: dict[str, str], active: bool = True, admitted_to: str | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions_)}
    if admitted_to:
        status["admission"] = {"clusterQueue": admitted_to}
    return {"metadata": {"name": "job-alr-r-1a2b3"}, "spec": {"active": active}, "status": status}


PENDING = {
    "type": "QuotaReserved",
    "status": "False",
    "reason": "Pending",
    "message": "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu",
}


def test_a_missing_local_queue_fails_before_any_job_exists() -> None:
    actions = reconcile(validated(), Observed(now=NOW, local_queue=False))
    assert actions.create_job is None
    assert actions.status.phase is Phase.FAILED
    assert conditions(actions.status)["Failed"] == ("True", "QueueNotFound")
    assert "spec.execution.queueName 'gpu'" in (actions.status.message or "")
    assert "namespace ns" in (actions.status.message or "")
    no_kueue = reconcile(validated(), Observed(now=NOW, local_queue=False, kueue_installed=False))
    assert "no Kueue" in (no_kueue.status.message or "")


def test_the_job_is_created_suspended_and_kueue_keeps_it_queued() -> None:
    created = reconcile(validated(), Observed(now=NOW, local_queue=True))
    assert created.create_job is not None and created.create_job["spec"]["suspend"] is True
    current = run(status=created.status.dump(), **QUEUED)
    held = reconcile(current, Observed(now=NOW, job=job(suspend=True), workload=workload(PENDING)))
    assert held.patch_job is None  # never unsuspended by the controller
    assert held.status.phase is Phase.QUEUED
    state, reason = conditions(held.status)["Queued"]
    assert (state, reason) == ("True", "WaitingForQuota")
    assert "insufficient unused quota for nvidia.com/gpu" in (held.status.message or "")


def test_admission_runs_the_shards_and_preemption_is_not_a_failure() -> None:
    base = run(status=reconcile(validated(), Observed(now=NOW, local_queue=True)).status.dump(), **QUEUED)
    admitted = reconcile(
        base, Observed(now=NOW, job=job(suspend=False), workload=workload(admitted_to="gpus"))
    )
    assert admitted.status.phase is Phase.INFERRING and admitted.patch_job is None
    assert conditions(admitted.status)["Queued"] == ("False", "Admitted")
    running = run(status=admitted.status.dump(), **QUEUED)
    evicted = {
        "type": "Evicted",
        "status": "True",
        "reason": "Preempted",
        "message": "Preempted to accommodate",
    }
    preempted = reconcile(running, Observed(now=NOW, job=job(suspend=True), workload=workload(evicted)))
    assert preempted.status.phase is Phase.QUEUED and preempted.patch_job is None
    assert conditions(preempted.status)["Queued"] == ("True", "Preempted")
    assert "skipping samples already labeled" in (preempted.status.message or "")
    assert "Failed" not in conditions(preempted.status)


def test_spec_suspend_deactivates_the_workload_and_resume_activates_it() -> None:
    base = run(status=reconcile(validated(), Observed(now=NOW, local_queue=True)).status.dump(), **QUEUED)
    suspended = run(status=base.status.dump(), suspend=True, **QUEUED)
    actions = reconcile(suspended, Observed(now=NOW, job=job(suspend=True), workload=workload(PENDING)))
    assert actions.patch_job is None
    assert actions.patch_workload == ("job-alr-r-1a2b3", {"spec": {"active": False}})
    assert actions.status.phase is Phase.SUSPENDED
    inactive = workload(PENDING, active=False)
    again = reconcile(suspended, Observed(now=NOW, job=job(suspend=True), workload=inactive))
    assert again.patch_workload is None  # already held
    resumed = run(status=actions.status.dump(), **QUEUED)
    back = reconcile(resumed, Observed(now=NOW, job=job(suspend=True), workload=inactive))
    assert back.patch_workload == ("job-alr-r-1a2b3", {"spec": {"active": True}})
    assert back.patch_job is None


def test_a_startup_timeout_of_an_admitted_run_frees_the_quota_through_kueue() -> None:
    base = run(status=reconcile(validated(), Observed(now=NOW, local_queue=True)).status.dump(), **QUEUED)
    admitted = job(suspend=False)
    admitted["status"] = {"startTime": "2026-11-28T10:00:00Z"}  # two hours before NOW, no worker ran
    actions = reconcile(base, Observed(now=NOW, job=admitted, workload=workload(admitted_to="gpus")))
    assert conditions(actions.status)["Failed"] == ("True", "StartupTimeout")
    assert actions.patch_job is None  # Kueue's Job: never suspended by the controller
    assert actions.patch_workload == ("job-alr-r-1a2b3", {"spec": {"active": False}})
