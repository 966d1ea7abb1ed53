"""Bulk write-back of predictions into the run's staging field: one ``bulk_write`` per batch.

Every label carries the run's uid (attribute ``autolabel_run``) and its
confidence. One update per sample sets, together, the label, the embedding and
the run uid in the marker field (``<stagingField>_run``), so a marker never
exists without its prediction; resume skips samples whose marker is this run.
The batch goes as one unordered bulk write with the durable write concern
(`runtime.durable`), retried on transient errors. Writes overwrite the whole
field value per sample, so a sample written twice (killed between writes,
retried after an ambiguous error, rerun) still holds exactly one prediction of
the run. The fields were declared once for the run beforehand
(`runtime.claims`): writing values never touches the dataset document.

Label documents are built as plain dicts by `inference.documents` (the same
documents FiftyOne stores, without a mongoengine object per label), which is
what lets the writer run at the database's speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy.typing as npt

from contract.worker import WorkerConfig
from inference.adapters import Prediction, SegmentationPrediction
from inference.documents import LabelDocuments, vector_document
from runtime.durable import retried, samples
from runtime.masks import MaskStore


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
        self.masks = MaskStore(config) if config.mask_dir else None
        self.embeddings_field = embeddings_field
        self.documents = LabelDocuments(config.task, config.run.uid)
        self._samples = samples(dataset, config.database)

    def _saved_masks(self, results: list[SampleResult]) -> dict[str, str]:
        """Each segmentation mask of the batch saved (before any label references it): sample id -> path."""
        if self.masks is None:
            return {}
        masks = {
            result.sample_id: result.prediction.mask
            for result in results
            if isinstance(result.prediction, SegmentationPrediction)
        }
        return self.masks.save_all(masks)

    def operations(self, results: list[SampleResult]) -> list[Any]:
        """One ``UpdateOne`` per sample: label, marker, embedding and ``last_modified_at`` in one ``$set``."""
        from bson import ObjectId
        from pymongo import UpdateOne

        now = datetime.now(UTC).replace(tzinfo=None)  # FiftyOne stores naive UTC times
        mask_paths = self._saved_masks(results)
        operations = []
        for result in results:
            document = self.documents.document(result.prediction, mask_paths.get(result.sample_id))
            update: dict[str, Any] = {
                self.staging_field: document,
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
