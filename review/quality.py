"""Quality of a run's predictions against a ground-truth field: precision, recall and (detection) mAP.

Reported twice: for all predictions of the run ("overall") and for the approved
ones only ("approved": what finalize would keep, so what approving at the
current thresholds buys). Recall is always relative to all ground truth of the
run's samples. Evaluations run without an ``eval_key``: nothing is written to
the dataset.

- classification: a prediction is correct when its label equals the ground-truth label;
  precision = correct / predictions, recall = correct / samples with ground truth;
- detection: FiftyOne ``evaluate_detections`` (COCO-style matching at ``iouThreshold``,
  micro-averaged precision/recall, ``mAP`` over IoU 0.5:0.95);
- segmentation: FiftyOne ``evaluate_segmentations`` (pixel-wise, micro-averaged).
"""

from __future__ import annotations

import math
from typing import Any

from contract.review import APPROVED_TAG, REJECTED_TAG, ReviewConfig
from contract.worker import Task, WorkerConfig
from review.labels import label_path, run_view


def _unit(value: Any) -> float | None:
    """A metric in [0, 1], or None when FiftyOne reports none (NaN, -1 for "no data")."""
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or number < 0:
        return None
    return round(min(number, 1.0), 6)


def _classification(view: Any, staging: str, truth: str) -> dict[str, Any]:
    predictions, ground_truth = view.values([f"{staging}.label", f"{truth}.label"])
    pairs = list(zip(predictions, ground_truth, strict=True))
    predicted = sum(1 for p, _ in pairs if p is not None)
    expected = sum(1 for _, g in pairs if g is not None)
    correct = sum(1 for p, g in pairs if p is not None and p == g)
    return {
        "precision": _unit(correct / predicted) if predicted else None,
        "recall": _unit(correct / expected) if expected else None,
        "labels": predicted,
    }


def _detection(view: Any, staging: str, truth: str, iou: float) -> dict[str, Any]:
    labels = int(view.count(label_path(view, staging)))
    if labels == 0 and int(view.count(label_path(view, truth))) == 0:
        return {"precision": None, "recall": None, "labels": 0}
    results = view.evaluate_detections(staging, gt_field=truth, iou=iou, compute_mAP=True, progress=False)
    metrics = results.metrics(average="micro")
    try:
        average_precision = results.mAP()
    except Exception:  # no mAP for this evaluation (e.g. no ground truth at all)
        average_precision = None
    return {
        "precision": _unit(metrics.get("precision")) if labels else None,
        "recall": _unit(metrics.get("recall")),
        "mAP": _unit(average_precision),
        "labels": labels,
    }


def _segmentation(view: Any, staging: str, truth: str) -> dict[str, Any]:
    labels = int(view.count(staging))
    if labels == 0:
        return {"precision": None, "recall": None, "labels": 0}
    results = view.evaluate_segmentations(staging, gt_field=truth, progress=False)
    metrics = results.metrics(average="micro")
    return {
        "precision": _unit(metrics.get("precision")),
        "recall": _unit(metrics.get("recall")),
        "labels": labels,
    }


def _metrics(view: Any, config: WorkerConfig, truth: str, review: ReviewConfig) -> dict[str, Any]:
    if config.task is Task.DETECTION:
        return _detection(view, config.staging, truth, review.iou_threshold)
    if config.task is Task.SEGMENTATION:
        return _segmentation(view, config.staging, truth)
    return _classification(view, config.staging, truth)


def quality(dataset: Any, config: WorkerConfig, review: ReviewConfig) -> dict[str, Any]:
    """status.review.quality: ``{"groundTruthField", "overall", "approved"}`` (or an ``error``)."""
    from fiftyone import ViewField

    truth = review.ground_truth_field
    assert truth is not None
    if not dataset.has_sample_field(truth):
        return {"groundTruthField": truth, "error": f"the dataset has no field {truth!r}"}
    if not dataset.has_sample_field(config.staging):
        return {"groundTruthField": truth}
    view = run_view(dataset, config)
    tags = ViewField("tags")
    approved = view.filter_labels(
        config.staging, tags.contains(APPROVED_TAG) & ~tags.contains(REJECTED_TAG), only_matches=False
    )
    try:
        return {
            "groundTruthField": truth,
            "overall": _metrics(view, config, truth, review),
            "approved": _metrics(approved, config, truth, review),
        }
    except Exception as error:  # a ground truth of the wrong type, etc.: reported, never fatal
        return {"groundTruthField": truth, "error": f"{type(error).__name__}: {error}"}
