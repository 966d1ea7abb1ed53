"""The demo's three AutoLabelRuns, their approval rules, and how their status is shown.

`manifests` builds the runs (detection with face_detector, classification with
efficientnet_lite0 and its embeddings, segmentation with selfie_segmentation);
`with_rules` adds the approval rules applied during Review (the GitOps channel);
`progress_line` is one `kubectl get alr`-like line; `summary` the final table.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

API_VERSION = "autolabel.dev/v1alpha1"


@dataclass(frozen=True)
class DemoRun:
    """One example run: its name, task, model and the rules reviewers apply to it."""

    name: str
    task: str
    label_field: str
    model: dict[str, Any]
    approve: list[dict[str, Any]]
    reject: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    parallelism: int = 1


DEMO_RUNS = (
    DemoRun(
        name="faces",
        task="detection",
        label_field="faces",
        model={"name": "face_detector", "outputFormat": "boxes", "classNames": ["face"]},
        extra={"confidenceThreshold": 0.3},
        approve=[{"minConfidence": 0.7}],
        reject=[{"maxConfidence": 0.5}],
    ),
    DemoRun(
        name="imagenet",
        task="classification",
        label_field="imagenet",
        model={
            "name": "efficientnet_lite0",
            "outputFormat": "logits",
            "tensors": {"output": "LOGITS"},
            "embeddings": {"output": "EMBEDDINGS", "field": "imagenet_embeddings"},
        },
        approve=[{"minConfidence": 0.3}],
        reject=[{"maxConfidence": 0.2}],
        parallelism=2,
    ),
    DemoRun(
        name="person-masks",
        task="segmentation",
        label_field="person_mask",
        model={"name": "selfie_segmentation", "outputFormat": "mask"},
        approve=[{"minConfidence": 0.5}],
    ),
)


def manifest(
    run: DemoRun, namespace: str, dataset: str, triton_address: str, media: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run as first applied: no rules yet, statistics refreshed every 5 s; `media`: `dataset.media`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "AutoLabelRun",
        "metadata": {"name": run.name, "namespace": namespace},
        "spec": {
            "task": run.task,
            "dataset": {
                "name": dataset,
                "target": {"all": True},
                "databaseSecretRef": {"name": "fiftyone-db"},
                **({"media": media} if media else {}),
            },
            "model": {"endpoint": {"address": triton_address, "protocol": "grpc"}, **run.model},
            "labelField": run.label_field,
            "execution": {"parallelism": run.parallelism, "maxInFlight": 4, "backoffLimitPerIndex": 1},
            "review": {"refreshIntervalSeconds": 5},
            **run.extra,
        },
    }


def with_rules(document: dict[str, Any], run: DemoRun) -> dict[str, Any]:
    """The same manifest with the run's approve/reject rules, as a reviewer would commit it."""
    updated = copy.deepcopy(document)
    updated["spec"]["review"].update(approve=run.approve, reject=run.reject)
    return updated


def _status(run: dict[str, Any]) -> dict[str, Any]:
    return dict(run.get("status") or {})


def progress_line(run: dict[str, Any]) -> str:
    """NAME TASK PHASE PROGRESS IMG/S APPROVED, as `kubectl get alr` shows (plus images/s)."""
    status = _status(run)
    progress = status.get("progress") or {}
    rate = progress.get("imagesPerSecond")
    review = status.get("review") or {}
    approved = f"{review['approved']}/{review['total']}" if "total" in review else "-"
    return (
        f"{run['metadata']['name']:<13} {run['spec']['task']:<15} {status.get('phase') or '-':<11} "
        f"{progress.get('summary') or '-':<28} {f'{rate:.1f}' if rate else '-':>6} {approved:>9}"
    )


PROGRESS_HEADER = f"{'NAME':<13} {'TASK':<15} {'PHASE':<11} {'PROGRESS':<28} {'IMG/S':>6} {'APPROVED':>9}"


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def _finalized_time(status: dict[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Finalized" and condition.get("status") == "True":
            return str(condition.get("lastTransitionTime"))
    return None


def summary(runs: list[dict[str, Any]], reviews: dict[str, dict[str, Any]]) -> list[str]:
    """Per run: samples, labels per class, approved, discarded, time and images/s.

    `reviews` holds each run's `status.review` as it was just before finalize (finalize removes the
    review aids); the time to Finalized is from the run's creation to its Finalized condition.
    """
    lines = []
    for run in runs:
        name, status = run["metadata"]["name"], _status(run)
        progress = status.get("progress") or {}
        review = reviews.get(name) or status.get("review") or {}
        finalized = status.get("finalized")
        inference_s = _seconds(status.get("startTime"), status.get("completionTime"))
        samples = int(progress.get("total") or 0)
        rate = progress.get("imagesPerSecond") or (samples / inference_s if inference_s else None)
        lines.append(
            f"{name} ({run['spec']['task']}, {run['spec']['model']['name']} -> {run['spec']['labelField']})"
        )
        lines.append(
            f"  phase       {status.get('phase')}"
            + (f": {status['message']}" if status.get("message") else "")
        )
        lines.append(f"  samples     {samples} ({progress.get('failed', 0)} failed)")
        classes = sorted(review.get("classes") or [], key=lambda c: (-int(c.get("count", 0)), c["name"]))
        shown = ", ".join(f"{c['name']}={c['count']}" for c in classes[:8])
        more = f", ... ({len(classes) - 8} more classes)" if len(classes) > 8 else ""
        lines.append(f"  labels      {review.get('total', 0)}: {shown or '-'}{more}")
        lines.append(
            f"  review      approved {review.get('approved', 0)}, rejected {review.get('rejected', 0)}, "
            f"unreviewed {review.get('unreviewed', 0)}"
        )
        if finalized:
            lines.append(
                f"  finalized   kept {finalized.get('promoted', 0)} in '{run['spec']['labelField']}', "
                f"discarded {finalized.get('discarded', 0)}"
            )
        else:
            lines.append("  finalized   pending (the run has not reached Finalized)")
        timing = (
            f"  time        inference {inference_s:.0f}s" if inference_s is not None else "  time        -"
        )
        to_finalized = _seconds(run["metadata"].get("creationTimestamp"), _finalized_time(status))
        if to_finalized is not None:
            timing += f", created to Finalized {to_finalized:.0f}s"
        lines.append(timing + (f", {rate:.2f} images/s (status.progress)" if rate else ""))
    return lines
