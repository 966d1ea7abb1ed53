"""A finalize asked in the FiftyOne App without Kubernetes credentials: the review pass reports it, the
controller keeps it as ``Finalized=False/FinalizeRequested`` and finalizes as for ``spec.finalize``."""

from __future__ import annotations

from contract.verdicts import FinalizeVerdict, ReviewVerdict
from controller.api import Phase
from controller.reconcile import reconcile
from controller.reconcile_types import Observed
from controller.review import ReviewOutcome, ReviewWork
from tests.unit.test_controller_reconcile import NOW, conditions, run
from tests.unit.test_review_controller import STATS, reviewed

REQUEST = {"requestedAt": "2026-11-28T11:59:00Z", "requestedBy": "ana@app", "approved": 2, "removed": 3}


def test_a_requested_finalize_is_recorded_then_carried_out_with_the_same_counts() -> None:
    outcome = ReviewOutcome(
        ReviewWork(1),
        result=ReviewVerdict.model_validate({"aids": None, "stats": STATS, "finalizeRequested": REQUEST}),
    )
    passed = reconcile(reviewed(), Observed(now=NOW, review=outcome))
    assert conditions(passed.status)["Finalized"] == ("False", "FinalizeRequested")
    finalized = next(c for c in passed.status.conditions if c.type == "Finalized")
    assert "by ana@app" in finalized.message and "keep 2 approved labels, remove 3" in finalized.message
    assert passed.status.phase is Phase.REVIEW  # spec.finalize untouched: Git still says what it said

    requested = run(status=passed.status.dump(), generation=1)
    work = reconcile(requested, Observed(now=NOW)).review
    assert work == ReviewWork(1, finalize=True) and work.argv() == ["finalize"]
    done = reconcile(
        requested,
        Observed(now=NOW, review=ReviewOutcome(work, result=FinalizeVerdict(promoted=2, discarded=3))),
    )
    assert done.status.phase is Phase.FINALIZED
    assert done.status.finalized is not None and (
        done.status.finalized.promoted,
        done.status.finalized.discarded,
    ) == (2, 3)


def test_a_failed_requested_finalize_is_retried_and_no_request_means_no_finalize() -> None:
    requested = reconcile(
        reviewed(),
        Observed(
            now=NOW,
            review=ReviewOutcome(
                ReviewWork(1),
                result=ReviewVerdict.model_validate({"stats": STATS, "finalizeRequested": REQUEST}),
            ),
        ),
    )
    work = ReviewWork(1, finalize=True)
    failed = reconcile(
        run(status=requested.status.dump()), Observed(now=NOW, review=ReviewOutcome(work, error="x"))
    )
    assert conditions(failed.status)["Finalized"] == ("False", "FinalizeFailed")
    retry = reconcile(run(status=failed.status.dump()), Observed(now=NOW)).review
    assert retry is not None and retry.finalize
    plain = reconcile(
        reviewed(),
        Observed(
            now=NOW,
            review=ReviewOutcome(ReviewWork(1), result=ReviewVerdict.model_validate({"stats": STATS})),
        ),
    )
    assert "Finalized" not in conditions(plain.status)
