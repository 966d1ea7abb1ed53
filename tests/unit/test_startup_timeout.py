"""Pods that never start: after execution.startupTimeoutSeconds the run fails with the cause seen."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.api import Phase
from controller.reconcile import reconcile
from controller.reconcile_types import Observed
from controller.startup import startup_cause, startup_overdue
from tests.unit.test_controller_reconcile import NOW, conditions, run, validated

STARTED = (NOW - timedelta(seconds=901)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(start: str | None = STARTED, suspend: bool = False, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "alr-r"},
        "spec": {"suspend": suspend},
        "status": {**({"startTime": start} if start else {}), **status},
    }


def pending_pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "alr-r-0-abcde"}, "status": {"phase": "Pending", **status}}


UNSCHEDULABLE = pending_pod(
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": '0/1 nodes are available: persistentvolumeclaim "media" not found.',
        }
    ]
)
SIDECAR_NOT_READY = pending_pod(
    initContainerStatuses=[
        {"name": "triton", "started": False, "ready": False, "restartCount": 3, "state": {"running": {}}}
    ],
    containerStatuses=[{"name": "worker", "state": {"waiting": {"reason": "PodInitializing"}}}],
)
IMAGE_PULL = pending_pod(
    containerStatuses=[
        {
            "name": "worker",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x:1"'}},
        }
    ]
)
NO_SERVICE_ACCOUNT = {
    "type": "Warning",
    "reason": "FailedCreate",
    "message": 'Error creating: pods "alr-r-0-x" is forbidden: error looking up service account '
    'runs/autolabel-worker: serviceaccount "autolabel-worker" not found',
    "lastTimestamp": "2026-11-28T11:50:00Z",
}
NO_PRIORITY_CLASS = {
    "type": "Warning",
    "reason": "FailedCreate",
    "message": 'Error creating: pods "alr-r-0-y" is forbidden: no PriorityClass with name gpu-high was found',
    "lastTimestamp": "2026-11-28T11:55:00Z",
}


@pytest.mark.parametrize(
    ("pods", "events", "cause"),
    [
        ([UNSCHEDULABLE], [], 'persistentvolumeclaim "media" not found'),
        ([SIDECAR_NOT_READY], [], "sidecar triton runs but never became ready"),
        ([IMAGE_PULL], [], "ImagePullBackOff: Back-off pulling image"),
        ([], [NO_SERVICE_ACCOUNT], 'serviceaccount "autolabel-worker" not found'),
        ([], [NO_SERVICE_ACCOUNT, NO_PRIORITY_CLASS], "no PriorityClass with name gpu-high"),
        ([], [], "the Job created no pod"),
    ],
)
def test_the_run_fails_after_the_timeout_naming_the_cause(
    pods: list[dict[str, Any]], events: list[dict[str, Any]], cause: str
) -> None:
    actions = reconcile(validated(), Observed(now=NOW, job=job(), pods=pods, job_events=events))
    assert actions.status.phase is Phase.FAILED
    assert conditions(actions.status)["Failed"] == ("True", "StartupTimeout")
    message = actions.status.message or ""
    assert "startupTimeoutSeconds=900" in message and cause in message, message
    assert actions.patch_job == {"spec": {"suspend": True}}  # nothing starts late
    assert any(e.type == "Warning" and e.reason == "StartupTimeout" for e in actions.events)
    # Failed stays failed, the Job is not resumed.
    again = reconcile(run(status=actions.status.dump()), Observed(now=NOW, job=job(suspend=True), pods=pods))
    assert again.status.phase is Phase.FAILED and again.patch_job is None


def test_no_failure_before_the_timeout_while_suspended_or_once_a_worker_ran() -> None:
    spec = validated().spec
    early = (NOW - timedelta(seconds=899)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not startup_overdue(spec, job(start=early), [UNSCHEDULABLE], NOW)
    assert not startup_overdue(spec, job(start=None, suspend=True), [], NOW)  # queued in Kueue
    assert not startup_overdue(spec, job(suspend=True), [], NOW)
    running = pending_pod(containerStatuses=[{"name": "worker", "state": {"running": {}}}])
    assert not startup_overdue(spec, job(), [running], NOW)
    assert not startup_overdue(spec, job(completedIndexes="0"), [], NOW)
    assert startup_overdue(spec, job(), [UNSCHEDULABLE], NOW)
    actions = reconcile(validated(), Observed(now=NOW, job=job(start=early), pods=[UNSCHEDULABLE]))
    assert actions.status.phase is Phase.INFERRING


def test_the_timeout_is_the_specs() -> None:
    current = run(status=validated().status.dump(), execution={"parallelism": 2, "startupTimeoutSeconds": 60})
    soon = (NOW - timedelta(seconds=61)).strftime("%Y-%m-%dT%H:%M:%SZ")
    actions = reconcile(current, Observed(now=NOW, job=job(start=soon), pods=[UNSCHEDULABLE]))
    assert conditions(actions.status)["Failed"] == ("True", "StartupTimeout")


def test_the_latest_job_warning_wins_over_pod_states() -> None:
    assert "PriorityClass" in startup_cause([UNSCHEDULABLE], [NO_PRIORITY_CLASS, NO_SERVICE_ACCOUNT])
