"""Reference labels for the writer's tests: predictions built as FiftyOne's own label classes."""

from __future__ import annotations

from typing import Any

import numpy as np

from contract.worker import RUN_ATTRIBUTE
from inference.adapters import (
    ClassificationPrediction,
    DetectionPrediction,
    Prediction,
    SegmentationPrediction,
)


def fiftyone_label(prediction: Prediction, task: str, run_uid: str, mask_path: str | None = None) -> Any:
    """The label FiftyOne's classes build for `prediction` (None where the writer stores None)."""
    import fiftyone as fo

    identity = {RUN_ATTRIBUTE: run_uid}
    if isinstance(prediction, ClassificationPrediction):
        extra: dict[str, Any] = {"logits": np.asarray(prediction.logits)} if prediction.logits else {}
        return fo.Classification(
            label=prediction.label, confidence=prediction.confidence, **extra, **identity
        )
    if isinstance(prediction, DetectionPrediction) or (prediction is None and task == "detection"):
        boxes = prediction.boxes if prediction is not None else ()
        detections = [
            fo.Detection(
                label=box.label, bounding_box=list(box.bounding_box), confidence=box.confidence, **identity
            )
            for box in boxes
        ]
        return fo.Detections(detections=detections, **identity)
    if isinstance(prediction, SegmentationPrediction):
        if mask_path is not None:
            return fo.Segmentation(mask_path=mask_path, confidence=prediction.confidence, **identity)
        return fo.Segmentation(mask=prediction.mask, confidence=prediction.confidence, **identity)
    return None
