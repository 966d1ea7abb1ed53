"""Deleting a run: let a finalize or discard in flight finish, apply the deletion policy, forget the run.

Jobs and ConfigMaps go with the run by ownerReference; predictions go only with
`deletionPolicy: delete`. First a finalize or discard step in flight is waited
for and its verdict written to status (`settle`), so the policy acts on what the
run really left: a finalize that promoted the labels leaves nothing to delete.
The rest holds the run's lock (`deleting`), so no pass starts meanwhile. With
`delete` on a run not finalized or discarded, the worker Job is deleted and the
deletion waits, with a deadline, until the run's worker pods are gone, or they
would write again behind the cleanup; then the `cleanup` dataset step removes
the run's unfinalized predictions. Every wait here is woken by the watches of
the run's children (`controller.child_signals`), not by a clock; only a step's
start deadline (a pod never created changes nothing watched) is checked on time.
A cleanup that cannot run is retried by kopf, up to `DELETE_ATTEMPTS`, then
abandoned with a `CleanupAbandoned` Event. Afterwards nothing of the run is kept
or counted in `autolabel_runs`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import kopf
from pydantic import ValidationError

from controller.api import AutoLabelRun, DeletionPolicy, Phase
from controller.child_signals import ChildChanges
from controller.engine import Engine
from controller.kube import Kube
from controller.names import job_name
from controller.step_runner import STEP_START_SECONDS, CleanupUnavailable, delete_predictions
from controller.steps import TIMEOUT_SECONDS

log = logging.getLogger("autolabel.controller")
DELETE_ATTEMPTS = 5
WORKERS_STOP_SECONDS = 60.0  # past it the cleanup runs anyway
CLEANUP_WAIT_SECONDS = 180
IN_FLIGHT_KINDS = ("finalize", "discard")  # dataset steps a deletion waits for
SETTLE_SECONDS = max(TIMEOUT_SECONDS["finalize"], TIMEOUT_SECONDS["discard"])


async def delete_run(engine: Engine, body: kopf.Body, retry: int) -> None:
    """The whole deletion of a run (`retry`: kopf's count of earlier attempts of this handler)."""
    uid = body.metadata["uid"]
    try:
        AutoLabelRun.from_body(body)
    except ValueError:
        engine.forget(uid)
        return
    await settle(engine, body, timeout=SETTLE_SECONDS)
    async with deleting(engine, body) as status:
        await apply_deletion_policy(engine, body, status, retry)


async def settle(engine: Engine, body: Mapping[str, Any], timeout: float) -> None:
    """Waits for a finalize or discard step in flight, then records its verdict in status.

    Called before a deletion acts: the finalize that is promoting labels finishes and
    is written down, so the deletion policy is applied to what the run really left.
    """
    uid = body["metadata"]["uid"]
    deadline = time.monotonic() + timeout
    with engine.children.watching(uid) as changes:
        while True:
            async with engine.locks.lock(uid):
                if engine.locks.is_gone(uid):
                    return
                try:
                    run = AutoLabelRun.from_body(engine.statuses.current_body(body))
                except ValidationError:
                    return
                state = await engine.steps.current(run)
                if state is None or state.step.kind not in IN_FLIGHT_KINDS:
                    return
                if state.done:
                    await engine.record_finished_step(body)
                    return
            left = deadline - time.monotonic()
            if left < 0:
                raise kopf.TemporaryError(
                    f"the {state.step.kind} step (Job {state.job_name}) is still running", delay=5
                )
            # Its Job and its verdict arrive by watch; a pod never created changes nothing that is
            # watched, so the step's start deadline is checked on time.
            await changes.next_change(min(left, STEP_START_SECONDS))


@asynccontextmanager
async def deleting(engine: Engine, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Holds the run's lock for a deletion; yields the status as last written; forgets the run after.

    No reconcile starts once the lock is held (the run counts as gone), and nothing
    of the run is kept or counted in `autolabel_runs` afterwards.
    """
    uid = body["metadata"]["uid"]
    async with engine.locks.lock(uid):
        engine.locks.mark_gone(uid)
        yield dict(engine.statuses.current_body(body)["status"])
        engine.forget(uid)
    engine.locks.drop(uid)


async def apply_deletion_policy(
    engine: Engine, body: kopf.Body, status: Mapping[str, Any], retry: int
) -> None:
    """`deletionPolicy: delete` on a run not finalized or discarded: stop the workers, run the cleanup."""
    run = AutoLabelRun.from_body({**body, "status": status})
    finalized = run.status.phase in (Phase.FINALIZED, Phase.DISCARDED)
    if run.spec.deletion_policy is not DeletionPolicy.DELETE or finalized:
        return
    # Stop the workers first, or they would write again behind the cleanup.
    namespace, uid = run.metadata["namespace"], run.metadata["uid"]
    with engine.children.watching(uid) as changes:
        await engine.kube.delete_job(namespace, job_name(run.metadata))
        if not await wait_for_workers_to_stop(engine.kube, changes, namespace, uid, WORKERS_STOP_SECONDS):
            log.warning("run %s: worker pods left after %.0fs; cleaning up anyway", uid, WORKERS_STOP_SECONDS)
        try:
            removed = await delete_predictions(engine.steps, run, CLEANUP_WAIT_SECONDS, changes)
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


async def wait_for_workers_to_stop(
    kube: Kube, changes: ChildChanges, namespace: str, run_uid: str, timeout: float
) -> bool:
    """Waits until the run has no worker pods; False when some remain at the deadline.

    Reads the pods once, then again only when the watch of the run's children reports
    a change (`changes`, opened before the worker Job was deleted), never on a clock.
    """
    deadline = time.monotonic() + timeout
    while await kube.list_run_pods(namespace, run_uid):
        if not await changes.next_change(deadline - time.monotonic()):
            return False
    return True
