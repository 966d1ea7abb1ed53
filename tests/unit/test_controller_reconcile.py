"""The pure reconcile: validation, Job creation, shard states, phases, suspension, Events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from contract.verdicts import ValidationReason
from controller.api import AutoLabelRun, Phase
from controller.reconcile import reconcile
from controller.reconcile_types import Observed, Validation
from controller.shards import parse_index_ranges, parse_progress

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def run(status: dict[str, Any] | None = None, generation: int = 1, **spec: Any) -> AutoLabelRun:
    body: dict[str, Any] = {
        "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "generation": generation},
        "spec": {
            "task": "classification",
            "dataset": {"name": "d", "target": {"all": True}, "databaseSecretRef": {"name": "db"}},
            "model": {"endpoint": {"address": "t:8001"}, "name": "m", "outputFormat": "logits"},
            "labelField": "pred",
            "execution": {"parallelism": 2},
            **spec,
        },
        "status": status or {},
    }
    return AutoLabelRun.from_body(body)


def conditions(status: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in status.conditions}


def job(
    completed: str = "", failed: str = "", condition: dict[str, str] | None = None, suspend: bool = False
) -> dict[str, Any]:
    status: dict[str, Any] = {"completedIndexes": completed, "failedIndexes": failed}
    if condition:
        status["conditions"] = [{**condition, "status": "True"}]
    return {"metadata": {"name": "alr-r"}, "spec": {"suspend": suspend}, "status": status}


def pod(
    index: int,
    phase: str,
    exit_code: int | None = None,
    message: str = "",
    created: str = "2026-11-28T12:00:00Z",
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if exit_code is not None:
        status["containerStatuses"] = [{"state": {"terminated": {"exitCode": exit_code, "message": message}}}]
    return {
        "metadata": {
            "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
            "creationTimestamp": created,
        },
        "status": status,
    }


def validated(total: int = 10) -> AutoLabelRun:
    first = reconcile(
        run(),
        Observed(now=NOW, validation=Validation(1, True, ValidationReason.VALIDATION_PASSED, "ok", total)),
    )
    return run(status=first.status.dump())


def test_a_new_run_asks_for_validation_and_waits_pending() -> None:
    actions = reconcile(run(), Observed(now=NOW))
    assert actions.validate and actions.create_job is None
    assert actions.status.phase is Phase.PENDING
    assert conditions(actions.status)["Validated"] == ("Unknown", "ValidationPending")


def test_a_failed_validation_fails_the_run_with_its_reason_and_a_warning() -> None:
    verdict = Validation(1, False, ValidationReason.DATASET_NOT_FOUND, "dataset 'd' does not exist")
    actions = reconcile(run(), Observed(now=NOW, validation=verdict))
    assert actions.status.phase is Phase.FAILED and actions.create_job is None
    assert conditions(actions.status)["Failed"] == ("True", "DatasetNotFound")
    assert actions.status.message == "dataset 'd' does not exist"
    assert any(e.type == "Warning" and e.reason == "DatasetNotFound" for e in actions.events)
    # The same generation is not validated again...
    again = reconcile(run(status=actions.status.dump()), Observed(now=NOW))
    assert not again.validate and again.status.phase is Phase.FAILED and not again.events
    # ...but a corrected spec (new generation) is.
    fixed = reconcile(run(status=actions.status.dump(), generation=2), Observed(now=NOW))
    assert fixed.validate


def test_a_passed_validation_creates_the_progress_config_map_and_job() -> None:
    verdict = Validation(1, True, ValidationReason.VALIDATION_PASSED, "10 target samples", 10)
    actions = reconcile(run(), Observed(now=NOW, validation=verdict))
    assert actions.create_job is not None and actions.create_progress_config_map is not None
    assert actions.status.phase is Phase.INFERRING
    assert actions.status.job_name == actions.create_job["metadata"]["name"]
    assert actions.status.progress is not None and actions.status.progress.summary == "0/10"
    assert actions.status.start_time == NOW


def test_the_job_is_created_again_when_missing_but_never_twice_when_present() -> None:
    current = validated()
    assert reconcile(current, Observed(now=NOW)).create_job is not None  # e.g. deleted by hand
    assert reconcile(current, Observed(now=NOW, job=job())).create_job is None


def test_shards_progress_and_completion() -> None:
    current = validated(total=10)
    progress = parse_progress(
        {
            "shard-0": json.dumps({"processed": 5, "failed": 1, "total": 5}),
            "shard-1": json.dumps({"processed": 2, "total": 5, "imagesPerSecond": 3.5}),
        }
    )
    actions = reconcile(
        current,
        Observed(
            now=NOW,
            job=job(completed="0"),
            pods=[pod(0, "Succeeded", 0), pod(1, "Running")],
            progress=progress,
        ),
    )
    assert [(s.state.value, s.processed) for s in actions.status.shards] == [("Succeeded", 5), ("Running", 2)]
    assert actions.status.progress is not None
    assert (actions.status.progress.summary, actions.status.progress.failed) == ("7/10", 1)
    assert actions.status.progress.images_per_second == 3.5
    assert actions.status.phase is Phase.INFERRING
    done = reconcile(
        run(status=actions.status.dump()),
        Observed(now=NOW, job=job(completed="0-1", condition={"type": "Complete"})),
    )
    assert done.status.phase is Phase.REVIEW and done.status.completion_time == NOW
    assert done.status.progress is not None and done.status.progress.images_per_second == 7.0  # 7 in <= 1 s
    assert conditions(done.status)["InferenceComplete"] == ("True", "AllShardsSucceeded")


def test_a_shard_out_of_retries_fails_the_run_naming_it() -> None:
    pods = [
        pod(1, "Failed", 1, "loading\nfatal: model went away", "2026-11-28T12:00:00Z"),
        pod(1, "Failed", 137, "", "2026-11-28T12:01:00Z"),
        pod(0, "Succeeded", 0),
    ]
    actions = reconcile(
        validated(),
        Observed(
            now=NOW,
            pods=pods,
            job=job(completed="0", failed="1", condition={"type": "Failed", "reason": "FailedIndexes"}),
        ),
    )
    assert actions.status.phase is Phase.FAILED
    reason, message = conditions(actions.status)["Failed"][1], actions.status.message or ""
    assert reason == "ShardFailed"
    assert "shard 1 failed after 2 attempts" in message and "exit code 137" in message


def test_deadline_exceeded_has_its_own_reason() -> None:
    actions = reconcile(
        validated(), Observed(now=NOW, job=job(condition={"type": "Failed", "reason": "DeadlineExceeded"}))
    )
    assert conditions(actions.status)["Failed"][1] == "DeadlineExceeded"


def test_suspend_patches_the_job_and_resume_patches_it_back() -> None:
    current = validated()
    suspended = run(status=current.status.dump(), generation=2, suspend=True)
    actions = reconcile(suspended, Observed(now=NOW, job=job()))
    assert actions.patch_job == {"spec": {"suspend": True}}
    assert actions.status.phase is Phase.SUSPENDED
    resumed = reconcile(
        run(status=actions.status.dump(), generation=3), Observed(now=NOW, job=job(suspend=True))
    )
    assert resumed.patch_job == {"spec": {"suspend": False}}
    assert conditions(resumed.status)["Suspended"] == ("False", "Resumed")
    assert resumed.status.phase is Phase.INFERRING


def test_reconcile_is_idempotent() -> None:
    observed = Observed(now=NOW, job=job(completed="0"), pods=[pod(0, "Succeeded", 0), pod(1, "Running")])
    first = reconcile(validated(), observed)
    second = reconcile(run(status=first.status.dump()), observed)
    assert second.status.dump() == first.status.dump()
    assert second.events == [] and second.create_job is None and second.patch_job is None


def test_index_ranges() -> None:
    assert parse_index_ranges("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert parse_index_ranges("") == set() and parse_index_ranges(None) == set()


def test_malformed_progress_entries_are_ignored() -> None:
    reports = parse_progress(
        {"shard-0": "{not json", "shard-x": "{}", "other": "1", "shard-2": json.dumps({"processed": 4})}
    )
    assert list(reports) == [2] and reports[2].processed == 4


def test_an_unreachable_database_is_checked_again_without_flapping() -> None:
    verdict = Validation(1, False, ValidationReason.DATABASE_UNREACHABLE, "cannot reach the database")
    failed = reconcile(run(), Observed(now=NOW, validation=verdict))
    assert failed.status.phase is Phase.FAILED
    again = reconcile(run(status=failed.status.dump()), Observed(now=NOW))
    assert again.validate  # environment problems are re-checked, the spec is unchanged
    assert again.status.phase is Phase.FAILED and not again.events  # no Pending/Failed flapping meanwhile
    healed = reconcile(
        run(status=failed.status.dump()),
        Observed(now=NOW, validation=Validation(1, True, ValidationReason.VALIDATION_PASSED, "ok", 3)),
    )
    assert healed.status.phase is Phase.INFERRING and healed.create_job is not None


def test_a_validation_step_without_a_verdict_fails_the_generation_and_is_not_run_again() -> None:
    from controller.api import Reason
    from controller.step_runner import StepState
    from controller.step_verdicts import StepVerdicts
    from controller.steps import Step

    step = Step(kind="validate", key="probe-g1", argv=("probe",), generation=1)
    crashed = StepState(step=step, job_name="alr-r-probe", error="exit code 1: TypeError: bogus")
    observed = StepVerdicts().take_in(run(), crashed, Observed(now=NOW), NOW)
    assert observed.validation is not None and observed.validation.reason is Reason.VALIDATION_CRASHED
    assert "TypeError: bogus" in observed.validation.message
    failed = reconcile(run(), observed)
    assert failed.status.phase is Phase.FAILED
    assert conditions(failed.status)["Failed"] == ("True", Reason.VALIDATION_CRASHED)
    # The next passes (a timer, a restarted controller) see the settled generation: no new step.
    again = reconcile(run(status=failed.status.dump()), Observed(now=NOW))
    assert not again.validate and again.status.phase is Phase.FAILED and not again.events
    edited = reconcile(run(status=failed.status.dump(), generation=2), Observed(now=NOW))
    assert edited.validate  # a spec edit validates the new generation
