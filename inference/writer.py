"""Bulk write-back of predictions into the run's staging field, one batch per database round trip.

Every label carries the run's uid (attribute ``autolabel_run``) and its
confidence. After the labels, the batch's samples get the run uid in the marker
field (``<stagingField>_run``); resume skips samples whose marker is this run.
Writes overwrite the whole field value per sample, so a sample written twice
(killed between writes, rerun) still holds exactly one prediction of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inference.adapters import (
    ClassificationPrediction,
    DetectionPrediction,
    Prediction,
    SegmentationPrediction,
)
from inference.config import RUN_ATTRIBUTE, Task


@dataclass(frozen=True)
class SampleResult:
    sample_id: str
    prediction: Prediction
    embedding: npt.NDArray[Any] | None = None


class PredictionWriter:
    def __init__(
        self,
        dataset: Any,
        *,
        task: Task,
        staging_field: str,
        marker_field: str,
        run_uid: str,
        mask_dir: str | None = None,
        embeddings_field: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.task = task
        self.staging_field = staging_field
        self.marker_field = marker_field
        self.run_uid = run_uid
        self.mask_dir = Path(mask_dir) / run_uid if mask_dir else None
        self.embeddings_field = embeddings_field

    def to_label(self, sample_id: str, prediction: Prediction) -> Any:
        """The FiftyOne label for one prediction (None when nothing passed the filters)."""
        import fiftyone as fo

        identity = {RUN_ATTRIBUTE: self.run_uid}
        if isinstance(prediction, ClassificationPrediction):
            extra: dict[str, Any] = {"logits": np.asarray(prediction.logits)} if prediction.logits else {}
            return fo.Classification(
                label=prediction.label, confidence=prediction.confidence, **extra, **identity
            )
        if isinstance(prediction, DetectionPrediction):
            detections = [
                fo.Detection(
                    label=box.label,
                    bounding_box=list(box.bounding_box),
                    confidence=box.confidence,
                    **identity,
                )
                for box in prediction.boxes
            ]
            return fo.Detections(detections=detections, **identity)
        if isinstance(prediction, SegmentationPrediction):
            if self.mask_dir is not None:
                return fo.Segmentation(
                    mask_path=self._save_mask(sample_id, prediction.mask),
                    confidence=prediction.confidence,
                    **identity,
                )
            return fo.Segmentation(mask=prediction.mask, confidence=prediction.confidence, **identity)
        if self.task == Task.DETECTION:
            return fo.Detections(detections=[], **identity)
        return None

    def _save_mask(self, sample_id: str, mask: npt.NDArray[Any]) -> str:
        from PIL import Image

        assert self.mask_dir is not None
        self.mask_dir.mkdir(parents=True, exist_ok=True)
        path = self.mask_dir / f"{sample_id}.png"
        partial = path.with_suffix(".png.partial")
        Image.fromarray(mask).save(partial, format="PNG")
        partial.replace(path)  # atomic: a killed worker never leaves a half-written mask behind
        return str(path)

    def write(self, results: list[SampleResult]) -> None:
        """Write one batch: embeddings, then labels, then the resume markers."""
        if not results:
            return
        if self.embeddings_field is not None:
            embeddings = {r.sample_id: r.embedding for r in results if r.embedding is not None}
            if embeddings:
                self.dataset.set_values(self.embeddings_field, embeddings, key_field="id")
        labels = {r.sample_id: self.to_label(r.sample_id, r.prediction) for r in results}
        self.dataset.set_values(self.staging_field, labels, key_field="id")
        self.dataset.set_values(
            self.marker_field, {r.sample_id: self.run_uid for r in results}, key_field="id"
        )
