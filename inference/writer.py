"""Bulk write-back of predictions into the run's staging field: one ``bulk_write`` per batch.

Every label carries the run's uid (attribute ``autolabel_run``) and its
confidence. One update per sample sets, together, the label, the embedding and
the run uid in the marker field (``<stagingField>_run``), so a marker never
exists without its prediction; resume skips samples whose marker is this run.
The batch goes as one unordered bulk write with the durable write concern
(`inference.durable`), retried on transient errors. Writes overwrite the whole
field value per sample, so a sample written twice (killed between writes,
retried after an ambiguous error, rerun) still holds exactly one prediction of
the run. The fields were declared once for the run beforehand
(`inference.claims`): writing values never touches the dataset document.

Label documents are built as plain dicts by `inference.documents` (the same
documents FiftyOne stores, without a mongoengine object per label), which is
what lets the writer run at the database's speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy.typing as npt

from inference.adapters import Prediction, SegmentationPrediction
from inference.config import WorkerConfig
from inference.documents import LabelDocuments, vector_document
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
        self.documents = LabelDocuments(config.task, config.run.uid)
        self._samples = samples(dataset, config.database)

    def to_document(self, sample_id: str, prediction: Prediction) -> dict[str, Any] | None:
        """The stored staging value for one prediction (None when nothing passed the filters)."""
        mask_path = None
        if isinstance(prediction, SegmentationPrediction) and self.mask_dir is not None:
            mask_path = self._save_mask(sample_id, prediction.mask)
        return self.documents.document(prediction, mask_path)

    def _save_mask(self, sample_id: str, mask: npt.NDArray[Any]) -> str:
        from PIL import Image

        assert self.mask_dir is not None
        self.mask_dir.mkdir(parents=True, exist_ok=True)
        path = self.mask_dir / f"{sample_id}.png"
        partial = path.with_suffix(".png.partial")
        Image.fromarray(mask).save(partial, format="PNG")
        partial.replace(path)  # atomic: a killed worker never leaves a half-written mask behind
        return str(path)

    def operations(self, results: list[SampleResult]) -> list[Any]:
        """One ``UpdateOne`` per sample: label, marker, embedding and ``last_modified_at`` in one ``$set``."""
        from bson import ObjectId
        from pymongo import UpdateOne

        now = datetime.now(UTC).replace(tzinfo=None)  # FiftyOne stores naive UTC times
        operations = []
        for result in results:
            update: dict[str, Any] = {
                self.staging_field: self.to_document(result.sample_id, result.prediction),
                self.marker_field: self.run_uid,
                "last_modified_at": now,
            }
            if self.embeddings_field is not None and result.embedding is not None:
                update[self.embeddings_field] = vector_document(result.embedding)
            operations.append(UpdateOne({"_id": ObjectId(result.sample_id)}, {"$set": update}))
        return operations

    def write(self, results: list[SampleResult]) -> None:
        """Write one batch in one durable, unordered ``bulk_write`` (retried when transient)."""
        if not results:
            return
        operations = self.operations(results)
        retried(
            f"writing {len(operations)} predictions",
            self.config.database,
            lambda: self._samples.bulk_write(operations, ordered=False),
        )
