"""Carrying out the worker Job's part of a reconcile's `Actions`: create and patch, nothing else.

Creates the progress ConfigMap and the worker Job (a 409 means it is already
there), patches the Job's `suspend`, and patches Kueue's Workload of a queued
run, in that order. A refused create raises `ChildRefused`, which the engine
turns into a Failed run. Dataset steps and the review agent are started by the
engine through `StepRunner` and `ReviewAgents`; status is written by
`StatusWriter`.
"""

from __future__ import annotations

from controller.kube import Kube
from controller.reconcile_types import Actions


async def act(kube: Kube, namespace: str, actions: Actions) -> None:
    if actions.create_progress_config_map is not None:
        await kube.create(actions.create_progress_config_map)
    if actions.create_job is not None:
        await kube.create(actions.create_job)
    if actions.patch_job is not None and actions.status.job_name is not None:
        await kube.patch_job(namespace, actions.status.job_name, actions.patch_job)
    if actions.patch_workload is not None:
        await kube.patch_workload(namespace, *actions.patch_workload)
