"""Which runs keep a timer: only those where time can change what is due (controller/timing.py)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.timing import needs_timer


def body(
    phase: str | None, *conditions: tuple[str, str, str], deleting: bool = False, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "r", "uid": "u"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    status: dict[str, Any] = {"conditions": [{"type": t, "status": s, "reason": r} for t, s, r in conditions]}
    if phase is not None:
        status["phase"] = phase
    return {"metadata": metadata, "spec": spec, "status": status}


@pytest.mark.parametrize("phase", [None, "Pending", "Finalizing", "Discarding"])
def test_phases_with_deadlines_or_back_off_keep_the_timer(phase: str | None) -> None:
    assert needs_timer(body(phase))


@pytest.mark.parametrize("phase", ["Review", "Suspended", "Finalized", "Discarded"])
def test_idle_and_terminal_phases_have_no_timer(phase: str) -> None:
    assert not needs_timer(body(phase, ("ReviewReady", "True", "ReviewStatisticsUpdated")))


def test_review_with_a_finalize_asked_in_the_app_or_failed_keeps_the_timer() -> None:
    assert needs_timer(body("Review", ("Finalized", "False", "FinalizeRequested")))
    assert needs_timer(body("Review", ("Finalized", "False", "FinalizeFailed")))


def test_failed_for_good_has_no_timer_but_a_transient_failure_or_a_discard_does() -> None:
    assert not needs_timer(body("Failed", ("Validated", "False", "DatasetNotFound"), ("Failed", "True", "X")))
    assert needs_timer(body("Failed", ("Validated", "False", "DatabaseUnreachable"), ("Failed", "True", "X")))
    assert needs_timer(body("Failed", ("Failed", "True", "ShardFailed"), discard=True))
    assert not needs_timer(
        body(
            "Failed",
            ("Failed", "True", "ShardFailed"),
            ("Discarded", "True", "DiscardSucceeded"),
            discard=True,
        )
    )


def test_a_run_being_deleted_has_no_timer() -> None:
    assert not needs_timer(body("Pending", deleting=True))


def test_inferring_keeps_the_timer_only_until_a_worker_started() -> None:
    waiting = body("Inferring")
    waiting["status"]["shards"] = [{"index": 0, "state": "Pending"}, {"index": 1, "state": "Pending"}]
    assert needs_timer(waiting)
    assert needs_timer(body("Inferring"))  # no shard reported yet
    unscheduled = body("Inferring")  # a pod that is Pending (e.g. its PVC is missing) shows as Running
    unscheduled["status"]["shards"] = [{"index": 0, "state": "Running"}, {"index": 1, "state": "Pending"}]
    assert needs_timer(unscheduled)
    reported = body("Inferring")
    reported["status"]["shards"] = [
        {"index": 0, "state": "Running", "updatedAt": "2026-12-01T00:00:00Z"},
        {"index": 1, "state": "Pending"},
    ]
    assert not needs_timer(reported)
    ended = body("Inferring")
    ended["status"]["shards"] = [{"index": 0, "state": "Succeeded"}, {"index": 1, "state": "Running"}]
    assert not needs_timer(ended)
