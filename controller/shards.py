"""Reading the state of a run's shards from what the cluster shows: the Job, its pods, the progress ConfigMap.

Pure functions: the Job's `completedIndexes`/`failedIndexes`, each pod's
completion index and termination message, and the report each worker writes
under `shard-<index>` in the progress ConfigMap (`contract.progress`) become
`ShardStatus` entries and the run's `ProgressStatus`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contract.progress import BadReport, ProgressReport, read_report, shard_of
from contract.verdicts import FATAL_PREFIX
from controller.api import ProgressStatus, ShardState, ShardStatus

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def parse_index_ranges(text: str | None) -> set[int]:
    """Kubernetes' compressed index lists, e.g. "0-2,5" -> {0, 1, 2, 5}."""
    indexes: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            indexes.update(range(int(first), int(last) + 1))
        else:
            indexes.add(int(part))
    return indexes


class ProgressReports(dict[int, ProgressReport]):
    """The shard reports of a progress ConfigMap, with what was wrong in the entries left out or clamped.

    The ConfigMap is writable by the workers, so by anything running as the worker
    ServiceAccount: its content is untrusted input (see `contract.progress.read_report`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []


def parse_progress(data: Mapping[str, str] | None) -> ProgressReports:
    """`shard-<i>` keys of the progress ConfigMap -> reports; never raises.

    Values out of range are clamped, unreadable entries left out; both are listed in
    `problems` (the reconcile turns them into a warning Event).
    """
    reports = ProgressReports()
    for key, value in (data or {}).items():
        try:
            shard = shard_of(key)
            if shard is None:
                continue
            report, clamped = read_report(value if isinstance(value, str) else "")
        except BadReport as error:
            reports.problems.append(f"{key}: {error}, ignored")
            continue
        reports.problems.extend(f"{key}: {note}" for note in clamped)
        reports[shard] = report
    return reports


def _pod_index(pod: Mapping[str, Any]) -> int | None:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _failure_message(pod: Mapping[str, Any]) -> str | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated and terminated.get("exitCode", 0) != 0:
            message = (terminated.get("message") or "").strip()
            lines = [line for line in message.splitlines() if line.strip()]
            fatal = [line for line in lines if line.startswith(FATAL_PREFIX)]
            detail = (fatal or lines or [terminated.get("reason") or "error"])[-1]
            return f"exit code {terminated['exitCode']}: {detail}"[:4096]
    return None


def shard_statuses(
    shards: int,
    job: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    reports: Mapping[int, ProgressReport],
) -> list[ShardStatus]:
    """One entry per shard index, from Job status (authoritative for end states), pods and reports."""
    job_status = (job or {}).get("status") or {}
    completed = parse_index_ranges(job_status.get("completedIndexes"))
    failed = parse_index_ranges(job_status.get("failedIndexes"))
    attempts: dict[int, int] = {}
    running: set[int] = set()
    last_failure: dict[int, tuple[str, str]] = {}
    for pod in pods:
        index = _pod_index(pod)
        if index is None:
            continue
        attempts[index] = attempts.get(index, 0) + 1
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Running", "Pending") and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            running.add(index)
        message = _failure_message(pod)
        if phase == "Failed" and message:
            created = (pod.get("metadata") or {}).get("creationTimestamp") or ""
            if index not in last_failure or created >= last_failure[index][0]:
                last_failure[index] = (created, message)
    result = []
    for index in range(shards):
        report = reports.get(index, ProgressReport())
        if index in completed:
            state = ShardState.SUCCEEDED
        elif index in failed:
            state = ShardState.FAILED
        elif index in running:
            state = ShardState.RUNNING
        else:
            state = ShardState.PENDING
        message = last_failure.get(index, ("", None))[1] if state is not ShardState.SUCCEEDED else None
        result.append(
            ShardStatus(
                index=index,
                state=state,
                processed=report.processed,
                failed=report.failed,
                total=report.total,
                attempts=attempts.get(index, 0),
                images_per_second=report.images_per_second if state is ShardState.RUNNING else None,
                message=message,
                updated_at=report.updated_at,
            )
        )
    return result


def overall_progress(
    shards: Sequence[ShardStatus], target_total: int | None, previous: ProgressStatus | None
) -> ProgressStatus:
    """Sums over shards; the total is the validated target size when known."""
    processed = sum(s.processed for s in shards)
    failed = sum(s.failed for s in shards)
    total = target_total if target_total is not None else sum(s.total for s in shards)
    if previous is not None:
        # Reports can lag a restarted pod; never show progress going backwards.
        processed = max(processed, previous.processed) if previous.total == total else processed
    rates = [s.images_per_second for s in shards if s.images_per_second is not None]
    updated = [s.updated_at for s in shards if s.updated_at is not None]
    return ProgressStatus(
        processed=processed,
        failed=failed,
        total=total,
        summary=f"{processed}/{total}",
        images_per_second=round(sum(rates), 2) if rates else None,
        updated_at=max(updated) if updated else (previous.updated_at if previous else None),
    )
