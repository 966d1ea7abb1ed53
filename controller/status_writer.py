"""The only writer of a run's status: patched when it changed, confirmed, remembered once the server holds it.

A pass hands its new status to `write`; it is patched as the difference from
the status last written (a key no longer present is set to None), only when it
changed. A refused patch is sent again until the server holds it
(`Kube.write_run_status`), and only then is it remembered as written, with the
generation it was computed for, and preferred over a watch event that may still
carry an older status (`current_body`). A body older than that generation is
not reconciled (`is_older`). The run's Events are posted after the write, and
`autolabel_runs` and the job duration metric follow. The caller holds the
run's lock, so writes of one run never reorder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import kopf
from pydantic import ValidationError

from contract.verdicts import ValidationReason
from controller import metrics
from controller.api import (
    AutoLabelRun,
    AutoLabelRunStatus,
    ConditionStatus,
    ConditionType,
    Phase,
    is_true,
    set_condition,
)
from controller.kube import Kube, RunGone
from controller.reconcile_types import Actions, Event

PostEvent = Callable[[Mapping[str, Any], Event], None]


@dataclass
class _Written:
    status: dict[str, Any]
    generation: int


def _generation(body: Mapping[str, Any]) -> int:
    return int(body["metadata"].get("generation") or 0)


def post_with_kopf(body: Mapping[str, Any], event: Event) -> None:
    kopf.event(cast(kopf.Body, dict(body)), type=event.type, reason=event.reason, message=event.message)


class StatusWriter:
    """Writes runs' status and Events; remembers what the server holds of each run."""

    def __init__(self, kube: Kube, post: PostEvent) -> None:
        self.kube = kube
        self.post = post
        self._written: dict[str, _Written] = {}
        self.phases = metrics.PhaseBook()

    def forget(self, uid: str) -> None:
        self._written.pop(uid, None)
        self.phases.record(uid, None)

    def is_older(self, body: Mapping[str, Any]) -> bool:
        """The body is of a generation before the one whose status was last written."""
        written = self._written.get(body["metadata"]["uid"])
        return written is not None and _generation(body) < written.generation

    def current_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The body with the status last written in place of the one it carries."""
        current = {key: body.get(key) for key in ("apiVersion", "kind", "metadata", "spec", "status")}
        current["metadata"] = dict(body["metadata"])
        written = self._written.get(body["metadata"]["uid"])
        if written is not None:
            current["status"] = written.status
        current["status"] = current.get("status") or {}
        return current

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
        self._written[metadata["uid"]] = _Written(new, int(metadata.get("generation") or 0))

    def _post_events(self, run: AutoLabelRun, actions: Actions) -> None:
        body = {"apiVersion": "autolabel.dev/v1alpha1", "kind": "AutoLabelRun", "metadata": run.metadata}
        for event in actions.events:
            self.post(body, event)
        actions.events.clear()

    async def write_now(self, run: AutoLabelRun, actions: Actions) -> None:
        """Writes status before long work (finalize, discard), so `Finalizing` shows while it runs."""
        await self._write_status(run.metadata, self._old_status(run), actions.status.dump())
        self._post_events(run, actions)

    async def write(self, run: AutoLabelRun, actions: Actions) -> None:
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

    async def write_invalid_spec(
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
