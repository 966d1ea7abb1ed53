"""kopf registration: thin handlers that hand every run to the one reconcile (see engine.py).

- create / update / resume call `Engine.reconcile`;
- the run's children (its Jobs, their worker pods, its progress and result ConfigMaps,
  selected by the `autolabel.dev/run-uid` label) are watched, and a change that can alter
  what the run shows (`child_events.py`) reconciles it at once (`Engine.nudge`), the run
  found through the `runs_by_uid` index: nothing is polled; so are Kueue's Workloads of
  queued runs (labelled with their Job's uid, found through `worker_jobs_by_uid`);
- a timer runs only for runs where time itself matters (`timing.needs_timer`:
  deadlines, re-checks and back-off), never in Review with nothing asked, never
  for a suspended or terminal run;
- status is written by the engine itself, confirmed, under the run's lock
  (kopf's own patches carry only its annotations and the finalizer);
- deletion takes the run's lock, lets a finalize or discard in flight finish, then runs
  the documented deletion policy (retain, or delete the run's
  unfinalized predictions through the `cleanup` dataset step, a pod in the run's
  namespace) with bounded retries, then lets go with an Event;
- kopf keeps its own bookkeeping in annotations, so `status` holds only ours; its copy of the
  last handled spec carries a digest of `sampleIds`, not the ids (10,000 of them would pass the
  256 KiB that all annotations of an object may hold together).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from contract.env import Command
from contract.wire import COMPONENT_LABEL, RESULT_COMPONENT, RUN_UID_LABEL
from controller import metrics
from controller.api import GROUP, PLURAL, VERSION, AutoLabelRun, DeletionPolicy, Phase
from controller.child_events import ChildEvents
from controller.engine import Engine
from controller.images import allowed_images_from_env
from controller.kube import Kube, load_client
from controller.names import job_name
from controller.queueing import KUEUE_GROUP, KUEUE_VERSION, WORKLOAD_JOB_UID_LABEL
from controller.reconcile import JobSettings
from controller.step_runner import CleanupUnavailable, delete_predictions
from controller.steps import TIMEOUT_SECONDS
from controller.timing import needs_timer

FINALIZER = "autolabel.dev/cleanup"
ANNOTATION_PREFIX = "autolabel.dev"
RECONCILE_INTERVAL_SECONDS = float(os.environ.get("AUTOLABEL_RECONCILE_INTERVAL", "10"))
CHILDREN: dict[str, Any] = {RUN_UID_LABEL: kopf.PRESENT}
WATCHED_CONFIG_MAPS = frozenset({"progress", RESULT_COMPONENT})  # the snapshot changes only by our own hand
_child_events = ChildEvents()


def _changing_config_map(value: str | None, **_: Any) -> bool:
    return value in WATCHED_CONFIG_MAPS


KUBE_THREADS = 32
DELETE_ATTEMPTS = 5
POD_STOP_WAIT_SECONDS = 60
CLEANUP_WAIT_SECONDS = 180
log = logging.getLogger("autolabel.controller")
_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        command = tuple(os.environ.get("AUTOLABEL_WORKER_COMMAND", " ".join(JobSettings.command)).split())
        # Dataset steps run the worker's entry point with another subcommand than `run`.
        default_step = command[:-1] if command[-1:] == (Command.RUN,) else JobSettings.step_command
        settings = JobSettings(
            image=os.environ.get("AUTOLABEL_WORKER_IMAGE", JobSettings.image),
            service_account=os.environ.get("AUTOLABEL_WORKER_SERVICE_ACCOUNT", JobSettings.service_account),
            command=command,
            step_command=tuple(os.environ.get("AUTOLABEL_STEP_COMMAND", " ".join(default_step)).split()),
            allowed_images=allowed_images_from_env(os.environ),
        )
        _engine = Engine(Kube(load_client()), settings)
    return _engine


class CompactDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled configuration, with `spec.dataset.target.sampleIds` reduced to a digest."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        target = ((essence.get("spec") or {}).get("dataset") or {}).get("target") or {}
        ids = target.get("sampleIds")
        if isinstance(ids, list) and ids:
            digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()
            target["sampleIds"] = [f"sha256:{digest} ({len(ids)} ids)"]
        return essence


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Every API call of the engine runs in a thread; the default pool (CPUs + 4) would queue
    # the calls of hundreds of runs reconciling at once behind a handful of slow ones.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=KUBE_THREADS))
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = CompactDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events say what happened; kopf's only errors
    settings.watching.server_timeout = 300
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
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
        for run in index.get(labels[RUN_UID_LABEL], ()):
            await engine().nudge(run)
    finally:
        metrics.CHILD_EVENTS.labels(kind, event_type or "LISTED").inc()


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=DELETE_ATTEMPTS, backoff=5)
async def on_delete(body: kopf.Body, retry: int, **_: Any) -> None:
    """Jobs and ConfigMaps go by ownerReference; predictions go only with deletionPolicy delete.

    A finalize or discard in flight finishes first and is recorded (a finalize that promoted
    the labels leaves nothing to delete); the rest runs holding the run's lock.
    """
    uid = body.metadata["uid"]
    try:
        AutoLabelRun.from_body(body)
    except ValueError:
        engine().forget(uid)
        return
    await engine().settle(body, timeout=max(TIMEOUT_SECONDS["finalize"], TIMEOUT_SECONDS["discard"]))
    async with engine().deleting(body) as status:
        await _apply_deletion_policy(body, status, retry)


async def _apply_deletion_policy(body: kopf.Body, status: Mapping[str, Any], retry: int) -> None:
    uid = body.metadata["uid"]
    run = AutoLabelRun.from_body({**body, "status": status})
    finalized = run.status.phase in (Phase.FINALIZED, Phase.DISCARDED)
    if run.spec.deletion_policy is DeletionPolicy.DELETE and not finalized:
        # Stop the workers first, or they would write again behind the cleanup.
        kube, namespace = engine().kube, run.metadata["namespace"]
        await kube.delete_job(namespace, job_name(run.metadata))
        for _second in range(POD_STOP_WAIT_SECONDS):
            if not await kube.list_run_pods(namespace, uid):
                break
            await asyncio.sleep(1)
        try:
            removed = await delete_predictions(engine().steps, run, CLEANUP_WAIT_SECONDS)
        except CleanupUnavailable as error:
            if retry + 1 < DELETE_ATTEMPTS:
                raise kopf.TemporaryError(
                    f"could not delete the run's predictions: {error}", delay=5
                ) from error
            kopf.warn(
                body,
                reason="CleanupAbandoned",
                message=f"gave up deleting the predictions after {DELETE_ATTEMPTS} attempts ({error}); "
                f"the fields {run.status.review_field} may remain in dataset {run.spec.dataset.name}",
            )
        else:
            kopf.info(body, reason="PredictionsDeleted", message=f"removed {removed} predictions of the run")
