"""Deterministic names and labels of a run's children.

Children are named `alr-<run name>-<hash of the run's uid>` (truncated to fit
63 characters), so a restarted controller computes the same names and a
re-created run of the same name never adopts an old run's children.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from controller.api import API_VERSION, KIND

MAX_NAME = 63
RUN_LABEL = "autolabel.dev/run"
RUN_UID_LABEL = "autolabel.dev/run-uid"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "autolabel-operator"


def child_name(run_name: str, run_uid: str, suffix: str = "") -> str:
    """`alr-<name>-<8 hex of uid>[-suffix]`, at most 63 characters, a valid DNS label."""
    digest = hashlib.sha256(run_uid.encode()).hexdigest()[:8]
    tail = f"-{digest}" + (f"-{suffix}" if suffix else "")
    room = MAX_NAME - len("alr-") - len(tail)
    stem = run_name[:room].rstrip("-.")
    return f"alr-{stem}{tail}"


def job_name(metadata: Mapping[str, Any]) -> str:
    return child_name(metadata["name"], metadata["uid"])


def progress_config_map_name(metadata: Mapping[str, Any]) -> str:
    return child_name(metadata["name"], metadata["uid"], "progress")


def snapshot_config_map_name(metadata: Mapping[str, Any]) -> str:
    """The run's snapshot: the validated spec and the worker configuration every pod mounts."""
    return child_name(metadata["name"], metadata["uid"], "snapshot")


def result_config_map_name(metadata: Mapping[str, Any]) -> str:
    """Where dataset-step pods write their JSON verdicts (one key per step)."""
    return child_name(metadata["name"], metadata["uid"], "result")


def step_job_name(metadata: Mapping[str, Any], key: str) -> str:
    """The one-shot Job of a dataset step, e.g. `alr-<name>-<hash>-validate-g3-1764582000`."""
    return child_name(metadata["name"], metadata["uid"], key)


def child_labels(metadata: Mapping[str, Any], component: str) -> dict[str, str]:
    # Label values are limited to 63 characters; run names may be longer (253).
    return {
        RUN_LABEL: metadata["name"][:63].rstrip("-._"),
        RUN_UID_LABEL: metadata["uid"],
        COMPONENT_LABEL: component,
        MANAGED_BY_LABEL: MANAGER,
    }


def owner_reference(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Makes the run the controlling owner, so deleting it garbage-collects the child."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
