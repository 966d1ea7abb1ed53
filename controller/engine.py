"""The I/O around the pure reconcile: observe, reconcile, validate when asked, act, write status.

One `Engine` serves every run. Calls for the same run are serialized by a
per-run lock (kopf runs timers beside event handlers). The controller is the
only writer of status, so the status it last wrote is remembered and preferred
over a watch event that may still carry an older one.

After inference, the review, finalize and discard work the pure reconcile asks
for (`controller.review`) runs as an asyncio subprocess (`review_runner`) under
the run's own lock only: other runs keep being reconciled while a long
finalize goes on. A failed attempt is remembered so it is retried later, not
on every timer tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from pydantic import ValidationError

from controller import metrics
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
from controller.kube import ChildRefused, Kube
from controller.names import job_name, progress_config_map_name
from controller.reconcile import Actions, Event, JobSettings, Observed, Validation, child_refused, reconcile
from controller.review import ReviewWork
from controller.review_runner import run_work
from controller.shards import parse_progress
from controller.startup import startup_overdue
from controller.validation import ValidationUnavailable, validate

log = logging.getLogger("autolabel.controller")
REVALIDATE_SECONDS = 30.0  # how often an unreachable database or Triton server is checked again


@dataclass
class _Memory:
    status: dict[str, Any]
    generation: int


class Engine:
    """Reconciles runs: shared by the create/update/resume handlers and the timer."""

    def __init__(self, kube: Kube, settings: JobSettings) -> None:
        self.kube = kube
        self.settings = settings
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

    def forget(self, uid: str) -> None:
        self._review_failures.pop(uid, None)
        self._validations.pop(uid, None)
        self._locks.pop(uid, None)
        self._written.pop(uid, None)
        self.phases.record(uid, None)

    async def reconcile(self, body: Mapping[str, Any], patch: kopf.Patch) -> None:
        uid = body["metadata"]["uid"]
        lock = self._locks.setdefault(uid, asyncio.Lock())
        started = time.monotonic()
        async with lock:
            try:
                await self._reconcile(body, patch)
            except (ValidationUnavailable, kopf.TemporaryError):
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

    async def _reconcile(self, body: Mapping[str, Any], patch: kopf.Patch) -> None:
        current = self._current_body(body)
        now = datetime.now(UTC).replace(microsecond=0)
        try:
            run = AutoLabelRun.from_body(current)
        except ValidationError as error:
            self._write_invalid_spec(current, error, now, patch)
            return
        observed = await self._observe(run, now)
        observed = replace(observed, review_failed_at=self._review_failures.get(run.metadata["uid"]))
        actions = reconcile(run, observed, self.settings)
        if actions.validate:
            validation = self._recent_validation(run)
            if validation is None:
                validation = await validate(run, self.kube)
                metrics.VALIDATIONS.labels(validation.reason.value).inc()
                self._validations[run.metadata["uid"]] = (time.monotonic(), validation)
            actions = reconcile(run, replace(observed, validation=validation), self.settings)
        if actions.review is not None:
            if actions.review.finalize or actions.review.discard:
                await self._write_now(run, actions)
            actions = await self._review(run, observed, actions.review, now)
        try:
            await self._act(run.metadata["namespace"], actions)
        except ChildRefused as refused:
            actions = child_refused(run, actions, refused.kind, refused.name, refused.message, now)
        self._write(run, actions, patch)

    async def _review(
        self, run: AutoLabelRun, observed: Observed, work: ReviewWork, now: datetime
    ) -> Actions:
        """Runs the review/finalize/discard subprocess (the event loop stays free), then reconciles again."""
        uid = run.metadata["uid"]
        outcome = await run_work(run, work, self.kube)
        if outcome.error is not None:
            log.warning("run %s: %s failed: %s", run.metadata["name"], work.describe(), outcome.error)
            self._review_failures[uid] = now
        else:
            self._review_failures.pop(uid, None)
        return reconcile(run, replace(observed, review=outcome), self.settings)

    async def _observe(self, run: AutoLabelRun, now: datetime) -> Observed:
        metadata = run.metadata
        namespace = metadata["namespace"]
        job = await self.kube.read_job(namespace, job_name(metadata))
        if job is None:
            return Observed(now=now)
        pods, progress = await asyncio.gather(
            self.kube.list_run_pods(namespace, metadata["uid"]),
            self.kube.read_config_map_data(namespace, progress_config_map_name(metadata)),
        )
        events = (
            await self.kube.list_events(namespace, "Job", job_name(metadata))
            if startup_overdue(run.spec, job, pods, now)
            else []
        )
        return Observed(now=now, job=job, pods=pods, progress=parse_progress(progress), job_events=events)

    async def _act(self, namespace: str, actions: Actions) -> None:
        if actions.create_progress_config_map is not None:
            await self.kube.create(actions.create_progress_config_map)
        if actions.create_job is not None:
            await self.kube.create(actions.create_job)
        if actions.patch_job is not None and actions.status.job_name is not None:
            await self.kube.patch_job(namespace, actions.status.job_name, actions.patch_job)

    def _status_changes(self, run: AutoLabelRun, actions: Actions) -> dict[str, Any] | None:
        """The merge patch from the status last written to `actions.status` (None: no change)."""
        uid = run.metadata["uid"]
        new = actions.status.dump()
        old = dict(self._written[uid].status) if uid in self._written else dict(run.status.dump())
        if new == old:
            return None
        self._written[uid] = _Memory(new, int(run.metadata.get("generation") or 0))
        return {**{key: None for key in old if key not in new}, **new}

    async def _write_now(self, run: AutoLabelRun, actions: Actions) -> None:
        """Writes status before long work (finalize, discard), so `Finalizing` shows while it runs."""
        changes = self._status_changes(run, actions)
        if changes is not None:
            await self.kube.patch_run_status(run.metadata["namespace"], run.metadata["name"], changes)
        self._post_events(run, actions)

    def _post_events(self, run: AutoLabelRun, actions: Actions) -> None:
        body = {"apiVersion": "autolabel.dev/v1alpha1", "kind": "AutoLabelRun", "metadata": run.metadata}
        for event in actions.events:
            _post(body, event)
        actions.events.clear()

    def _write(self, run: AutoLabelRun, actions: Actions, patch: kopf.Patch) -> None:
        """Patches status only when it changed, posts the Events, updates metrics."""
        uid = run.metadata["uid"]
        old = dict(self._written[uid].status) if uid in self._written else dict(run.status.dump())
        changes = self._status_changes(run, actions)
        if changes is not None:
            patch.status.update(changes)
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

    def _write_invalid_spec(
        self, current: Mapping[str, Any], error: ValidationError, now: datetime, patch: kopf.Patch
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
                Reason.INVALID_SPEC.value,
                problems,
                generation,
                now,
            )
        status.phase, status.message, status.observed_generation = Phase.FAILED, problems, generation
        patch.status.update(status.dump())
        _post(current, Event("Warning", Reason.INVALID_SPEC.value, problems[:1024]))


def _post(body: Mapping[str, Any], event: Event) -> None:
    kopf.event(cast(kopf.Body, dict(body)), type=event.type, reason=event.reason, message=event.message)
