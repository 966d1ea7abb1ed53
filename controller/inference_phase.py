"""The inference phase of the reconcile: the worker Job created, kept in line with the spec, read into status.

Once the run is validated, `job_step` asks for the worker Job and its progress
ConfigMap when they are missing and keeps the Job's `suspend` in line with the
spec (a Job queued in Kueue through its Workload instead); `observe_job` turns
the Job, its pods and the progress reports into shard statuses, overall
progress and the conditions that follow (complete, failed, past its start-up
deadline, queued, running); `suspend_step` reports spec.suspend. Pure: they
fill in a `StatusBuilder` and `Actions`, no API calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controller.api import AutoLabelRun, ConditionStatus, ConditionType, Reason, ShardState, find_condition
from controller.builders import progress_config_map, worker_job
from controller.names import job_name
from controller.queueing import queue_missing_message, queue_state, workload_activation
from controller.reconcile_types import Actions, Observed
from controller.shards import overall_progress, shard_statuses
from controller.startup import startup_failure_message, startup_overdue
from controller.status_builder import StatusBuilder
from controller.worker_contract import staging_field


def _job_condition(job: Mapping[str, Any] | None, condition_type: str) -> Mapping[str, Any] | None:
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == condition_type and condition.get("status") == "True":
            return dict(condition)
    return None


def job_step(
    run: AutoLabelRun,
    observed: Observed,
    builder: StatusBuilder,
    actions: Actions,
    default_image: str,
    service_account: str,
    command: Sequence[str],
) -> None:
    """Creates the Job (and progress ConfigMap) when missing, keeps `suspend` in line with the spec.

    `default_image`, `service_account`, `command`: the operator's settings of worker Jobs.

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
            default_image=default_image,
            service_account=service_account,
            command=list(command),
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


def observe_job(run: AutoLabelRun, observed: Observed, builder: StatusBuilder, actions: Actions) -> None:
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


def suspend_step(run: AutoLabelRun, builder: StatusBuilder) -> None:
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
