"""kopf registration: thin handlers that hand every run to the one engine (see engine.py).

- create / update / resume call `Engine.reconcile`;
- the run's children (its Jobs, their worker pods, its progress and result ConfigMaps,
  selected by the `autolabel.dev/run-uid` label) are watched, and a change that can alter
  what the run shows (`child_events.py`) reconciles it at once (`Engine.nudge`), the run
  found through the `runs_by_uid` index: nothing is polled; so are Kueue's Workloads of
  queued runs (labelled with their Job's uid, found through `worker_jobs_by_uid`); the
  same change wakes whatever waits for the run's children (`Engine.children`);
- a timer runs only for runs where time itself matters (`timing.needs_timer`:
  deadlines, re-checks and back-off), never in Review with nothing asked, never
  for a suspended or terminal run;
- deletion is `deletion.delete_run`, retried by kopf up to `DELETE_ATTEMPTS` times;
- kopf's settings (its bookkeeping in annotations, the thread pool) are `operator_config.py`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import kopf

from contract.wire import COMPONENT_LABEL, RESULT_COMPONENT, RUN_UID_LABEL
from controller import metrics, operator_config
from controller.api import GROUP, PLURAL, VERSION
from controller.child_events import ChildEvents
from controller.child_signals import ChildSignals
from controller.deletion import DELETE_ATTEMPTS, delete_run
from controller.engine import Engine
from controller.kube import Kube, load_client
from controller.queueing import KUEUE_GROUP, KUEUE_VERSION, WORKLOAD_JOB_UID_LABEL
from controller.reconcile import JobSettings
from controller.timing import needs_timer

RECONCILE_INTERVAL_SECONDS = float(os.environ.get("AUTOLABEL_RECONCILE_INTERVAL", "10"))
CHILDREN: dict[str, Any] = {RUN_UID_LABEL: kopf.PRESENT}
WATCHED_CONFIG_MAPS = frozenset({"progress", RESULT_COMPONENT})  # the snapshot changes only by our own hand
_child_events = ChildEvents()
_child_signals = ChildSignals()  # fed here, waited on by the deletion (Engine.children)
_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine(Kube(load_client()), JobSettings.from_env(os.environ), children=_child_signals)
    return _engine


def _changing_config_map(value: str | None, **_: Any) -> bool:
    return value in WATCHED_CONFIG_MAPS


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    operator_config.configure(settings)
    engine()


@kopf.index(GROUP, VERSION, PLURAL)
def runs_by_uid(body: kopf.Body, uid: str, **_: Any) -> dict[str, Mapping[str, Any]]:
    """The latest body of each run, for the handlers of its children (kopf keeps it current)."""
    return {uid: dict(body)}


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
async def on_change(body: kopf.Body, **_: Any) -> None:
    await engine().reconcile(body, cause="run")


def _timed(body: kopf.Body, **_: Any) -> bool:
    return needs_timer(body)


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    interval=RECONCILE_INTERVAL_SECONDS,
    initial_delay=RECONCILE_INTERVAL_SECONDS,
    sharp=False,
    when=_timed,
)
async def on_timer(body: kopf.Body, **_: Any) -> None:
    if needs_timer(body):  # kopf stops the timer when the filter stops matching; the tick may be late
        await engine().reconcile(body, cause="timer")


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
async def on_job(type: str, body: kopf.Body, uid: str, labels: kopf.Labels, **kwargs: Any) -> None:
    await _on_child("Job", type, body, uid, labels, kwargs["runs_by_uid"])


@kopf.on.event("v1", "pods", labels={**CHILDREN, COMPONENT_LABEL: "worker"})
async def on_worker_pod(type: str, body: kopf.Body, uid: str, labels: kopf.Labels, **kwargs: Any) -> None:
    await _on_child("Pod", type, body, uid, labels, kwargs["runs_by_uid"])


@kopf.on.event("v1", "configmaps", labels={**CHILDREN, COMPONENT_LABEL: _changing_config_map})
async def on_config_map(type: str, body: kopf.Body, uid: str, labels: kopf.Labels, **kwargs: Any) -> None:
    await _on_child("ConfigMap", type, body, uid, labels, kwargs["runs_by_uid"])


@kopf.index("batch", "v1", "jobs", labels={**CHILDREN, COMPONENT_LABEL: "worker"})
def worker_jobs_by_uid(uid: str, labels: kopf.Labels, **_: Any) -> dict[str, str]:
    """Worker Job uid -> run uid: Kueue labels a Workload with its Job's uid, not the run's."""
    return {uid: labels[RUN_UID_LABEL]}


@kopf.on.event(KUEUE_GROUP, KUEUE_VERSION, "workloads", labels={WORKLOAD_JOB_UID_LABEL: kopf.PRESENT})
async def on_workload(type: str, body: kopf.Body, uid: str, labels: kopf.Labels, **kwargs: Any) -> None:
    """Kueue admitted, held or preempted a queued run's Job, or changed its message."""
    for run_uid in kwargs["worker_jobs_by_uid"].get(labels[WORKLOAD_JOB_UID_LABEL], ()):
        await _on_child("Workload", type, body, uid, {RUN_UID_LABEL: run_uid}, kwargs["runs_by_uid"])


async def _on_child(
    kind: str,
    event_type: str,
    body: Mapping[str, Any],
    uid: str,
    labels: Mapping[str, str],
    index: kopf.Index[str, Mapping[str, Any]],
) -> None:
    """A child of a run changed in a way its run can show (or went): the run is reconciled now."""
    try:
        if not _child_events.changed(kind, event_type, uid, body):
            return
        run_uid = labels[RUN_UID_LABEL]
        _child_signals.changed(run_uid)
        for run in index.get(run_uid, ()):
            await engine().nudge(run)
    finally:
        metrics.CHILD_EVENTS.labels(kind, event_type or "LISTED").inc()


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=DELETE_ATTEMPTS, backoff=5)
async def on_delete(body: kopf.Body, retry: int, **_: Any) -> None:
    await delete_run(engine(), body, retry)
