"""Write-back: samples/s of the worker's ``PredictionWriter`` against raw pymongo ``bulk_write``.

Both write one classification plus the run marker per sample, 128 samples per
batch (the worker's default ``writeBatchSize``). The writer sends one
``UpdateOne`` per sample with both fields, with the durable write concern
(journaled / majority) and FiftyOne's serialization; raw ``bulk_write`` does the
same with the server's default write concern, the least a client can do.
"""

from __future__ import annotations

import time
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne

from inference.adapters.base import ClassificationPrediction
from inference.claims import claim_and_declare
from inference.config import WorkerConfig
from inference.writer import PredictionWriter, SampleResult

BATCH = 128


def _batches(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + BATCH] for start in range(0, len(ids), BATCH)]


def writer_rate(dataset: Any, ids: list[str]) -> float:
    config = WorkerConfig.model_validate(
        {
            "run": {"namespace": "bench", "name": "writeback", "uid": "uid-writeback"},
            "dataset": dataset.name,
            "labelField": "wb_writer",
            "task": "classification",
            "model": {"url": "127.0.0.1:1", "name": "none", "outputFormat": "logits"},
        }
    )
    claim_and_declare(dataset, config)
    writer = PredictionWriter(dataset, config)
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
