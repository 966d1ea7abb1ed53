"""A finished dataset step, taken in: its verdict becomes what the reconcile observes.

The validation step's `ProbeVerdict` becomes a `Validation`, remembered in the
`ValidationCache`; so does a pod that was never created (``StartupTimeout``) and a
step that ended without a verdict (``ValidationCrashed``: the run fails for this
generation, and the step is not run again until the spec changes);
the verdict of a review pass, a finalize or a discard becomes a
`ReviewOutcome`, and the time of a failed attempt is kept so the reconcile
tries again only after its back-off. The verdicts themselves were parsed by
their contract models when the step was read (`controller.step_runner`).
No API calls.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from contract.verdicts import DiscardVerdict, FinalizeVerdict, ProbeVerdict, ReviewVerdict
from controller import metrics
from controller.api import AutoLabelRun, Reason
from controller.reconcile_types import Observed, Validation
from controller.review import ReviewOutcome
from controller.step_runner import StepState
from controller.validation_cache import ValidationCache

log = logging.getLogger("autolabel.controller")


class StepVerdicts:
    """Takes in finished steps; remembers validations and when a run's review work last failed."""

    def __init__(self) -> None:
        self.validations = ValidationCache()
        self._review_failures: dict[str, datetime] = {}

    def review_failed_at(self, uid: str) -> datetime | None:
        return self._review_failures.get(uid)

    def forget(self, uid: str) -> None:
        self.validations.forget(uid)
        self._review_failures.pop(uid, None)

    def take_in(self, run: AutoLabelRun, state: StepState, observed: Observed, now: datetime) -> Observed:
        """A finished step's verdict as what reconcile observes (a validation, or a review outcome)."""
        uid, name, step = run.metadata["uid"], run.metadata["name"], state.step
        if step.kind == "validate":
            validation = _validation_of(state)
            if not isinstance(state.result, ProbeVerdict) and not state.never_started:
                log.warning("run %s: the validation step gave no verdict: %s", name, state.error)
            if not state.never_started:
                metrics.VALIDATIONS.labels(validation.reason.value).inc()
            self.validations.remember(uid, validation)
            return replace(observed, validation=validation)
        if step.work is None:
            return observed  # a cleanup left over from a deletion that was not completed
        if state.error is not None:
            log.warning("run %s: %s failed: %s", name, step.work.describe(), state.error)
            self._review_failures[uid] = now
        else:
            self._review_failures.pop(uid, None)
        verdicts = (ReviewVerdict, FinalizeVerdict, DiscardVerdict)
        result = state.result if isinstance(state.result, verdicts) else None
        return replace(observed, review=ReviewOutcome(step.work, result=result, error=state.error))


def _validation_of(state: StepState) -> Validation:
    """The validation a finished validation step stands for: its verdict, or why there is none.

    A step whose pod never started is ``StartupTimeout``; one that ended without a probe's
    verdict (a crash) is ``ValidationCrashed``, which ends this generation's validation: the
    step is not started again until the spec changes, so nothing it ran runs again.
    """
    generation = state.step.generation
    if state.never_started:
        return Validation(
            generation=generation,
            ok=False,
            reason=Reason.STARTUP_TIMEOUT,
            message=f"{state.error}; fix the cause (e.g. create the worker ServiceAccount), then "
            "edit the spec or re-create the run",
        )
    if not isinstance(state.result, ProbeVerdict):
        return Validation(
            generation=generation,
            ok=False,
            reason=Reason.VALIDATION_CRASHED,
            message=f"the validation step ended without a verdict ({state.error or 'no verdict'}); "
            "its pod's log says why: fix the cause, then edit the spec or re-create the run",
        )
    verdict = state.result
    return Validation(generation, verdict.ok, verdict.reason, verdict.message, verdict.total)
