"""kopf registration: thin handlers that hand every run to the one reconcile (see engine.py).

- create / update / resume and a timer all call `Engine.reconcile`;
- deletion runs the documented deletion policy (retain, or delete the run's
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
from collections.abc import Iterable
from typing import Any

import kopf

from controller.api import GROUP, PLURAL, VERSION, AutoLabelRun, DeletionPolicy, Phase
from controller.engine import Engine
from controller.images import allowed_images_from_env
from controller.kube import Kube, load_client
from controller.names import job_name
from controller.reconcile import JobSettings
from controller.step_runner import CleanupUnavailable, delete_predictions

FINALIZER = "autolabel.dev/cleanup"
ANNOTATION_PREFIX = "autolabel.dev"
RECONCILE_INTERVAL_SECONDS = float(os.environ.get("AUTOLABEL_RECONCILE_INTERVAL", "5"))
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
        default_step = command[:-1] if command[-1:] == ("run",) else JobSettings.step_command
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
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = CompactDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events say what happened; kopf's only errors
    settings.watching.server_timeout = 300
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    engine()


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
async def on_change(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    await engine().reconcile(body, patch)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RECONCILE_INTERVAL_SECONDS, sharp=False)
async def on_timer(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    if body.metadata.get("deletionTimestamp"):
        return
    await engine().reconcile(body, patch)


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=DELETE_ATTEMPTS, backoff=5)
async def on_delete(body: kopf.Body, retry: int, **_: Any) -> None:
    """Jobs and ConfigMaps go by ownerReference; predictions go only with deletionPolicy delete."""
    uid = body.metadata["uid"]
    try:
        run = AutoLabelRun.from_body(body)
    except ValueError:
        engine().forget(uid)
        return
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
    engine().forget(uid)
