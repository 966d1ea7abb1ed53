"""The pure review step: what dataset work is due after inference, and how its outcome becomes status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contract.verdicts import DiscardVerdict, FinalizeVerdict, ReviewVerdict
from controller.api import Phase
from controller.reconcile import reconcile
from controller.reconcile_types import Observed
from controller.review import ReviewOutcome, ReviewWork
from tests.unit.test_controller_reconcile import NOW, conditions, run


def condition(kind: str, status: str, reason: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "lastTransitionTime": "2026-11-28T11:00:00Z"}


def in_review(extra: dict[str, Any] | None = None, generation: int = 1, **spec: Any) -> Any:
    status = {
        "jobName": "alr-r",
        "conditions": [
            condition("Validated", "True", "ValidationPassed"),
            condition("InferenceComplete", "True", "AllShardsSucceeded"),
            *((extra or {}).pop("conditions", [])),
        ],
        **(extra or {}),
    }
    return run(status=status, generation=generation, **spec)


STATS = {
    "total": 5,
    "approved": 2,
    "rejected": 1,
    "unreviewed": 2,
    "classes": [
        {"name": "cat", "count": 3, "meanConfidence": 0.8, "approved": 2, "rejected": 0},
        {"name": "dog", "count": 2, "meanConfidence": 0.4, "approved": 0, "rejected": 1},
    ],
    "problemTags": {"false_positive": 1, "ambiguous": 0},
}
AIDS = {"brainKey": "autolabel_r", "savedViews": ["autolabel-r-predictions"], "error": None}


def reviewed(generation: int = 1, updated: str = "2026-11-28T11:59:50Z", **spec: Any) -> Any:
    review = {**STATS, "savedViews": ["v"], "rulesAppliedGeneration": generation, "updatedAt": updated}
    return in_review({"review": review}, generation=generation, **spec)


def test_first_review_pass_applies_rules_creates_aids_and_counts() -> None:
    actions = reconcile(in_review(), Observed(now=NOW))
    assert actions.review == ReviewWork(1, apply_rules=True, visualize=True)
    assert actions.review.argv() == ["review", "--apply-rules", "--visualize"]
    assert actions.status.phase is Phase.REVIEW


def test_outcome_becomes_status_review_and_review_ready() -> None:
    work = ReviewWork(1, apply_rules=True, visualize=True)
    outcome = ReviewOutcome(
        work, result=ReviewVerdict.model_validate({"rules": {"changed": 3}, "aids": AIDS, "stats": STATS})
    )
    actions = reconcile(in_review(), Observed(now=NOW, review=outcome))
    review = actions.status.review
    assert review is not None and review.total == 5 and review.approved == 2 and review.unreviewed == 2
    assert [(c.name, c.count, c.approved) for c in review.classes] == [("cat", 3, 2), ("dog", 2, 0)]
    assert review.problem_tags == {"false_positive": 1, "ambiguous": 0}
    assert review.brain_key == "autolabel_r" and review.saved_views == ["autolabel-r-predictions"]
    assert review.rules_applied_generation == 1 and review.updated_at == NOW
    assert conditions(actions.status)["ReviewReady"] == ("True", "ReviewStatisticsUpdated")
    assert actions.status.message == "5 labels: 2 approved, 1 rejected, 2 unreviewed"
    assert actions.review is None  # no new work planned on the pass that applies an outcome
    assert "ReviewStatisticsUpdated" in {e.reason for e in actions.events}


def test_statistics_refresh_only_after_the_interval() -> None:
    fresh = reconcile(reviewed(updated="2026-11-28T11:59:50Z"), Observed(now=NOW))
    assert fresh.review is None
    stale = reconcile(reviewed(updated="2026-11-28T11:59:00Z"), Observed(now=NOW))
    assert stale.review == ReviewWork(1)
    assert stale.review.argv() == ["review"]


def test_a_new_generation_applies_the_rules_again_and_keeps_the_aids() -> None:
    body = reviewed(generation=1).model_dump(by_alias=True, mode="json")
    changed = run(status=body["status"], generation=2, review={"approve": [{"classes": ["cat"]}]})
    actions = reconcile(changed, Observed(now=NOW))
    assert actions.review == ReviewWork(2, apply_rules=True)
    outcome = ReviewOutcome(
        actions.review, result=ReviewVerdict.model_validate({"rules": {}, "aids": None, "stats": STATS})
    )
    after = reconcile(changed, Observed(now=NOW, review=outcome)).status.review
    assert after is not None and after.rules_applied_generation == 2 and after.saved_views == ["v"]


def test_quality_and_aids_errors_are_reported_not_fatal() -> None:
    stats = {
        **STATS,
        "quality": {
            "groundTruthField": "gt",
            "overall": {"precision": 0.5, "recall": 1.0, "mAP": 0.7, "labels": 5},
            "approved": {"precision": 1.0, "recall": 0.5, "labels": 2},
        },
    }
    aids = {**AIDS, "brainKey": None, "error": "compute_visualization failed: no umap"}
    outcome = ReviewOutcome(
        ReviewWork(1, visualize=True), result=ReviewVerdict.model_validate({"aids": aids, "stats": stats})
    )
    actions = reconcile(in_review(), Observed(now=NOW, review=outcome))
    quality = actions.status.review.quality if actions.status.review else None
    assert (
        quality is not None and quality.overall is not None and quality.overall.mean_average_precision == 0.7
    )
    assert quality.approved is not None and quality.approved.recall == 0.5
    assert "no umap" in (actions.status.message or "")


def test_a_failed_review_pass_is_retried_after_the_interval_only() -> None:
    outcome = ReviewOutcome(ReviewWork(1, apply_rules=True), error="review exited 1: boom")
    failed = reconcile(in_review(), Observed(now=NOW, review=outcome))
    assert conditions(failed.status)["ReviewReady"] == ("False", "ReviewStatisticsFailed")
    assert failed.status.phase is Phase.REVIEW
    again = run(status=failed.status.dump())
    assert reconcile(again, Observed(now=NOW, review_failed_at=NOW)).review is None
    later = NOW + timedelta(seconds=31)
    assert reconcile(again, Observed(now=later, review_failed_at=NOW)).review is not None


def test_finalize_runs_once_with_pending_rules_then_finalized() -> None:
    pending = reviewed(generation=1).model_dump(by_alias=True, mode="json")["status"]
    requested = run(status=pending, generation=2, finalize=True)
    actions = reconcile(requested, Observed(now=NOW))
    assert actions.status.phase is Phase.FINALIZING
    assert actions.review == ReviewWork(2, finalize=True, apply_rules=True)
    assert actions.review.argv() == ["finalize", "--apply-rules"]
    outcome = ReviewOutcome(actions.review, result=FinalizeVerdict(promoted=2, discarded=3))
    done = reconcile(requested, Observed(now=NOW, review=outcome))
    assert done.status.phase is Phase.FINALIZED
    assert done.status.finalized is not None and done.status.finalized.promoted == 2
    assert conditions(done.status)["Finalized"] == ("True", "FinalizeSucceeded")
    assert "kept 2 approved labels in 'pred'" in (done.status.message or "")
    finished = run(status=done.status.dump(), generation=2, finalize=True)
    assert reconcile(finished, Observed(now=NOW)).review is None


def test_a_failed_finalize_keeps_finalizing_and_retries() -> None:
    work = ReviewWork(1, finalize=True)
    failed = reconcile(reviewed(finalize=True), Observed(now=NOW, review=ReviewOutcome(work, error="killed")))
    assert failed.status.phase is Phase.FINALIZING
    assert conditions(failed.status)["Finalized"] == ("False", "FinalizeFailed")
    again = run(status=failed.status.dump(), finalize=True)
    assert reconcile(again, Observed(now=NOW + timedelta(seconds=5), review_failed_at=NOW)).review is None
    retry = reconcile(again, Observed(now=NOW + timedelta(seconds=31), review_failed_at=NOW)).review
    assert retry is not None and retry.finalize


def test_discard_from_review_and_from_failed() -> None:
    actions = reconcile(reviewed(discard=True), Observed(now=NOW))
    assert actions.status.phase is Phase.DISCARDING
    assert actions.review == ReviewWork(1, discard=True)
    assert actions.review.argv() == ["discard", "--review-aids"]
    done = reconcile(
        reviewed(discard=True),
        Observed(now=NOW, review=ReviewOutcome(actions.review, result=DiscardVerdict(removed=5))),
    )
    assert done.status.phase is Phase.DISCARDED and done.status.discarded is not None
    assert done.status.discarded.removed == 5
    failed_run = run(
        status={"conditions": [condition("Failed", "True", "ShardFailed")], "jobName": "alr-r"}, discard=True
    )
    assert reconcile(failed_run, Observed(now=NOW)).review == ReviewWork(1, discard=True)


def test_nothing_is_planned_before_inference_completes() -> None:
    inferring = run(
        status={"jobName": "alr-r", "conditions": [condition("Validated", "True", "ValidationPassed")]},
        finalize=False,
    )
    assert reconcile(inferring, Observed(now=NOW)).review is None


OTHER_IMAGE = "registry.example.com/someone/else:1"


def test_a_finalize_or_discard_with_an_image_outside_the_allow_list_makes_nothing() -> None:
    requests: list[dict[str, Any]] = [{"finalize": True}, {"discard": True}]
    for request in requests:
        execution = {"parallelism": 2, "image": OTHER_IMAGE}
        actions = reconcile(reviewed(generation=2, execution=execution, **request), Observed(now=NOW))
        assert actions.review is None and actions.create_job is None, request
        assert conditions(actions.status)["Failed"] == ("True", "ImageNotAllowed")
        assert OTHER_IMAGE in (actions.status.message or ""), actions.status.message
        # Set back to an allowed image (a new generation): the failure clears and the step is made.
        edited = run(status=actions.status.dump(), generation=3, **request)
        retried = reconcile(edited, Observed(now=NOW))
        assert retried.review is not None and (retried.review.finalize or retried.review.discard)
        assert conditions(retried.status)["Failed"][0] == "False"


def test_a_refused_run_is_never_discarded_with_its_image() -> None:
    refused = run(discard=True, execution={"parallelism": 2, "image": OTHER_IMAGE})
    actions = reconcile(refused, Observed(now=NOW))
    assert conditions(actions.status)["Failed"] == ("True", "ImageNotAllowed")
    assert actions.review is None and not actions.validate


def test_a_worker_job_made_again_after_start_has_its_image_checked() -> None:
    started = {
        "jobName": "alr-r",
        "conditions": [
            condition("Validated", "True", "ValidationPassed"),
            condition("InferenceComplete", "False", "JobCreated"),
        ],
    }
    allowed = reconcile(run(status=started), Observed(now=NOW))
    assert allowed.create_job is not None  # the Job is gone: made again
    edited = run(status=started, generation=2, execution={"parallelism": 2, "image": OTHER_IMAGE})
    refused = reconcile(edited, Observed(now=NOW))
    assert refused.create_job is None
    assert conditions(refused.status)["Failed"] == ("True", "ImageNotAllowed")
