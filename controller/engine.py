"""One pass over a run: observe, take in a finished step, reconcile, start what is due, act, write status.

One `Engine` serves every run; the create/update/resume handlers, the timer and
the watches of the run's children all call it. Each pass holds the run's lock
(`controller.run_locks`), reads the cluster (`controller.observe`) and the
run's dataset step (`StepRunner.current`), takes in a finished step's verdict
(`controller.step_verdicts`), calls the pure `reconcile`, then starts what it
asks for: a validation step (unless a recent verdict stands,
`controller.validation_cache`), the review agent or a finalize or discard step
(`controller.review`), the worker Job (`controller.act`); and writes status
(`controller.status_writer`). A finished step's Job goes once status holds its
verdict. Dataset steps are one-shot Jobs in the run's namespace (`steps.py`,
`step_runner.py`): the engine starts one and returns, and a later pass finds
its verdict in the result ConfigMap. Nothing here waits on dataset I/O, holds a
database credential or runs tenant code. Deletion is `controller.deletion`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from controller import metrics
from controller.act import act
from controller.agent_runner import ReviewAgents
from controller.api import AutoLabelRun
from controller.child_signals import ChildSignals
from controller.kube import ChildRefused, Kube
from controller.observe import observe, review_results
from controller.reconcile import JobSettings, child_refused, reconcile
from controller.run_locks import RunLocks
from controller.status_writer import PostEvent, StatusWriter, post_with_kopf
from controller.step_runner import StepRunner
from controller.step_verdicts import StepVerdicts
from controller.steps import validation_step, work_step


class Engine:
    """Reconciles runs: shared by the create/update/resume handlers, the timer and the child watches."""

    def __init__(
        self,
        kube: Kube,
        settings: JobSettings,
        post: PostEvent | None = None,
        children: ChildSignals | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.locks = RunLocks()
        self.statuses = StatusWriter(kube, post or post_with_kopf)
        self.verdicts = StepVerdicts()
        # Fed by the watches of the runs' children; deletion waits on it.
        self.children = children if children is not None else ChildSignals()
        pods = (settings.image, settings.service_account, list(settings.step_command))
        self.steps = StepRunner(kube, *pods)
        self.agents = ReviewAgents(kube, *pods)

    def forget(self, uid: str) -> None:
        """Drops what is kept of a deleted run (call holding its lock, see `deletion.deleting`)."""
        self.locks.forget(uid)
        self.verdicts.forget(uid)
        self.agents.forget(uid)
        self.steps.forget(uid)
        self.statuses.forget(uid)

    async def nudge(self, body: Mapping[str, Any]) -> None:
        """Reconciles a run after one of its children changed (retried with back-off if it fails)."""
        await self.locks.nudge(body, self._after_child_change)

    async def _after_child_change(self, body: Mapping[str, Any]) -> None:
        await self.reconcile(body, cause="child")

    async def reconcile(self, body: Mapping[str, Any], cause: str = "run") -> None:
        uid = body["metadata"]["uid"]
        if self.locks.is_gone(uid):
            return
        started = time.monotonic()
        async with self.locks.lock(uid):
            self.locks.taken(uid)
            if self.locks.is_gone(uid) or self.statuses.is_older(body):
                return
            metrics.RECONCILES.labels(cause).inc()
            try:
                await self._pass(body)
            except kopf.TemporaryError:
                metrics.RECONCILE_ERRORS.labels("temporary").inc()
                raise
            except Exception:
                metrics.RECONCILE_ERRORS.labels("error").inc()
                raise
            finally:
                metrics.RECONCILE_DURATION.observe(time.monotonic() - started)

    async def record_finished_step(self, body: Mapping[str, Any]) -> None:
        """A pass that only takes in what finished and writes it down, starting nothing.

        For a deletion, which holds the run's lock already.
        """
        await self._pass(body, deleting=True)

    async def _pass(self, body: Mapping[str, Any], deleting: bool = False) -> None:
        """One pass; `deleting`: only take in what finished and write it down, start nothing."""
        current = self.statuses.current_body(body)
        now = datetime.now(UTC).replace(microsecond=0)
        try:
            run = AutoLabelRun.from_body(current)
        except ValidationError as error:
            await self.statuses.write_invalid_spec(current, error, now)
            return
        uid = run.metadata["uid"]
        observed, step, results = await asyncio.gather(
            observe(self.kube, run, now), self.steps.current(run), review_results(self.kube, run)
        )
        finished = None  # a step whose verdict is taken in: its Job goes once status holds the verdict
        if step is not None and step.done:
            observed = self.verdicts.take_in(run, step, observed, now)
            finished, step = step, None
        observed = replace(observed, review_failed_at=self.verdicts.review_failed_at(uid))
        if observed.review is None and results and not (run.spec.finalize or run.spec.discard):
            observed = replace(observed, review=self.agents.collect(run, results))
        started = run.status.job_name is not None or observed.job is not None
        actions = reconcile(run, observed, self.settings)
        if deleting:
            await self.statuses.write(run, actions)
            if finished is not None:
                await self.steps.finish(run, finished)
            return
        if actions.validate and step is None:
            validation = self.verdicts.validations.recent(run)
            if validation is not None:
                actions = reconcile(run, replace(observed, validation=validation), self.settings)
            else:
                try:
                    await self.steps.start(run, validation_step(run, now), started)
                except ChildRefused as refused:  # e.g. a quota on Jobs: retrying the same Job cannot help
                    actions = child_refused(run, actions, refused.kind, refused.name, refused.message, now)
        if actions.review is not None and step is None:
            try:
                if actions.review.finalize or actions.review.discard:
                    await self.agents.withdraw(run, results)
                    await self.statuses.write_now(run, actions)
                    await self.steps.start(run, work_step(run, actions.review, now), started=True)
                else:
                    await self.agents.request(run, results)
            except ChildRefused as refused:  # the review agent or a finalize/discard step, e.g. by policy
                actions = child_refused(run, actions, refused.kind, refused.name, refused.message, now)
        try:
            if actions.create_job is not None and run.status.job_name is None:
                await self.steps.ensure_snapshot(run, started=False)
            await act(self.kube, run.metadata["namespace"], actions)
        except ChildRefused as refused:
            actions = child_refused(run, actions, refused.kind, refused.name, refused.message, now)
        await self.statuses.write(run, actions)
        if finished is not None:
            await self.steps.finish(run, finished)
