"""Why a run's worker pods never start: the pure decision behind `execution.startupTimeoutSeconds`.

A missing PVC, PriorityClass or worker ServiceAccount, an image that cannot be
pulled, or a Triton sidecar that never becomes ready leave a Job whose workers
never run. From the Job (its `startTime`, reset on each resume, so time spent
suspended or queued in Kueue does not count), its pods' conditions and container
states and the Job's Events, this says when to give up and the cause seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from controller.api import AutoLabelRunSpec

# Waiting reasons that are progress, not a cause.
_NORMAL_WAITING = frozenset({"ContainerCreating", "PodInitializing"})
_CAUSE_LIMIT = 600


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def workers_started(job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]]) -> bool:
    """True once any worker container ran (or any shard ended): the run is past starting."""
    status = (job or {}).get("status") or {}
    if status.get("succeeded") or status.get("failed") or status.get("completedIndexes"):
        return True
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            state = container.get("state") or {}
            if (
                "running" in state
                or "terminated" in state
                or container.get("lastState", {}).get("terminated")
            ):
                return True
    return False


def startup_overdue(
    spec: AutoLabelRunSpec, job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]], now: datetime
) -> bool:
    """True when the Job has been running (not suspended) past the timeout and no worker ever started."""
    if job is None or (job.get("spec") or {}).get("suspend"):
        return False
    started_at = _parse_time((job.get("status") or {}).get("startTime"))
    if started_at is None:
        return False
    limit = timedelta(seconds=spec.execution.startup_timeout_seconds)
    return now - started_at >= limit and not workers_started(job, pods)


def _pod_causes(pod: Mapping[str, Any]) -> list[str]:
    name = (pod.get("metadata") or {}).get("name", "a pod")
    status = pod.get("status") or {}
    causes = []
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            causes.append(
                f"pod {name} cannot be scheduled: {condition.get('message') or condition.get('reason')}"
            )
    containers = [("init container", c) for c in status.get("initContainerStatuses") or []]
    containers += [("container", c) for c in status.get("containerStatuses") or []]
    for kind, container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason not in _NORMAL_WAITING:
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            causes.append(f"pod {name} {kind} {container.get('name')} {reason}{detail}")
        elif (
            kind == "init container"
            and "running" in (container.get("state") or {})
            and not container.get("ready")
        ):
            restarts = container.get("restartCount") or 0
            causes.append(
                f"pod {name} sidecar {container.get('name')} runs but never became ready "
                f"(restarted {restarts} times); see its log"
            )
    return causes


def _event_time(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def startup_cause(pods: Sequence[Mapping[str, Any]], job_events: Sequence[Mapping[str, Any]]) -> str:
    """The cause seen: the Job's latest warning (pods refused at creation), else what its pods wait on."""
    warnings = sorted(
        (e for e in job_events if e.get("type") == "Warning" and e.get("message")), key=_event_time
    )
    if warnings:
        latest = warnings[-1]
        return f"the Job reports {latest.get('reason')}: {latest['message']}"[:_CAUSE_LIMIT]
    causes = [cause for pod in pods for cause in _pod_causes(pod)]
    if causes:
        return "; ".join(dict.fromkeys(causes))[:_CAUSE_LIMIT]
    if not pods:
        return "the Job created no pod"
    return "its pods stayed pending with no reason given"


def startup_failure_message(
    spec: AutoLabelRunSpec, pods: Sequence[Mapping[str, Any]], job_events: Sequence[Mapping[str, Any]]
) -> str:
    seconds = spec.execution.startup_timeout_seconds
    return (
        f"no worker started within execution.startupTimeoutSeconds={seconds}: "
        f"{startup_cause(pods, job_events)}; the Job was suspended; fix the cause, then delete and "
        "re-create the run"
    )
