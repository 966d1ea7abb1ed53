"""Running a run's dataset steps (see steps.py) through the API: snapshot, start, collect, clean up.

At most one step runs per run at a time. `current` finds the run's step Job (by
label, so it survives a controller restart) and its verdict in the result
ConfigMap; `finish` deletes the Job and the key once the verdict is in status.
Before the worker Job exists the snapshot ConfigMap follows the spec's
generation (each validation checks exactly what it holds); once the run has
started it is never written again, and every later step mounts it.
`delete_predictions` runs the deletion's cleanup step and waits for its verdict
on the watch of the run's children.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contract.verdicts import DiscardVerdict
from contract.wire import WireModel
from controller.api import AutoLabelRun
from controller.builders import GENERATION_ANNOTATION, result_config_map, snapshot_config_map
from controller.child_signals import ChildChanges
from controller.kube import Kube
from controller.names import result_config_map_name, snapshot_config_map_name
from controller.steps import STEP_ANNOTATION, STEP_COMPONENT, Step, cleanup_step, read_step_verdict, step_job


@dataclass(frozen=True)
class StepState:
    """A step Job of the run and, when it is done, its verdict or why there is none."""

    step: Step
    job_name: str
    result: WireModel | None = None  # the contract's verdict of the step's command
    error: str | None = None
    never_started: bool = False  # the Job's pod was never created (e.g. no worker ServiceAccount)

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


def _finished(job: Mapping[str, Any]) -> str | None:
    """The Job's Failed condition message, when it failed."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return str(condition.get("message") or condition.get("reason") or "failed")
    return None


STEP_START_SECONDS = 60
"""How long a step Job may go without any pod before its FailedCreate Events are taken as final."""


def _age_seconds(job: Mapping[str, Any], now: datetime) -> float:
    created = str((job.get("metadata") or {}).get("creationTimestamp") or "")
    try:
        return (now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return 0.0


def _never_created(events: list[dict[str, Any]]) -> str | None:
    """The message of the Job controller's FailedCreate Event, when it could not create the pod."""
    for event in sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or "")):
        if event.get("reason") == "FailedCreate":
            return str(event.get("message") or "the Job could not create its pod")
    return None


def _pod_message(pods: list[dict[str, Any]]) -> str:
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                lines = str(terminated["message"]).strip().splitlines()
                return " | ".join(lines[-3:])
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        if annotations.get("autolabel.dev/termination-message"):
            return " | ".join(str(annotations["autolabel.dev/termination-message"]).splitlines()[-3:])
    return ""


class StepRunner:
    """The controller's side of dataset steps; every call is a Kubernetes call."""

    def __init__(self, kube: Kube, image: str, service_account: str, command: list[str]) -> None:
        self.kube = kube
        self.image = image
        self.service_account = service_account
        self.command = command
        self._snapshots: dict[str, int] = {}  # run uid -> generation its snapshot is known to hold

    def forget(self, uid: str) -> None:
        self._snapshots.pop(uid, None)

    async def ensure_snapshot(self, run: AutoLabelRun, started: bool) -> None:
        """The snapshot exists; before the run started, it holds the current generation's spec."""
        metadata, namespace = run.metadata, run.metadata["namespace"]
        generation = int(metadata.get("generation") or 0)
        if self._snapshots.get(metadata["uid"]) == generation:
            return  # written or checked by this process for this generation (e.g. at validation)
        manifest = snapshot_config_map(metadata, run.spec)
        if await self.kube.create(manifest) or started:
            self._snapshots[metadata["uid"]] = generation
            return
        current = await self.kube.read_config_map(namespace, snapshot_config_map_name(metadata))
        annotations = ((current or {}).get("metadata") or {}).get("annotations") or {}
        wanted = manifest["metadata"]["annotations"][GENERATION_ANNOTATION]
        if annotations.get(GENERATION_ANNOTATION) != wanted:
            await self.kube.patch_config_map(
                namespace,
                snapshot_config_map_name(metadata),
                {"metadata": {"annotations": manifest["metadata"]["annotations"]}, "data": manifest["data"]},
            )
        self._snapshots[metadata["uid"]] = generation

    async def current(self, run: AutoLabelRun) -> StepState | None:
        """The run's step (the oldest when several), with its verdict once written."""
        namespace, uid = run.metadata["namespace"], run.metadata["uid"]
        jobs = await self.kube.list_run_jobs(namespace, uid, STEP_COMPONENT)
        jobs = [
            j
            for j in jobs
            if not (j.get("metadata") or {}).get("deletionTimestamp")
            and STEP_ANNOTATION in ((j.get("metadata") or {}).get("annotations") or {})
        ]
        if not jobs:
            return None
        jobs.sort(key=lambda j: str(j["metadata"].get("creationTimestamp") or ""))
        job = jobs[0]
        name = job["metadata"]["name"]
        step = Step.from_annotation(job["metadata"]["annotations"][STEP_ANNOTATION])
        data = await self.kube.read_config_map_data(namespace, result_config_map_name(run.metadata)) or {}
        result, error = read_step_verdict(step, data.get(step.key))
        never_started = False
        if result is None and error is None:
            failed = _finished(job)
            pods = await self.kube.list_job_pods(namespace, name)
            if failed is not None:
                detail = _pod_message(pods)
                error = f"{step.kind} Job {name} failed: {detail or failed}"[:2000]
            if not pods and (failed is not None or _age_seconds(job, datetime.now(UTC)) > STEP_START_SECONDS):
                cause = _never_created(await self.kube.list_events(namespace, "Job", name))
                if cause is not None:
                    never_started = True
                    error = f"the pod of the {step.kind} step (Job {name}) was never created: {cause}"[:2000]
        return StepState(step, name, result, error, never_started)

    async def start(self, run: AutoLabelRun, step: Step, started: bool) -> None:
        await asyncio.gather(
            self.kube.create(result_config_map(run.metadata)), self.ensure_snapshot(run, started)
        )
        await self.kube.create(
            step_job(
                run.metadata,
                run.spec,
                step,
                image=self.image,
                service_account=self.service_account,
                command=self.command,
            )
        )

    async def finish(self, run: AutoLabelRun, state: StepState) -> None:
        namespace = run.metadata["namespace"]
        await self.kube.delete_job(namespace, state.job_name)
        await self.kube.patch_config_map(
            namespace, result_config_map_name(run.metadata), {"data": {state.step.key: None}}
        )


class CleanupUnavailable(Exception):
    """The run's predictions could not be removed now (the cleanup step failed or did not finish)."""


async def delete_predictions(
    runner: StepRunner, run: AutoLabelRun, wait_seconds: float, changes: ChildChanges
) -> int:
    """Runs the cleanup step (stopping any other step first) and returns how many labels went.

    `changes`: the watch of the run's children, opened before the step starts; its Job and
    its verdict arrive there, and only the step's start deadline is checked on time.
    """
    state = await runner.current(run)
    while state is not None and state.step.kind != "cleanup":
        await runner.finish(run, state)
        state = await runner.current(run)
    if state is None:
        await runner.start(run, cleanup_step(run, datetime.now(UTC)), started=True)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        state = await runner.current(run)
        if state is not None and state.done:
            await runner.finish(run, state)
            if state.error is not None or not isinstance(state.result, DiscardVerdict):
                raise CleanupUnavailable(state.error or "the cleanup step gave no verdict")
            return state.result.removed
        await changes.next_change(min(deadline - time.monotonic(), STEP_START_SECONDS))
    raise CleanupUnavailable(f"the cleanup step did not finish in {wait_seconds:.0f}s")
