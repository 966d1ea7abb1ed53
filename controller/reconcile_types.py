"""What the pure reconcile reads and returns: `Observed` and `Validation` in, `Actions` and `Event` out.

Plain frozen dataclasses (`Actions` is filled in by the pass that builds it), no
logic: the engine builds an `Observed` from its reads of the cluster and the
verdicts of the run's dataset steps, calls `controller.reconcile.reconcile`, and
carries out the `Actions` it gets back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contract.progress import ProgressReport
from controller import review
from controller.api import AnyReason, AutoLabelRunStatus


@dataclass(frozen=True)
class Validation:
    """The verdict of the validation step on a spec generation (dataset, Secret, Triton)."""

    generation: int
    ok: bool
    reason: AnyReason
    message: str
    total: int | None = None


@dataclass(frozen=True)
class Observed:
    """What the engine read before calling reconcile."""

    now: datetime
    job: Mapping[str, Any] | None = None
    pods: Sequence[Mapping[str, Any]] = ()
    progress: Mapping[int, ProgressReport] = field(default_factory=dict)
    job_events: Sequence[Mapping[str, Any]] = ()  # read only when startup is overdue
    validation: Validation | None = None
    review: review.ReviewOutcome | None = None
    review_failed_at: datetime | None = None
    workload: Mapping[str, Any] | None = None  # Kueue's Workload of the Job (spec.execution.queueName)
    local_queue: bool | None = None  # the named LocalQueue exists (read before the Job is created)
    kueue_installed: bool = True


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Actions:
    """What the engine must do, in order: validate (then reconcile again), create, patch, write status."""

    status: AutoLabelRunStatus
    validate: bool = False
    create_progress_config_map: dict[str, Any] | None = None
    create_job: dict[str, Any] | None = None
    patch_job: dict[str, Any] | None = None
    patch_workload: tuple[str, dict[str, Any]] | None = None  # (Workload name, merge patch)
    review: review.ReviewWork | None = None
    events: list[Event] = field(default_factory=list)
