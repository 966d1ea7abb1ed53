"""The one reconcile: (run, observed cluster and checks) -> (children to create or patch, new status).

Pure and level-triggered: it looks only at the current run and observed state,
so calling it again after a crash, a restart or a duplicate event gives the
same answer. The handlers call it from create/update/resume and a timer, then
carry out the returned actions (creates are idempotent: 409 means done).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contract.env import Command
from contract.progress import ProgressReport
from contract.verdicts import ValidationReason
from controller import review
from controller.api import (
    AnyReason,
    AutoLabelRun,
    AutoLabelRunStatus,
    ConditionStatus,
    ConditionType,
    Phase,
    Reason,
    ShardState,
    derive_phase,
    find_condition,
    is_true,
    set_condition,
)
from controller.builders import progress_config_map, worker_job
from controller.images import DEFAULT_ALLOWED_IMAGES, image_refusal
from controller.names import job_name
from controller.queueing import queue_missing_message, queue_state, workload_activation
from controller.shards import ProgressReports, overall_progress, shard_statuses
from controller.startup import startup_failure_message, startup_overdue
from controller.worker_contract import staging_field

# Checked again until they pass: an unreachable server, or an image the allow-list may come to allow.
TRANSIENT_VALIDATION_REASONS: frozenset[str] = frozenset(
    {ValidationReason.DATABASE_UNREACHABLE, ValidationReason.TRITON_UNREACHABLE, Reason.IMAGE_NOT_ALLOWED}
)


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
    """What the handler read before calling reconcile."""

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
    """What the handler must do, in order: validate (then reconcile again), create, patch, write status."""

    status: AutoLabelRunStatus
    validate: bool = False
    create_progress_config_map: dict[str, Any] | None = None
    create_job: dict[str, Any] | None = None
    patch_job: dict[str, Any] | None = None
    patch_workload: tuple[str, dict[str, Any]] | None = None  # (Workload name, merge patch)
    review: review.ReviewWork | None = None
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class JobSettings:
    """Operator-wide settings of worker Jobs (from the controller's environment)."""

    image: str = "ghcr.io/autolabel/autolabel-operator:0.1.0"  # the chart sets AUTOLABEL_WORKER_IMAGE
    service_account: str = "autolabel-worker"
    command: tuple[str, ...] = ("autolabel-worker", Command.RUN.value)
    step_command: tuple[str, ...] = ("autolabel-worker",)  # dataset steps: `<step_command> probe ...`
    allowed_images: tuple[str, ...] = DEFAULT_ALLOWED_IMAGES  # AUTOLABEL_ALLOWED_IMAGES


def _job_condition(job: Mapping[str, Any] | None, condition_type: str) -> Mapping[str, Any] | None:
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == condition_type and condition.get("status") == "True":
            return dict(condition)
    return None


class _StatusBuilder:
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


def _validation_step(run: AutoLabelRun, observed: Observed, builder: _StatusBuilder) -> bool:
    """Applies a validation result; returns True when a (re)validation must run first.

    A verdict stands for its generation, except an unreachable database or Triton server:
    those are checked again (the engine spaces the checks out) until they answer.
    """
    current = find_condition(builder.status.conditions, ConditionType.VALIDATED)
    settled = (
        current is not None
        and current.observed_generation == builder.generation
        and current.status is not ConditionStatus.UNKNOWN
    )
    transient = settled and current is not None and current.reason in TRANSIENT_VALIDATION_REASONS
    if settled and not transient:
        return False
    result = observed.validation
    if result is None or result.generation != builder.generation:
        if transient:
            return True
        if current is None or current.status is not ConditionStatus.UNKNOWN:
            builder.set(
                ConditionType.VALIDATED,
                ConditionStatus.UNKNOWN,
                Reason.VALIDATION_PENDING,
                "checking the dataset, the database Secret and the Triton model",
            )
        return True
    if result.ok:
        passed = ValidationReason.VALIDATION_PASSED
        builder.set(ConditionType.VALIDATED, ConditionStatus.TRUE, passed, result.message)
        if builder.true(ConditionType.FAILED):
            builder.set(
                ConditionType.FAILED,
                ConditionStatus.FALSE,
                passed,
                "the corrected spec passed validation",
            )
        if result.total is not None:
            builder.status.progress = overall_progress([], result.total, None)
    else:
        builder.set(ConditionType.VALIDATED, ConditionStatus.FALSE, result.reason, result.message)
        builder.set(ConditionType.FAILED, ConditionStatus.TRUE, result.reason, result.message)
    return False


def _job_step(
    run: AutoLabelRun, observed: Observed, builder: _StatusBuilder, settings: JobSettings, actions: Actions
) -> None:
    """Creates the Job (and progress ConfigMap) when missing, keeps `suspend` in line with the spec.

    A Job queued in Kueue is never suspended or resumed here: spec.suspend acts on its Workload.
    """
    spec, metadata = run.spec, run.metadata
    queued = spec.execution.queue_name is not None
    if observed.job is None and queued and observed.local_queue is False:
        message = queue_missing_message(spec, str(metadata.get("namespace")), observed.kueue_installed)
        builder.set(ConditionType.FAILED, ConditionStatus.TRUE, Reason.QUEUE_NOT_FOUND, message)
        return
    if observed.job is None:
        actions.create_progress_config_map = progress_config_map(metadata)
        actions.create_job = worker_job(
            metadata,
            spec,
            default_image=settings.image,
            service_account=settings.service_account,
            command=list(settings.command),
        )
        builder.status.job_name = job_name(metadata)
        builder.status.review_field = staging_field(spec)
        builder.status.start_time = builder.status.start_time or observed.now
        if find_condition(builder.status.conditions, ConditionType.INFERENCE_COMPLETE) is None:
            builder.set(
                ConditionType.INFERENCE_COMPLETE,
                ConditionStatus.FALSE,
                Reason.JOB_CREATED,
                f"created Job {builder.status.job_name}",
            )
        return
    if queued:
        _activate_workload(run, observed, actions, stop=False)
    elif bool((observed.job.get("spec") or {}).get("suspend")) != spec.suspend:
        actions.patch_job = {"spec": {"suspend": spec.suspend}}


def _activate_workload(run: AutoLabelRun, observed: Observed, actions: Actions, stop: bool) -> None:
    patch = workload_activation(run.spec, observed.workload, stop)
    if patch is not None and observed.workload is not None:
        actions.patch_workload = (str(observed.workload["metadata"]["name"]), patch)


def _observe_job(run: AutoLabelRun, observed: Observed, builder: _StatusBuilder, actions: Actions) -> None:
    """Shards, progress and the conditions that follow from the Job's state."""
    spec = run.spec
    shards = shard_statuses(spec.execution.effective_shards, observed.job, observed.pods, observed.progress)
    builder.status.shards = shards
    target_total = builder.status.progress.total if builder.status.progress else None
    builder.status.progress = overall_progress(shards, target_total or None, builder.status.progress)

    if _job_condition(observed.job, "Complete"):
        builder.set(
            ConditionType.INFERENCE_COMPLETE,
            ConditionStatus.TRUE,
            Reason.ALL_SHARDS_SUCCEEDED,
            f"all {len(shards)} shards succeeded",
        )
        builder.status.completion_time = builder.status.completion_time or observed.now
        progress, started = builder.status.progress, builder.status.start_time
        if progress is not None and started is not None:
            # Once done, the rate shown is the run's average over all shards, start to finish.
            elapsed = max((builder.status.completion_time - started).total_seconds(), 1.0)
            progress.images_per_second = round(progress.processed / elapsed, 2)
        return
    failed_job = _job_condition(observed.job, "Failed")
    if failed_job:
        failed = [s for s in shards if s.state is ShardState.FAILED]
        if failed_job.get("reason") == "DeadlineExceeded":
            reason, message = (
                Reason.DEADLINE_EXCEEDED,
                (
                    "the Job ran past execution.activeDeadlineSeconds="
                    f"{spec.execution.active_deadline_seconds}; "
                    "raise it, or add shards/parallelism"
                ),
            )
        else:
            details = "; ".join(
                f"shard {s.index} failed after {s.attempts} attempts: {s.message or 'error'}" for s in failed
            ) or str(failed_job.get("message") or "the Job failed")
            reason, message = Reason.SHARD_FAILED, details
        builder.set(ConditionType.FAILED, ConditionStatus.TRUE, reason, message)
        return
    if startup_overdue(spec, observed.job, observed.pods, observed.now):
        message = startup_failure_message(spec, observed.pods, observed.job_events)
        builder.set(ConditionType.FAILED, ConditionStatus.TRUE, Reason.STARTUP_TIMEOUT, message)
        if spec.execution.queue_name is not None:
            _activate_workload(run, observed, actions, stop=True)  # through Kueue; frees the quota
        else:
            actions.patch_job = {"spec": {"suspend": True}}  # pending pods go; nothing starts late
        return
    queue = queue_state(spec, observed.job, observed.workload) if observed.job is not None else None
    if queue is not None:
        builder.set(ConditionType.QUEUED, queue.status, queue.reason, queue.message)
    done = sum(1 for s in shards if s.state is ShardState.SUCCEEDED)
    builder.set(
        ConditionType.INFERENCE_COMPLETE,
        ConditionStatus.FALSE,
        Reason.SHARDS_RUNNING,
        f"{done}/{len(shards)} shards done",
    )


def _suspend_step(run: AutoLabelRun, builder: _StatusBuilder) -> None:
    if run.spec.suspend:
        builder.set(
            ConditionType.SUSPENDED,
            ConditionStatus.TRUE,
            Reason.SUSPENDED_BY_SPEC,
            "spec.suspend is true: the worker Job is suspended; set it false to resume",
        )
    elif find_condition(builder.status.conditions, ConditionType.SUSPENDED) is not None:
        builder.set(
            ConditionType.SUSPENDED,
            ConditionStatus.FALSE,
            Reason.RESUMED,
            "resumed: shards continue, skipping samples already labeled",
        )


def _review_step(run: AutoLabelRun, observed: Observed, builder: _StatusBuilder, actions: Actions) -> None:
    """After inference: apply the outcome of review work, or ask for the work that is due."""
    if observed.review is not None:
        for change in review.apply_outcome(run, builder.status, observed.review, observed.now):
            builder.set(*change)
        return
    actions.review = review.plan(run, builder.status, observed.now, observed.review_failed_at)


def _headline(builder: _StatusBuilder, phase: Phase) -> str:
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


def _events(before: AutoLabelRunStatus, after: AutoLabelRunStatus) -> list[Event]:
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


def _retry_refused_child(builder: _StatusBuilder, complete: bool) -> None:
    """A run that failed because a child of its Review was refused: a new generation (the user says
    the cause is fixed) clears the failure, so the child is created again."""
    failed = find_condition(builder.status.conditions, ConditionType.FAILED)
    if (
        complete
        and failed is not None
        and failed.status is ConditionStatus.TRUE
        and failed.reason == Reason.CHILD_REFUSED.value
        and (failed.observed_generation or 0) < builder.generation
    ):
        builder.set(
            ConditionType.FAILED,
            ConditionStatus.FALSE,
            Reason.CHILD_REFUSED,
            f"generation {builder.generation}: creating the refused child again",
        )


def reconcile(run: AutoLabelRun, observed: Observed, settings: JobSettings = JobSettings()) -> Actions:
    """The desired children and status of `run`, given what was observed."""
    builder = _StatusBuilder(run, observed.now)
    actions = Actions(status=builder.status)
    started = builder.status.job_name is not None or observed.job is not None
    complete = builder.true(ConditionType.INFERENCE_COMPLETE)

    _retry_refused_child(builder, complete)
    refused_image = None if started else image_refusal(run.spec, settings.allowed_images, settings.image)
    if refused_image is not None:
        builder.set(ConditionType.VALIDATED, ConditionStatus.FALSE, Reason.IMAGE_NOT_ALLOWED, refused_image)
        builder.set(ConditionType.FAILED, ConditionStatus.TRUE, Reason.IMAGE_NOT_ALLOWED, refused_image)
    elif not started and _validation_step(run, observed, builder):
        actions.validate = True
    elif builder.true(ConditionType.VALIDATED) and not builder.true(ConditionType.FAILED):
        if not complete:
            _job_step(run, observed, builder, settings, actions)
        if observed.job is not None and not complete:
            _observe_job(run, observed, builder, actions)
        _suspend_step(run, builder)
    if builder.true(ConditionType.INFERENCE_COMPLETE) or (
        run.spec.discard and builder.true(ConditionType.FAILED)
    ):
        _review_step(run, observed, builder, actions)

    builder.status.observed_generation = builder.generation
    phase = derive_phase(run.spec, builder.status.conditions)
    builder.status.phase = phase
    builder.status.message = _headline(builder, phase) or None
    actions.status = builder.status
    actions.events = _events(run.status, builder.status) + _progress_events(observed)
    return actions


def _progress_events(observed: Observed) -> list[Event]:
    """A warning Event for progress entries that were left out or clamped (never an exception)."""
    problems = observed.progress.problems if isinstance(observed.progress, ProgressReports) else []
    if not problems:
        return []
    message = "progress ConfigMap entries not taken as written: " + "; ".join(problems)
    return [Event("Warning", Reason.INVALID_PROGRESS_REPORT.value, message[:1024])]


def child_refused(
    run: AutoLabelRun, actions: Actions, kind: str, name: str, message: str, now: datetime
) -> Actions:
    """`actions` after the API server refused to create a child: Failed with the server's message.

    Retrying the same object cannot help, so the run stops. Before inference started, the
    Job was never created: the status forgets it and a corrected spec (a new generation) is
    validated and started again. After (the review agent, a finalize or discard step), the
    run keeps its Job and labels, and a new generation tries the refused child again
    (`_retry_refused_child`).
    """
    builder = _StatusBuilder(run, now)
    builder.status = actions.status.model_copy(deep=True)
    started = builder.true(ConditionType.INFERENCE_COMPLETE)  # the refused child is one of Review's
    if not started:
        builder.status.conditions = [
            c
            for c in builder.status.conditions
            if not (c.type == ConditionType.INFERENCE_COMPLETE and c.reason == Reason.JOB_CREATED.value)
        ]
    refused = f"the API server refused to create {kind} {name}: {message}; fix the spec and apply it again"
    if not builder.true(ConditionType.VALIDATED):  # the validation step's Job: this generation's verdict
        builder.set(ConditionType.VALIDATED, ConditionStatus.FALSE, Reason.CHILD_REFUSED, refused)
    builder.set(ConditionType.FAILED, ConditionStatus.TRUE, Reason.CHILD_REFUSED, refused)
    if not started:
        builder.status.job_name = None
        builder.status.start_time = None
    builder.status.phase = derive_phase(run.spec, builder.status.conditions)
    builder.status.message = _headline(builder, builder.status.phase) or None
    return Actions(
        status=builder.status, events=_events(run.status, builder.status) + _progress_events_of(actions)
    )


def _progress_events_of(actions: Actions) -> list[Event]:
    return [e for e in actions.events if e.reason == Reason.INVALID_PROGRESS_REPORT.value]
