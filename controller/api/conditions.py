"""Pure helpers over conditions: find, set (lastTransitionTime moves on status change only), derive phase.

The phase is never stored on its own: it is computed from the conditions and the spec's
lifecycle switches, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from controller.api.constants import ConditionStatus, ConditionType, Phase
from controller.api.spec import AutoLabelRunSpec
from controller.api.status import Condition


def find_condition(conditions: Sequence[Condition], condition_type: ConditionType) -> Condition | None:
    """The condition of that type, if present."""
    return next((c for c in conditions if c.type == condition_type), None)


def is_true(conditions: Sequence[Condition], condition_type: ConditionType) -> bool:
    """Whether the condition is present with status True."""
    found = find_condition(conditions, condition_type)
    return found is not None and found.status is ConditionStatus.TRUE


def set_condition(
    conditions: Sequence[Condition],
    condition_type: ConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A new list with the condition replaced or added; lastTransitionTime moves only when status changes."""
    previous = find_condition(conditions, condition_type)
    transition_time = previous.last_transition_time if previous and previous.status is status else now
    updated = Condition(
        type=condition_type,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=transition_time,
    )
    kept = [c for c in conditions if c.type != condition_type]
    return sorted([*kept, updated], key=lambda c: c.type)


def derive_phase(spec: AutoLabelRunSpec, conditions: Sequence[Condition]) -> Phase:
    """The phase shown to users, in order of precedence: outcomes first, then requests, then progress."""
    if is_true(conditions, ConditionType.FINALIZED):
        return Phase.FINALIZED
    if is_true(conditions, ConditionType.DISCARDED):
        return Phase.DISCARDED
    if is_true(conditions, ConditionType.FAILED):
        return Phase.FAILED
    if spec.discard:
        return Phase.DISCARDING
    if is_true(conditions, ConditionType.INFERENCE_COMPLETE):
        return Phase.FINALIZING if spec.finalize else Phase.REVIEW
    if spec.suspend or is_true(conditions, ConditionType.SUSPENDED):
        return Phase.SUSPENDED
    if is_true(conditions, ConditionType.QUEUED):
        return Phase.QUEUED
    if is_true(conditions, ConditionType.VALIDATED):
        return Phase.INFERRING
    return Phase.PENDING
