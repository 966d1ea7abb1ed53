"""Write-back: samples/s of the worker's ``PredictionWriter`` against raw pymongo ``bulk_write``.

Both write one classification plus the run marker per sample, 128 samples per
batch (the worker's default ``writeBatchSize``). The writer goes through
FiftyOne's ``set_values`` (labels, then markers: two round trips per batch);
raw ``bulk_write`` sends one ``UpdateOne`` per sample with both fields, the
least a client can do.
"""

from __future__ import annotations

import time
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne

from inference.adapters.base import ClassificationPrediction
from inference.config import Task
from inference.writer import PredictionWriter, SampleResult

BATCH = 128


def _batches(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + BATCH] for start in range(0, len(ids), BATCH)]


def writer_rate(dataset: Any, ids: list[str]) -> float:
    writer = PredictionWriter(
        dataset,
        task=Task.CLASSIFICATION,
        staging_field="wb_writer_in_review",
        marker_field="wb_writer_in_review_run",
        run_uid="uid-writeback",
    )
    start = time.perf_counter()
    for batch in _batches(ids):
        writer.write([SampleResult(sample_id, ClassificationPrediction("cat", 0.9)) for sample_id in batch])
    return len(ids) / (time.perf_counter() - start)


def bulk_write_rate(dataset: Any, ids: list[str]) -> float:
    collection = dataset._sample_collection
    start = time.perf_counter()
    for batch in _batches(ids):
        collection.bulk_write(
            [
                UpdateOne(
                    {"_id": ObjectId(sample_id)},
                    {
                        "$set": {
                            "wb_raw_in_review": {
                                "_id": ObjectId(),
                                "_cls": "Classification",
                                "tags": [],
                                "label": "cat",
                                "confidence": 0.9,
                                "autolabel_run": "uid-writeback",
                            },
                            "wb_raw_in_review_run": "uid-writeback",
                        }
                    },
                )
                for sample_id in batch
            ],
            ordered=False,
        )
    return len(ids) / (time.perf_counter() - start)


def measure(dataset: Any) -> dict[str, float]:
    """Samples/s for both, each the better of two passes (the first also creates the fields)."""
    ids: list[str] = dataset.values("id")
    writer = max(writer_rate(dataset, ids) for _ in range(2))
    raw = max(bulk_write_rate(dataset, ids) for _ in range(2))
    print(f"  write-back: writer {writer:.0f} samples/s, raw bulk_write {raw:.0f} samples/s", flush=True)
    return {"samples": len(ids), "writerSamplesPerSecond": writer, "bulkWriteSamplesPerSecond": raw}
