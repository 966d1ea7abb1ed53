"""Dataset steps: the work on a run's dataset, each a one-shot Job in the run's namespace.

Validation (`probe`), a review pass (`review`), `finalize`, `discard` and the
deletion cleanup open the tenant's database, so none of them runs in the
controller: each is a Job of one pod, under the namespace's worker
ServiceAccount, with the database URI from the run's Secret resolved by the
kubelet (`secretKeyRef`, never seen by the controller) and the worker
configuration mounted from the run's snapshot ConfigMap. The pod writes its JSON
verdict (`contract.verdicts`) into the key `Step.key` of the run's result
ConfigMap; the controller reads it (`read_step_verdict`), turns it into status (it
stays the only writer of status), then deletes the Job and the key.

The step is recorded in the Job's annotation, so a restarted controller knows
what a running step is for. The key is `<kind>-g<generation>-<epoch seconds>`:
a retry of the same step is a new Job, never a re-run of a finished one.
Pure: builders of the Step and its Job, no API calls (see step_runner.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contract.env import (
    RESULT_CONFIG_MAP_ENV,
    RESULT_KEY_ENV,
    REVIEW_CONFIG_ENV,
    SECRET_REF_ENV,
    WORKER_CONFIG_PATH,
    Command,
    Flag,
)
from contract.verdicts import VERDICTS, StepFailure, read_verdict
from contract.wire import WireModel
from controller.api import AutoLabelRun, AutoLabelRunSpec
from controller.builders import (
    config_volume,
    database_env,
    object_store_env,
    restricted_pod_security_context,
    restricted_security_context,
    scratch_volume,
)
from controller.names import child_labels, owner_reference, result_config_map_name, step_job_name
from controller.review import ReviewWork
from controller.worker_contract import review_config

STEP_COMPONENT = "dataset-step"
STEP_ANNOTATION = "autolabel.dev/step"
CLEANUP_PATIENCE_S = 10
TIMEOUT_SECONDS = {"validate": 180, "review": 600, "finalize": 3600, "discard": 1800, "cleanup": 600}
FINISHED_TTL_SECONDS = 600  # a step Job the controller did not delete (it was down) goes anyway
ERROR_SHOWN = 2000
"""Characters of a step's error kept in status."""


@dataclass(frozen=True)
class Step:
    """One dataset step of a run: what it runs and where its verdict goes."""

    kind: str  # validate | review | finalize | discard | cleanup
    key: str
    argv: tuple[str, ...]
    generation: int
    work: ReviewWork | None = None

    def annotation(self) -> str:
        document: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key,
            "argv": list(self.argv),
            "generation": self.generation,
        }
        if self.work is not None:
            document["work"] = {
                "discard": self.work.discard,
                "finalize": self.work.finalize,
                "applyRules": self.work.apply_rules,
                "visualize": self.work.visualize,
            }
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_annotation(cls, text: str) -> Step:
        document = json.loads(text)
        generation = int(document["generation"])
        work_doc = document.get("work")
        work = (
            ReviewWork(
                generation,
                discard=bool(work_doc.get("discard")),
                finalize=bool(work_doc.get("finalize")),
                apply_rules=bool(work_doc.get("applyRules")),
                visualize=bool(work_doc.get("visualize")),
            )
            if work_doc is not None
            else None
        )
        return cls(str(document["kind"]), str(document["key"]), tuple(document["argv"]), generation, work)


def _key(kind: str, generation: int, now: datetime) -> str:
    return f"{kind}-g{generation}-{int(now.timestamp())}"


def validation_step(run: AutoLabelRun, now: datetime) -> Step:
    generation = int(run.metadata.get("generation") or 0)
    # A sidecar is checked by each worker; a source run has no model at all (the probe knows).
    model = run.spec.model
    probe = Command.PROBE.value
    argv = (probe,) if model is None or model.endpoint is not None else (probe, Flag.SKIP_TRITON.value)
    return Step("validate", _key("validate", generation, now), argv, generation)


def work_step(run: AutoLabelRun, work: ReviewWork, now: datetime) -> Step:
    kind = "discard" if work.discard else "finalize" if work.finalize else "review"
    return Step(kind, _key(kind, work.generation, now), tuple(work.argv()), work.generation, work)


def cleanup_step(run: AutoLabelRun, now: datetime) -> Step:
    generation = int(run.metadata.get("generation") or 0)
    # Deletion retries the step (5 attempts), so each attempt waits briefly for a dead database. The
    # run's saved views and brain run go too: they point at the staging field the cleanup removes.
    argv = (Command.DISCARD.value, Flag.REVIEW_AIDS.value, Flag.PATIENCE.value, str(CLEANUP_PATIENCE_S))
    return Step("cleanup", _key("cleanup", generation, now), argv, generation)


def step_job(
    metadata: Mapping[str, Any],
    spec: AutoLabelRunSpec,
    step: Step,
    *,
    image: str,
    service_account: str,
    command: list[str],
) -> dict[str, Any]:
    """The Job of `step`: one pod, no retries (the controller decides), its verdict into the result map."""
    secret = spec.dataset.database_secret_ref
    env = [
        *database_env(spec, optional=True),
        *object_store_env(spec, optional=True),  # finalize and discard remove unreferenced mask objects
        {"name": RESULT_CONFIG_MAP_ENV, "value": result_config_map_name(metadata)},
        {"name": RESULT_KEY_ENV, "value": step.key},
        {"name": SECRET_REF_ENV, "value": f"{secret.name}/{secret.key}"},
    ]
    if step.kind in ("review", "finalize"):
        env.append({"name": REVIEW_CONFIG_ENV, "value": review_config(spec).to_json()})
    volume, mount = config_volume(metadata)
    scratch, scratch_mount = scratch_volume()
    container: dict[str, Any] = {
        "name": "step",
        "image": spec.execution.image or image,
        "command": [*command, *step.argv, Flag.CONFIG.value, WORKER_CONFIG_PATH],
        "env": env,
        "volumeMounts": [mount, scratch_mount],
        # FiftyOne alone is about 300 MiB resident; no limit: a finalize of a large dataset needs more.
        "resources": {"requests": {"cpu": "100m", "memory": "384Mi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": restricted_security_context(read_only_root=True),
    }
    if spec.execution.image_pull_policy:
        container["imagePullPolicy"] = spec.execution.image_pull_policy
    labels = child_labels(metadata, STEP_COMPONENT)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": step_job_name(metadata, step.key),
            "namespace": metadata["namespace"],
            "labels": labels,
            "annotations": {STEP_ANNOTATION: step.annotation()},
            "ownerReferences": [owner_reference(metadata)],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": TIMEOUT_SECONDS[step.kind],
            "ttlSecondsAfterFinished": FINISHED_TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account,
                    "securityContext": restricted_pod_security_context(),
                    "containers": [container],
                    "volumes": [volume, scratch],
                },
            },
        },
    }


def read_step_verdict(step: Step, raw: str | None) -> tuple[WireModel | None, str | None]:
    """(verdict, error) from the text `step` wrote into its key; (None, None) when it wrote nothing yet.

    The verdict is the contract's model of the step's command (`contract.verdicts.VERDICTS`).
    """
    try:
        model = VERDICTS[Command(step.argv[0])]
    except (IndexError, ValueError, KeyError):
        return None, f"the step runs no command with a verdict: {list(step.argv)[:4]}"
    verdict = read_verdict(raw, model)
    if isinstance(verdict, StepFailure):
        return None, verdict.error[:ERROR_SHOWN]
    return verdict, None
