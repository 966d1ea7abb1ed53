"""Runs queued by Kueue (``spec.execution.queueName``): what the Workload says, as the run's conditions.

With a queue name, Kueue alone decides when the worker Job runs: its webhook
creates the Job suspended, it unsuspends the Job when the Workload is admitted
against a ClusterQueue's quota, and suspends it again when the Workload is
preempted or deactivated. The controller therefore never writes the Job's
``suspend`` of a queued run; ``spec.suspend`` (and a startup timeout) act through
Kueue's own switch, the Workload's ``spec.active``. Pure functions of the
observed Job and Workload, used by `controller.inference_phase`.

The ``Queued`` condition is True while Kueue holds the Job, with reason
``WaitingForQuota`` (Kueue's own message says what is missing) or ``Preempted``;
it turns False (``Admitted``, naming the ClusterQueue) when the Job runs. A
preempted run loses nothing: its pods stop, what it wrote stays, and on
re-admission its shards skip the samples already labeled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.api import AutoLabelRunSpec, ConditionStatus, Reason

KUEUE_GROUP, KUEUE_VERSION = "kueue.x-k8s.io", "v1beta2"
WORKLOAD_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"


@dataclass(frozen=True)
class QueueState:
    """The Queued condition a run's Workload calls for (None: leave it as it is)."""

    status: ConditionStatus
    reason: Reason
    message: str


def _condition(workload: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for condition in ((workload or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def _true(workload: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    found = _condition(workload, kind)
    return found if found is not None and found.get("status") == "True" else None


def queue_state(
    spec: AutoLabelRunSpec, job: Mapping[str, Any], workload: Mapping[str, Any] | None
) -> QueueState | None:
    """Queued while Kueue holds the Job, Admitted once it runs; None when not queued by Kueue."""
    queue = spec.execution.queue_name
    if queue is None:
        return None
    held = bool((job.get("spec") or {}).get("suspend"))
    if not held:
        admission = ((workload or {}).get("status") or {}).get("admission") or {}
        cluster_queue = admission.get("clusterQueue")
        where = f" to ClusterQueue {cluster_queue}" if cluster_queue else ""
        return QueueState(ConditionStatus.FALSE, Reason.ADMITTED, f"admitted by Kueue{where}: the shards run")
    preempted = _true(workload, "Preempted")
    evicted = _true(workload, "Evicted")
    if preempted is not None or (evicted is not None and evicted.get("reason") == "Preempted"):
        cause = (preempted or evicted or {}).get("message") or "a higher-priority workload needed the quota"
        return QueueState(
            ConditionStatus.TRUE,
            Reason.PREEMPTED,
            f"preempted by Kueue ({cause}); what the shards wrote stays, and they resume when Kueue "
            "admits the run again, skipping samples already labeled",
        )
    pending = _condition(workload, "QuotaReserved")
    detail = (pending or {}).get("message") if pending and pending.get("status") == "False" else None
    if workload is None:
        detail = "Kueue has not made a Workload for the Job yet"
    return QueueState(
        ConditionStatus.TRUE,
        Reason.WAITING_FOR_QUOTA,
        f"waiting in Kueue LocalQueue {queue}: {detail or 'waiting for quota'}",
    )


def queue_missing_message(spec: AutoLabelRunSpec, namespace: str, kueue_installed: bool) -> str:
    queue = spec.execution.queue_name
    if not kueue_installed:
        return (
            f"spec.execution.queueName is {queue!r} but this cluster has no Kueue (no LocalQueue API); "
            "install Kueue or remove queueName"
        )
    return (
        f"spec.execution.queueName {queue!r}: no LocalQueue of that name in namespace {namespace}; "
        "create it (docs/install.md: Sharing GPUs with Kueue) or name an existing one"
    )


def workload_activation(
    spec: AutoLabelRunSpec, workload: Mapping[str, Any] | None, stop: bool
) -> dict[str, Any] | None:
    """The Workload patch that holds (`stop` or spec.suspend) or releases the run through Kueue."""
    if workload is None:
        return None
    active = not (stop or spec.suspend)
    if bool((workload.get("spec") or {}).get("active", True)) == active:
        return None
    return {"spec": {"active": active}}
