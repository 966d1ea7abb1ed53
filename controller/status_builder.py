"""Building a run's new status: conditions set against one time and generation, the headline, the Events.

`StatusBuilder` accumulates condition changes on a copy of the run's status,
all stamped with the same `now` and the run's generation. `headline` picks the
condition that explains a phase for `status.message`; `condition_events` turns
the difference between the old and the new status into the run's Events (one
per condition whose status or reason changed, and one per phase change), and
`progress_events` warns about progress reports that were not taken as written.
Pure: no API calls.
"""

from __future__ import annotations

from datetime import datetime

from controller.api import (
    AnyReason,
    AutoLabelRun,
    AutoLabelRunStatus,
    ConditionStatus,
    ConditionType,
    Phase,
    Reason,
    find_condition,
    is_true,
    set_condition,
)
from controller.reconcile_types import Event, Observed
from controller.shards import ProgressReports


class StatusBuilder:
    """Accumulates condition changes against one `now` and generation."""

    def __init__(self, run: AutoLabelRun, now: datetime) -> None:
        self.status = run.status.model_copy(deep=True)
        self.generation = int(run.metadata.get("generation") or 0)
        self.now = now

    def set(
        self, condition_type: ConditionType, status: ConditionStatus, reason: AnyReason, message: str
    ) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, condition_type, status, reason.value, message, self.generation, self.now
        )

    def true(self, condition_type: ConditionType) -> bool:
        return is_true(self.status.conditions, condition_type)


def headline(builder: StatusBuilder, phase: Phase) -> str:
    """status.message: the condition that explains the phase."""
    by_phase = {
        Phase.FAILED: (ConditionType.FAILED,),
        Phase.PENDING: (ConditionType.VALIDATED,),
        Phase.SUSPENDED: (ConditionType.SUSPENDED,),
        Phase.QUEUED: (ConditionType.QUEUED,),
        Phase.INFERRING: (ConditionType.INFERENCE_COMPLETE,),
        Phase.REVIEW: (ConditionType.REVIEW_READY, ConditionType.INFERENCE_COMPLETE),
        Phase.FINALIZING: (ConditionType.FINALIZED, ConditionType.REVIEW_READY),
        Phase.FINALIZED: (ConditionType.FINALIZED,),
        Phase.DISCARDING: (ConditionType.DISCARDED, ConditionType.FAILED),
        Phase.DISCARDED: (ConditionType.DISCARDED,),
    }
    for condition_type in (*by_phase.get(phase, ()), ConditionType.INFERENCE_COMPLETE):
        condition = find_condition(builder.status.conditions, condition_type)
        if condition is not None:
            return condition.message
    return ""


def condition_events(before: AutoLabelRunStatus, after: AutoLabelRunStatus) -> list[Event]:
    """One Event per condition whose status or reason changed."""
    old = {c.type: (c.status, c.reason) for c in before.conditions}
    events = []
    for condition in after.conditions:
        if old.get(condition.type) == (condition.status, condition.reason):
            continue
        warning = (condition.type == ConditionType.FAILED and condition.status is ConditionStatus.TRUE) or (
            condition.type == ConditionType.VALIDATED and condition.status is ConditionStatus.FALSE
        )
        events.append(
            Event(
                "Warning" if warning else "Normal",
                condition.reason,
                f"{condition.type}={condition.status.value}: {condition.message}"[:1024],
            )
        )
    if before.phase != after.phase and after.phase is not None:
        events.append(Event("Normal", f"Phase{after.phase.value}", f"phase {after.phase.value}"))
    return events


def progress_events(observed: Observed) -> list[Event]:
    """A warning Event for progress entries that were left out or clamped (never an exception)."""
    problems = observed.progress.problems if isinstance(observed.progress, ProgressReports) else []
    if not problems:
        return []
    message = "progress ConfigMap entries not taken as written: " + "; ".join(problems)
    return [Event("Warning", Reason.INVALID_PROGRESS_REPORT.value, message[:1024])]
