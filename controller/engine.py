"""The I/O around the pure reconcile: observe, reconcile, validate when asked, act, write status.

One `Engine` serves every run. Calls for the same run are serialized by a
per-run lock (kopf runs the run's handlers, its timer and its children's
events side by side). The engine is the only writer of status: it patches
status itself, under that lock, and only when the status changed; a refused
patch is sent again until the server holds it (`Kube.write_run_status`), and only
then is it remembered as written and preferred over a watch event that may
still carry an older one. A body older than the generation last written for
(a timer that read the run before an edit) is not reconciled: the newer one is
or was. A pass started by a child's change that fails is tried again with
back-off (kopf never retries an event handler). Deletion takes the same lock
(`deleting`), lets a finalize or discard in flight finish first (`settle`),
and afterwards nothing of the run comes back.

Validation, and after inference the review, finalize and discard work the pure
reconcile asks for (`controller.review`), run as dataset steps: one-shot Jobs
in the run's namespace (`steps.py`, `step_runner.py`). The engine starts a
step and returns; a later reconcile finds its verdict in the result ConfigMap
and reconciles with it. Nothing here waits on dataset I/O, holds a database
credential or runs tenant code. A failed attempt is remembered so it is
retried later, not on every timer tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from pydantic import ValidationError

from contract.verdicts import DiscardVerdict, FinalizeVerdict, ProbeVerdict, ReviewVerdict, ValidationReason
from controller import metrics
from controller.agent_runner import ReviewAgents
from controller.api import (
    AutoLabelRun,
    AutoLabelRunStatus,
    ConditionStatus,
    ConditionType,
    Phase,
    Reason,
    is_true,
    set_condition,
)
from controller.kube import ChildRefused, Kube, RunGone
from controller.names import job_name, progress_config_map_name, result_config_map_name
from controller.reconcile import JobSettings, child_refused, reconcile
from controller.reconcile_types import Actions, Event, Observed, Validation
from controller.review import ReviewOutcome
from controller.shards import parse_progress
from controller.startup import startup_overdue
from controller.step_runner import StepRunner, StepState
from controller.steps import validation_step, work_step

log = logging.getLogger("autolabel.controller")
REVALIDATE_SECONDS = 30.0  # how often an unreachable database or Triton server is checked again
SETTLE_POLL_SECONDS = 1.0
CHILD_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # a failed pass after a child's change, again
IN_FLIGHT_KINDS = ("finalize", "discard")  # dataset steps a deletion waits for


@dataclass
class _Memory:
    status: dict[str, Any]
    generation: int


def _generation(body: Mapping[str, Any]) -> int:
    return int(body["metadata"].get("generation") or 0)


class Engine:
    """Reconciles runs: shared by the create/update/resume handlers, the timer and the child watches."""

    def __init__(
        self,
        kube: Kube,
        settings: JobSettings,
        post: Callable[[Mapping[str, Any], Event], None] | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.post = post or _post
        self._queued: set[str] = set()  # runs with a reconcile waiting for the lock (coalesces nudges)
        self._gone: set[str] = set()  # runs being deleted or deleted: never reconciled again
        self._retries: dict[str, int] = {}  # run uid -> failed passes after a child's change in a row
        self._retrying: set[asyncio.Future[None]] = set()
        pods = (settings.image, settings.service_account, list(settings.step_command))
        self.steps = StepRunner(kube, *pods)
        self.agents = ReviewAgents(kube, *pods)
        self._validation_errors: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._review_failures: dict[str, datetime] = {}
        self._written: dict[str, _Memory] = {}
        self._validations: dict[str, tuple[float, Validation]] = {}
        self.phases = metrics.PhaseBook()

    def _recent_validation(self, run: AutoLabelRun) -> Validation | None:
        """The last verdict for this generation if younger than the re-check interval (transient failures)."""
        cached = self._validations.get(run.metadata["uid"])
        if cached is None:
            return None
        checked_at, validation = cached
        fresh = time.monotonic() - checked_at < REVALIDATE_SECONDS
        return (
            validation
            if fresh and validation.generation == int(run.metadata.get("generation") or 0)
            else None
        )

    def _may_validate(self, uid: str) -> bool:
        """False for a while after a validation step that gave no verdict (it crashed)."""
        failed_at = self._validation_errors.get(uid)
        return failed_at is None or time.monotonic() - failed_at >= REVALIDATE_SECONDS

    def forget(self, uid: str) -> None:
        """Drops what is kept of a deleted run (call holding its lock, see `deleting`)."""
        self._gone.add(uid)
        self._queued.discard(uid)
        self._retries.pop(uid, None)
        self._review_failures.pop(uid, None)
        self._validations.pop(uid, None)
        self._validation_errors.pop(uid, None)
        self.agents.forget(uid)
        self.steps.forget(uid)
        self._written.pop(uid, None)
        self.phases.record(uid, None)

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def nudge(self, body: Mapping[str, Any]) -> None:
        """Reconciles a run after one of its children changed; one waiting pass per run is enough."""
        uid = body["metadata"]["uid"]
        if uid in self._queued or uid in self._gone or body["metadata"].get("deletionTimestamp"):
            return
        self._queued.add(uid)
        try:
            await self.reconcile(body, cause="child")
        except Exception as error:  # kopf never retries an event handler: the engine does, with back-off
            self._queued.discard(uid)
            attempt = self._retries.get(uid, 0)
            self._retries[uid] = attempt + 1
            delay = CHILD_RETRY_SECONDS[min(attempt, len(CHILD_RETRY_SECONDS) - 1)]
            log.warning(
                "run %s: the pass after a child's change failed (%s: %s); again in %.0fs",
                body["metadata"].get("name"),
                type(error).__name__,
                error,
                delay,
            )
            asyncio.get_running_loop().call_later(delay, self._retry, body)
        else:
            self._retries.pop(uid, None)

    def _retry(self, body: Mapping[str, Any]) -> None:
        task = asyncio.ensure_future(self.nudge(body))
        self._retrying.add(task)  # a reference, or the task could be collected before it runs
        task.add_done_callback(self._retrying.discard)

    async def reconcile(self, body: Mapping[str, Any], cause: str = "run") -> None:
        uid = body["metadata"]["uid"]
        if uid in self._gone:
            return
        started = time.monotonic()
        async with self._lock(uid):
            # From here on, a child's change is seen by this pass's reads: later nudges may wait.
            self._queued.discard(uid)
            memory = self._written.get(uid)
            if uid in self._gone or (memory is not None and _generation(body) < memory.generation):
                return
            metrics.RECONCILES.labels(cause).inc()
            try:
                await self._reconcile(body)
            except kopf.TemporaryError:
                metrics.RECONCILE_ERRORS.labels("temporary").inc()
                raise
            except Exception:
                metrics.RECONCILE_ERRORS.labels("error").inc()
                raise
            finally:
                metrics.RECONCILE_DURATION.observe(time.monotonic() - started)

    def _current_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        current = {key: body.get(key) for key in ("apiVersion", "kind", "metadata", "spec", "status")}
        current["metadata"] = dict(body["metadata"])
        memory = self._written.get(body["metadata"]["uid"])
        if memory is not None:
            current["status"] = memory.status
        current["status"] = current.get("status") or {}
        return current

    async def _reconcile(self, body: Mapping[str, Any], deleting: bool = False) -> None:
        """One pass; `deleting`: only take in what finished and write it down, start nothing."""
        current = self._current_body(body)
        now = datetime.now(UTC).replace(microsecond=0)
        try:
            run = AutoLabelRun.from_body(current)
        except ValidationError as error:
            await self._write_invalid_spec(current, error, now)
            return
        uid = run.metadata["uid"]
        observed, step, results = await asyncio.gather(
            self._observe(run, now), self.steps.current(run), self._review_results(run)
        )
        finished = None  # a step whose verdict is taken in: its Job goes once status holds the verdict
        if step is not None and step.done:
            observed = self._collect(run, step, observed, now)
            finished, step = step, None
        observed = replace(observed, review_failed_at=self._review_failures.get(uid))
        if observed.review is None and results and not (run.spec.finalize or run.spec.discard):
            observed = replace(observed, review=self.agents.collect(run, results))
        started = run.status.job_name is not None or observed.job is not None
        actions = reconcile(run, observed, self.settings)
        if deleting:
            await self._write(run, actions)
            if finished is not None:
                await self.steps.finish(run, finished)
            return
        if actions.validate and step is None:
            validation = self._recent_validation(run)
            if validation is not None:
                actions = reconcile(run, replace(observed, validation=validation), self.settings)
            elif self._may_validate(uid):
                try:
                    await self.steps.start(run, validation_step(run, now), started)
                except ChildRefused as refused:  # e.g. a quota on Jobs: retrying the same Job cannot help
                    actions = child_refused(run, actions, refused.kind, refused.name, refused.message, now)
        if actions.review is not None and step is None:
            try:
                if actions.review.finalize or actions.review.discard:
                    await self.agents.withdraw(run, results)
                    await self._write_now(run, actions)
                    await self.steps.start(run, work_step(run, actions.review, now), started=True)
                else:
                    await self.agents.request(run, results)
            except ChildRefused as refused:  # the review agent or a finalize/discard step, e.g. by policy
                actions = child_refused(run, actions, refused.kind, refused.name, refused.message, now)
        try:
            if actions.create_job is not None and run.status.job_name is None:
                await self.steps.ensure_snapshot(run, started=False)
            await self._act(run.metadata["namespace"], actions)
        except ChildRefused as refused:
            actions = child_refused(run, actions, refused.kind, refused.name, refused.message, now)
        await self._write(run, actions)
        if finished is not None:
            await self.steps.finish(run, finished)

    async def settle(self, body: Mapping[str, Any], timeout: float) -> None:
        """Waits for a finalize or discard step in flight, then records its verdict in status.

        Called before a deletion acts: the finalize that is promoting labels finishes and
        is written down, so the deletion policy is applied to what the run really left.
        """
        uid = body["metadata"]["uid"]
        deadline = time.monotonic() + timeout
        while True:
            async with self._lock(uid):
                if uid in self._gone:
                    return
                try:
                    run = AutoLabelRun.from_body(self._current_body(body))
                except ValidationError:
                    return
                state = await self.steps.current(run)
                if state is None or state.step.kind not in IN_FLIGHT_KINDS:
                    return
                if state.done:
                    await self._reconcile(body, deleting=True)
                    return
            if time.monotonic() > deadline:
                raise kopf.TemporaryError(
                    f"the {state.step.kind} step (Job {state.job_name}) is still running", delay=5
                )
            await asyncio.sleep(SETTLE_POLL_SECONDS)

    @asynccontextmanager
    async def deleting(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Holds the run's lock for a deletion; yields the status as last written; forgets the run after.

        No reconcile starts once the lock is held (the run counts as gone), and nothing
        of the run is kept or counted in `autolabel_runs` afterwards.
        """
        uid = body["metadata"]["uid"]
        async with self._lock(uid):
            self._gone.add(uid)
            yield dict(self._current_body(body)["status"])
            self.forget(uid)
        self._locks.pop(uid, None)

    async def _review_results(self, run: AutoLabelRun) -> dict[str, str]:
        """The result ConfigMap while the run is in Review (where the review agent's verdicts arrive)."""
        conditions = run.status.conditions
        if not is_true(conditions, ConditionType.INFERENCE_COMPLETE) or any(
            is_true(conditions, done) for done in (ConditionType.FINALIZED, ConditionType.DISCARDED)
        ):
            return {}
        name = result_config_map_name(run.metadata)
        return await self.kube.read_config_map_data(run.metadata["namespace"], name) or {}

    def _collect(self, run: AutoLabelRun, state: StepState, observed: Observed, now: datetime) -> Observed:
        """A finished step's verdict as what reconcile observes (a validation, or a review outcome)."""
        uid, name, step = run.metadata["uid"], run.metadata["name"], state.step
        if step.kind == "validate":
            if state.never_started:
                validation = Validation(
                    generation=step.generation,
                    ok=False,
                    reason=Reason.STARTUP_TIMEOUT,
                    message=f"{state.error}; fix the cause (e.g. create the worker ServiceAccount), then "
                    "edit the spec or re-create the run",
                )
                self._validations[uid] = (time.monotonic(), validation)
                return replace(observed, validation=validation)
            if not isinstance(state.result, ProbeVerdict):
                log.warning("run %s: the validation step gave no verdict: %s", name, state.error)
                self._validation_errors[uid] = time.monotonic()
                return observed
            verdict = state.result
            validation = Validation(
                generation=step.generation,
                ok=verdict.ok,
                reason=verdict.reason,
                message=verdict.message,
                total=verdict.total,
            )
            metrics.VALIDATIONS.labels(validation.reason.value).inc()
            self._validations[uid] = (time.monotonic(), validation)
            self._validation_errors.pop(uid, None)
            return replace(observed, validation=validation)
        if step.work is None:
            return observed  # a cleanup left over from a deletion that was not completed
        if state.error is not None:
            log.warning("run %s: %s failed: %s", name, step.work.describe(), state.error)
            self._review_failures[uid] = now
        else:
            self._review_failures.pop(uid, None)
        verdicts = (ReviewVerdict, FinalizeVerdict, DiscardVerdict)
        result = state.result if isinstance(state.result, verdicts) else None
        return replace(observed, review=ReviewOutcome(step.work, result=result, error=state.error))

    async def _observe(self, run: AutoLabelRun, now: datetime) -> Observed:
        metadata = run.metadata
        namespace = metadata["namespace"]
        job = await self.kube.read_job(namespace, job_name(metadata))
        queue = run.spec.execution.queue_name
        if job is None:
            if queue is None:
                return Observed(now=now)
            exists, installed = await self.kube.local_queue_exists(namespace, queue)
            return Observed(now=now, local_queue=exists, kueue_installed=installed)
        pods, progress = await asyncio.gather(
            self.kube.list_run_pods(namespace, metadata["uid"]),
            self.kube.read_config_map_data(namespace, progress_config_map_name(metadata)),
        )
        events = (
            await self.kube.list_events(namespace, "Job", job_name(metadata))
            if startup_overdue(run.spec, job, pods, now)
            else []
        )
        workload = await self.kube.read_job_workload(namespace, job["metadata"]["uid"]) if queue else None
        return Observed(
            now=now,
            job=job,
            pods=pods,
            progress=parse_progress(progress),
            job_events=events,
            workload=workload,
        )

    async def _act(self, namespace: str, actions: Actions) -> None:
        if actions.create_progress_config_map is not None:
            await self.kube.create(actions.create_progress_config_map)
        if actions.create_job is not None:
            await self.kube.create(actions.create_job)
        if actions.patch_job is not None and actions.status.job_name is not None:
            await self.kube.patch_job(namespace, actions.status.job_name, actions.patch_job)
        if actions.patch_workload is not None:
            await self.kube.patch_workload(namespace, *actions.patch_workload)

    def _old_status(self, run: AutoLabelRun) -> dict[str, Any]:
        uid = run.metadata["uid"]
        return dict(self._written[uid].status) if uid in self._written else dict(run.status.dump())

    async def _write_status(
        self, metadata: Mapping[str, Any], old: Mapping[str, Any], new: dict[str, Any]
    ) -> None:
        """Patches status from `old` to `new` when they differ; remembered only once the server holds it."""
        if new == old:
            return
        changes = {**{key: None for key in old if key not in new}, **new}
        try:
            await self.kube.write_run_status(metadata["namespace"], metadata["name"], changes)
        except RunGone:
            return  # deleted meanwhile: its deletion handler forgets it
        metrics.STATUS_WRITES.inc()
        self._written[metadata["uid"]] = _Memory(new, int(metadata.get("generation") or 0))

    async def _write_now(self, run: AutoLabelRun, actions: Actions) -> None:
        """Writes status before long work (finalize, discard), so `Finalizing` shows while it runs."""
        await self._write_status(run.metadata, self._old_status(run), actions.status.dump())
        self._post_events(run, actions)

    def _post_events(self, run: AutoLabelRun, actions: Actions) -> None:
        body = {"apiVersion": "autolabel.dev/v1alpha1", "kind": "AutoLabelRun", "metadata": run.metadata}
        for event in actions.events:
            self.post(body, event)
        actions.events.clear()

    async def _write(self, run: AutoLabelRun, actions: Actions) -> None:
        """Patches status only when it changed (confirmed), posts the Events, updates metrics."""
        uid = run.metadata["uid"]
        old = self._old_status(run)
        await self._write_status(run.metadata, old, actions.status.dump())
        self._post_events(run, actions)
        self.phases.record(uid, actions.status.phase.value if actions.status.phase else None)
        previous = AutoLabelRunStatus.model_validate(old) if old else None
        if (
            actions.status.completion_time
            and (previous is None or previous.completion_time is None)
            and actions.status.start_time
            and is_true(actions.status.conditions, ConditionType.INFERENCE_COMPLETE)
        ):
            metrics.JOB_DURATION.observe(
                (actions.status.completion_time - actions.status.start_time).total_seconds()
            )

    async def _write_invalid_spec(
        self, current: Mapping[str, Any], error: ValidationError, now: datetime
    ) -> None:
        """A spec the models refuse (the CRD should have): Failed with the field named."""
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in issue['loc'])}: {issue['msg']}" for issue in error.errors()
        )
        status = AutoLabelRunStatus.model_validate(current.get("status") or {})
        generation = int(current["metadata"].get("generation") or 0)
        for condition_type in (ConditionType.VALIDATED, ConditionType.FAILED):
            status.conditions = set_condition(
                status.conditions,
                condition_type,
                ConditionStatus.FALSE if condition_type is ConditionType.VALIDATED else ConditionStatus.TRUE,
                ValidationReason.INVALID_SPEC.value,
                problems,
                generation,
                now,
            )
        status.phase, status.message, status.observed_generation = Phase.FAILED, problems, generation
        await self._write_status(current["metadata"], dict(current.get("status") or {}), status.dump())
        self.post(current, Event("Warning", ValidationReason.INVALID_SPEC.value, problems[:1024]))


def _post(body: Mapping[str, Any], event: Event) -> None:
    kopf.event(cast(kopf.Body, dict(body)), type=event.type, reason=event.reason, message=event.message)
