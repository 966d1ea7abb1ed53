"""Which runs need a timer: only those where time itself can change what is due.

Everything else a run waits for is a change of the run or of one of its
children (the worker Job and its pods, the step Jobs, the progress and result
ConfigMaps), and those arrive by watch. Time matters while a run validates
(a step pod that is never created, an unreachable database checked again),
infers before any worker started (the start-up deadline), finalizes or discards (back-off after a failed
attempt), or waits to retry a finalize asked for in the App. A run in Review
with nothing asked, a suspended run and a run in a terminal phase
(Finalized, Discarded, Failed for good) have no timer at all: the review
agent watches the dataset and its verdicts arrive through the result ConfigMap.
Pure: reads the raw body kopf passes to a `when=` filter, no model parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.api import ConditionType, Phase, ShardState
from controller.reconcile import TRANSIENT_VALIDATION_REASONS

TIMED_PHASES = frozenset({None, Phase.PENDING.value, Phase.FINALIZING.value, Phase.DISCARDING.value})
ENDED_SHARDS = frozenset({ShardState.SUCCEEDED.value, ShardState.FAILED.value})


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}


def needs_timer(body: Mapping[str, Any]) -> bool:
    """True while the run may have something due that no watch event would bring."""
    metadata, spec = body.get("metadata") or {}, body.get("spec") or {}
    status = body.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return False
    phase = status.get("phase")
    if phase in TIMED_PHASES:
        return True
    if phase == Phase.INFERRING.value:
        # The start-up deadline counts only until a worker has run (a shard reported or ended; a
        # shard shown Running may be a pod still Pending); from then on the Job and pods say all.
        return not any(
            (shard or {}).get("state") in ENDED_SHARDS or (shard or {}).get("updatedAt")
            for shard in status.get("shards") or []
        )
    conditions = _conditions(status)
    if phase == Phase.REVIEW.value:
        finalized = conditions.get(ConditionType.FINALIZED.value)
        return finalized is not None and finalized.get("status") != "True"  # asked in the App, or failed
    if phase == Phase.FAILED.value:
        validated = conditions.get(ConditionType.VALIDATED.value) or {}
        discarded = conditions.get(ConditionType.DISCARDED.value) or {}
        transient = (
            validated.get("status") == "False" and validated.get("reason") in TRANSIENT_VALIDATION_REASONS
        )
        return transient or (bool(spec.get("discard")) and discarded.get("status") != "True")
    return False  # Review with nothing asked, Suspended, Finalized, Discarded
