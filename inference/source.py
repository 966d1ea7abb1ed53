"""Review existing labels: a run whose labels come from a field of the dataset instead of a model.

With ``source.field`` the shard reads that field's labels page by page and writes
copies of them, as the run's predictions, into the staging field through the same
`PredictionWriter` as inference (same marker, resume and verification), so they get
the same review, rules and finalize. The source field is only read: the copies are
new labels (new ids) carrying the run's uid, holding the label, its confidence and
the box or mask; a sample whose field is empty gets an empty prediction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial
from typing import Any

from contract.worker import LABEL_TYPES, Task, WorkerConfig
from inference.adapters.base import (
    BoxPrediction,
    ClassificationPrediction,
    DetectionPrediction,
    Prediction,
    SegmentationPrediction,
)
from inference.progress import ProgressTracker
from inference.writer import PredictionWriter, SampleResult
from runtime.durable import retried


def source_problem(dataset: Any, config: WorkerConfig) -> str | None:
    """Why the dataset's source field cannot feed this run (None when it can)."""
    assert config.source is not None
    field = config.source.field
    schema = dataset.get_field_schema()
    wanted = LABEL_TYPES[config.task]
    if field not in schema:
        return f"dataset {config.dataset!r} has no field {field!r}; fix source.field"
    kind = getattr(schema[field], "document_type", None)
    if kind is None or kind.__name__ != wanted:
        found = kind.__name__ if kind is not None else type(schema[field]).__name__
        return (
            f"source.field {field!r} holds {found}, but task {config.task} reviews {wanted} labels; "
            "fix source.field or task"
        )
    return None


def _kept(confidence: float | None, threshold: float) -> bool:
    """A threshold keeps labels at or above it; one without a confidence passes only a zero threshold."""
    return threshold <= 0 or (confidence is not None and confidence >= threshold)


def to_prediction(label: Any, task: Task, threshold: float = 0.0) -> Prediction:
    """The prediction a stored label stands for (its label, confidence and box or mask only)."""
    if label is None:
        return None if task != Task.DETECTION else DetectionPrediction(boxes=())
    if task == Task.CLASSIFICATION:
        if not _kept(label.confidence, threshold):
            return None
        return ClassificationPrediction(label=label.label, confidence=label.confidence)
    if task == Task.DETECTION:
        boxes = tuple(
            BoxPrediction(label=d.label, confidence=d.confidence, bounding_box=tuple(d.bounding_box))
            for d in label.detections
            if d.bounding_box is not None and _kept(d.confidence, threshold)
        )
        return DetectionPrediction(boxes=boxes)
    mask = label.get_mask()
    if mask is None:
        return None
    return SegmentationPrediction(mask=mask.astype("uint8"), confidence=label.confidence, classes=())


def _page(dataset: Any, sample_ids: list[str], field: str) -> list[tuple[str, Any]]:
    ids, labels = dataset.select(sample_ids).values(["id", field])
    return list(zip(ids, labels, strict=True))


class SourcePipeline:
    """Copies a shard's source labels into the staging field, ``writeBatchSize`` samples at a time."""

    def __init__(
        self, config: WorkerConfig, dataset: Any, writer: PredictionWriter, tracker: ProgressTracker
    ) -> None:
        assert config.source is not None
        self.config = config
        self.field = config.source.field
        self.threshold = config.source.confidence_threshold
        self.dataset = dataset
        self.writer = writer
        self.tracker = tracker
        self.failed_ids: set[str] = set()  # nothing fails to decode here; kept for the shard's verification

    async def run(self, sample_ids: Sequence[str]) -> None:
        size = self.config.write_batch_size
        for start in range(0, len(sample_ids), size):
            chunk = list(sample_ids[start : start + size])
            page = await asyncio.to_thread(
                retried,
                "reading source labels",
                self.config.database,
                partial(_page, self.dataset, chunk, self.field),
            )
            results = [
                SampleResult(sample_id, to_prediction(label, self.config.task, self.threshold))
                for sample_id, label in page
            ]
            await asyncio.to_thread(self.writer.write, results)
            self.tracker.add_processed(len(results))
