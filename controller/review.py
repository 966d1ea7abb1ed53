"""The pure part of the phases after inference: what dataset work is due, and how its result becomes status.

Once ``InferenceComplete`` is True, each reconcile asks `plan` what to run. The
engine runs a finalize or a discard as a dataset step (a one-shot Job in the
run's namespace, `steps.py`) and hands a review pass to the namespace's review
agent (`review_agent.py`); either way a later reconcile gets a `ReviewOutcome`,
and `apply_outcome` turns it into status:

- ``spec.discard``: discard (also allowed from Failed), once; then ``Discarded``;
- ``spec.finalize``: finalize (rules of a new generation applied first), once; then ``Finalized``;
  a finalize request a reviewer recorded in the dataset from the App (reported by a
  review pass as ``finalizeRequested``, kept as ``Finalized=False/FinalizeRequested``) counts the same;
- otherwise, in Review: apply ``spec.review`` rules when the generation changed since
  ``status.review.rulesAppliedGeneration``; create the saved views and the embeddings
  visualization once; refresh the statistics every ``refreshIntervalSeconds`` (and
  right after rules or aids changed anything).

A failed attempt is retried after ``refreshIntervalSeconds`` (finalize and discard
after `RETRY_SECONDS`); `controller.step_verdicts` remembers when the last one failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contract.env import Command, Flag
from contract.verdicts import DiscardVerdict, FinalizeVerdict, ReviewVerdict
from controller.api import (
    AutoLabelRun,
    AutoLabelRunStatus,
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    ReviewStatus,
    find_condition,
    is_true,
)
from controller.api.status import DiscardStatus, FinalizeStatus, QualityStatus

RETRY_SECONDS = 30
ConditionChange = tuple[ConditionType, ConditionStatus, Reason, str]


@dataclass(frozen=True)
class ReviewWork:
    """Dataset work due for a run; exactly one of discard, finalize or a review pass."""

    generation: int
    discard: bool = False
    finalize: bool = False
    apply_rules: bool = False
    visualize: bool = False

    def argv(self) -> list[str]:
        """The worker's arguments doing this work, after the operator's step command."""
        if self.discard:
            return [Command.DISCARD.value, Flag.REVIEW_AIDS.value]
        command = [Command.FINALIZE.value if self.finalize else Command.REVIEW.value]
        if self.apply_rules:
            command.append(Flag.APPLY_RULES.value)
        if self.visualize:
            command.append(Flag.VISUALIZE.value)
        return command

    def describe(self) -> str:
        if self.discard:
            return "discard"
        return "finalize" if self.finalize else "review statistics"


@dataclass(frozen=True)
class ReviewOutcome:
    """What the step (or the review agent) answered: its verdict, or why there is none."""

    work: ReviewWork
    result: ReviewVerdict | FinalizeVerdict | DiscardVerdict | None = None
    error: str | None = None


def plan(
    run: AutoLabelRun, status: AutoLabelRunStatus, now: datetime, failed_at: datetime | None = None
) -> ReviewWork | None:
    """The dataset work due now for `run` with `status` (None: nothing)."""
    conditions = status.conditions
    if is_true(conditions, ConditionType.FINALIZED) or is_true(conditions, ConditionType.DISCARDED):
        return None
    generation = int(run.metadata.get("generation") or 0)
    complete = is_true(conditions, ConditionType.INFERENCE_COMPLETE)
    failed = is_true(conditions, ConditionType.FAILED)
    interval = run.spec.review.refresh_interval_seconds

    def waiting(seconds: float) -> bool:
        return failed_at is not None and (now - failed_at).total_seconds() < seconds

    if run.spec.discard:
        if (complete or failed) and not waiting(RETRY_SECONDS):
            return ReviewWork(generation, discard=True)
        return None
    if not complete or failed:
        return None
    review = status.review
    rules_due = review is None or review.rules_applied_generation != generation
    if run.spec.finalize or _requested_in_app(conditions):
        return (
            None if waiting(RETRY_SECONDS) else ReviewWork(generation, finalize=True, apply_rules=rules_due)
        )
    if waiting(interval):
        return None
    visualize_due = review is None or not review.saved_views
    stale = (
        review is None or review.updated_at is None or (now - review.updated_at).total_seconds() >= interval
    )
    if rules_due or visualize_due or stale:
        return ReviewWork(generation, apply_rules=rules_due, visualize=visualize_due)
    return None


def _requested_in_app(conditions: list[Condition]) -> bool:
    """Finalize was asked from the App (the condition stays False until finalize succeeds)."""
    condition = find_condition(conditions, ConditionType.FINALIZED)
    return condition is not None and condition.reason in (Reason.FINALIZE_REQUESTED, Reason.FINALIZE_FAILED)


def _review_status(
    previous: ReviewStatus | None, outcome: ReviewOutcome, verdict: ReviewVerdict, now: datetime
) -> tuple[ReviewStatus, list[str]]:
    """status.review from a review verdict, and notes worth showing (aids or quality errors)."""
    stats = verdict.stats
    notes = []
    quality = None
    if stats.quality is not None:
        if stats.quality.error:
            notes.append(f"quality: {stats.quality.error}")
        quality = QualityStatus.model_validate(stats.quality.model_dump(by_alias=True, exclude={"error"}))
    review = ReviewStatus.model_validate(stats.model_dump(by_alias=True, exclude={"quality"}))
    review.quality = quality
    aids = verdict.aids
    if aids is not None:
        review.brain_key = aids.brain_key
        review.saved_views = list(aids.saved_views)
        if aids.error:
            notes.append(aids.error)
    elif previous is not None:
        review.brain_key, review.saved_views = previous.brain_key, list(previous.saved_views)
    review.rules_applied_generation = (
        outcome.work.generation
        if outcome.work.apply_rules
        else (previous.rules_applied_generation if previous else None)
    )
    review.updated_at = now
    return review, notes


def apply_outcome(
    run: AutoLabelRun, status: AutoLabelRunStatus, outcome: ReviewOutcome, now: datetime
) -> list[ConditionChange]:
    """Writes the outcome's numbers into `status`; returns the condition changes to make."""
    work, dataset = outcome.work, run.spec.dataset.name
    if work.discard:
        if outcome.error is not None or not isinstance(outcome.result, DiscardVerdict):
            return [
                (ConditionType.DISCARDED, ConditionStatus.FALSE, Reason.DISCARD_FAILED, outcome.error or "")
            ]
        removed = outcome.result.removed
        status.discarded = DiscardStatus(removed=removed)
        message = f"removed the run's {removed} predicted labels from dataset {dataset!r}"
        changes = [(ConditionType.DISCARDED, ConditionStatus.TRUE, Reason.DISCARD_SUCCEEDED, message)]
        if status.review is not None:
            changes.append(
                (ConditionType.REVIEW_READY, ConditionStatus.FALSE, Reason.DISCARD_SUCCEEDED, message)
            )
        return changes
    if work.finalize:
        if outcome.error is not None or not isinstance(outcome.result, FinalizeVerdict):
            return [
                (
                    ConditionType.FINALIZED,
                    ConditionStatus.FALSE,
                    Reason.FINALIZE_FAILED,
                    f"{outcome.error}; finalize is retried (it is idempotent)",
                )
            ]
        promoted, discarded = outcome.result.promoted, outcome.result.discarded
        status.finalized = FinalizeStatus(promoted=promoted, discarded=discarded)
        if status.review is not None and work.apply_rules:
            status.review.rules_applied_generation = work.generation
        message = (
            f"kept {promoted} approved labels in {run.spec.label_field!r}, "
            f"removed the other {discarded} labels of the run"
        )
        return [
            (ConditionType.FINALIZED, ConditionStatus.TRUE, Reason.FINALIZE_SUCCEEDED, message),
            (ConditionType.REVIEW_READY, ConditionStatus.FALSE, Reason.FINALIZE_SUCCEEDED, message),
        ]
    if outcome.error is not None or not isinstance(outcome.result, ReviewVerdict):
        return [
            (
                ConditionType.REVIEW_READY,
                ConditionStatus.FALSE,
                Reason.REVIEW_STATISTICS_FAILED,
                f"{outcome.error}; retried in {run.spec.review.refresh_interval_seconds}s",
            )
        ]
    review, notes = _review_status(status.review, outcome, outcome.result, now)
    status.review = review
    message = (
        f"{review.total} labels: {review.approved} approved, {review.rejected} rejected, "
        f"{review.unreviewed} unreviewed"
    )
    if notes:
        message += " (" + "; ".join(notes) + ")"
    changes = [(ConditionType.REVIEW_READY, ConditionStatus.TRUE, Reason.REVIEW_STATISTICS_UPDATED, message)]
    request = outcome.result.finalize_requested
    if request is not None:
        changes.append(
            (
                ConditionType.FINALIZED,
                ConditionStatus.FALSE,
                Reason.FINALIZE_REQUESTED,
                f"finalize requested in the FiftyOne App by {request.requested_by} at "
                f"{request.requested_at}: keep {request.approved} approved labels, "
                f"remove {request.removed}",
            )
        )
    return changes
