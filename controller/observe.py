"""What the engine reads of a run's cluster state before a reconcile: the reads, no decisions.

`observe` reads the worker Job; before the Job exists, whether the named Kueue
LocalQueue does; after, the run's worker pods and progress reports (parsed by
their contract model), the Job's Events only once start-up is overdue (they
say why pods are missing), and Kueue's Workload of a queued run.
`review_results` reads the result ConfigMap, where the review agent's verdicts
arrive, only while the run is in Review. Every read goes through `Kube`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from controller.api import AutoLabelRun, ConditionType, is_true
from controller.kube import Kube
from controller.names import job_name, progress_config_map_name, result_config_map_name
from controller.reconcile_types import Observed
from controller.shards import parse_progress
from controller.startup import startup_overdue


async def observe(kube: Kube, run: AutoLabelRun, now: datetime) -> Observed:
    """The run's worker Job, pods, progress, Events and Workload, as far as each is needed now."""
    metadata = run.metadata
    namespace = metadata["namespace"]
    job = await kube.read_job(namespace, job_name(metadata))
    queue = run.spec.execution.queue_name
    if job is None:
        if queue is None:
            return Observed(now=now)
        exists, installed = await kube.local_queue_exists(namespace, queue)
        return Observed(now=now, local_queue=exists, kueue_installed=installed)
    pods, progress = await asyncio.gather(
        kube.list_run_pods(namespace, metadata["uid"]),
        kube.read_config_map_data(namespace, progress_config_map_name(metadata)),
    )
    events = (
        await kube.list_events(namespace, "Job", job_name(metadata))
        if startup_overdue(run.spec, job, pods, now)
        else []
    )
    workload = await kube.read_job_workload(namespace, job["metadata"]["uid"]) if queue else None
    return Observed(
        now=now,
        job=job,
        pods=pods,
        progress=parse_progress(progress),
        job_events=events,
        workload=workload,
    )


async def review_results(kube: Kube, run: AutoLabelRun) -> dict[str, str]:
    """The result ConfigMap while the run is in Review (where the review agent's verdicts arrive)."""
    conditions = run.status.conditions
    if not is_true(conditions, ConditionType.INFERENCE_COMPLETE) or any(
        is_true(conditions, done) for done in (ConditionType.FINALIZED, ConditionType.DISCARDED)
    ):
        return {}
    name = result_config_map_name(run.metadata)
    return await kube.read_config_map_data(run.metadata["namespace"], name) or {}
