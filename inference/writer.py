"""Bulk write-back of predictions into the run's staging field, one batch per database round trip.

Every label carries the run's uid (attribute ``autolabel_run``) and its
confidence. One update per sample sets, together, the label, the embedding and
the run uid in the marker field (``<stagingField>_run``), so a marker never
exists without its prediction; resume skips samples whose marker is this run.
The batch goes as one unordered bulk write with the durable write concern
(`inference.durable`), retried on transient errors. Writes overwrite the whole
field value per sample, so a sample written twice (killed between writes,
retried after an ambiguous error, rerun) still holds exactly one prediction of
the run. The fields were declared beforehand (`inference.claims`): writing
values never touches the dataset document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
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
from inference.claims import RunField, schema_field
from inference.config import RUN_ATTRIBUTE, Task, WorkerConfig
from inference.durable import retried, samples


@dataclass(frozen=True)
class SampleResult:
    sample_id: str
    prediction: Prediction
    embedding: npt.NDArray[Any] | None = None


class PredictionWriter:
    def __init__(self, dataset: Any, config: WorkerConfig, embeddings_field: str | None = None) -> None:
        self.dataset = dataset
        self.config = config
        self.task = config.task
        self.staging_field = config.staging
        self.marker_field = config.marker_field
        self.run_uid = config.run.uid
        self.mask_dir = Path(config.mask_dir) / config.run.uid if config.mask_dir else None
        self.embeddings_field = embeddings_field
        self._label = schema_field(RunField(config.staging, "staging"), config)
        self._vector = schema_field(RunField(embeddings_field or "", "embeddings"), config)
        self._samples = samples(dataset, config.database)

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
                    **({"mask": box.mask} if box.mask is not None else {}),  # instance segmentation
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
        """Write one batch: per sample, label, embedding and resume marker in one update."""
        from bson import ObjectId
        from pymongo import UpdateOne

        if not results:
            return
        now = datetime.now(UTC).replace(tzinfo=None)  # FiftyOne stores naive UTC times
        operations = []
        for result in results:
            label = self.to_label(result.sample_id, result.prediction)
            update: dict[str, Any] = {
                self.staging_field: None if label is None else self._label.to_mongo(label),
                self.marker_field: self.run_uid,
                "last_modified_at": now,
            }
            if self.embeddings_field is not None and result.embedding is not None:
                update[self.embeddings_field] = self._vector.to_mongo(result.embedding)
            operations.append(UpdateOne({"_id": ObjectId(result.sample_id)}, {"$set": update}))
        retried(
            f"writing {len(operations)} predictions",
            self.config.database,
            lambda: self._samples.bulk_write(operations, ordered=False),
        )
