"""Deterministic names and labels of a run's children.

Children are named `alr-<run name>-<hash of the run's uid>`, so a restarted
controller computes the same names and a re-created run of the same name never
adopts an old run's children. Every name is a DNS label: a run name may hold dots
(it is a DNS subdomain), which become `-`, and is cut to fit; the uid hash keeps
names apart. The Indexed Job's name leaves room for its pods' hostnames,
`<job>-<index>`, which must be DNS labels too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from contract.wire import COMPONENT_LABEL, RUN_UID_LABEL
from controller.api import API_VERSION, KIND

MAX_NAME = 63
# An Indexed Job leaves room for `-<index>` of its pods' hostnames (at most 1000 completions: 3 digits,
# one spare).
MAX_JOB_NAME = MAX_NAME - len("-") - 4
RUN_LABEL = "autolabel.dev/run"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "autolabel-operator"


def child_name(run_name: str, run_uid: str, suffix: str = "", limit: int = MAX_NAME) -> str:
    """`alr-<name>-<8 hex of uid>[-suffix]`: a DNS label of at most `limit` characters, deterministic.

    Only what a DNS label cannot hold changes (a dot becomes `-`), so the names of runs
    whose names were labels already stay what they were.
    """
    digest = hashlib.sha256(run_uid.encode()).hexdigest()[:8]
    tail = f"-{digest}" + (f"-{suffix}" if suffix else "")
    room = limit - len("alr-") - len(tail)
    stem = re.sub(r"[^a-z0-9-]", "-", run_name.lower())[:room].strip("-")
    return f"alr-{stem}{tail}" if stem else f"alr{tail}"


def job_name(metadata: Mapping[str, Any]) -> str:
    """The Indexed Job's name, short enough that `<job>-<index>` is a DNS label too."""
    return child_name(metadata["name"], metadata["uid"], limit=MAX_JOB_NAME)


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
