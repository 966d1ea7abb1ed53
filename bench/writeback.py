"""Write-back: samples/s of the worker's ``PredictionWriter`` against raw pymongo ``bulk_write``.

All three write one classification plus the run marker per sample, 128 samples
per batch (the worker's default ``writeBatchSize``), one ``UpdateOne`` per
sample, one unordered ``bulk_write`` per batch:

- the writer: FiftyOne's documents (`inference.documents`) with the run's
  durable write concern (``w: majority, j: true``);
- raw ``bulk_write`` at the same write concern, a literal dict per sample: the
  database's speed at that durability, the target's denominator;
- raw ``bulk_write`` at the server's default concern (``w: 1``, not journaled),
  the least a client can do, for reference.

The three are interleaved, best of three passes each (the first pass also
creates the fields), so a noisy minute hits them alike.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne

from contract.worker import DatabaseWrites, WorkerConfig
from inference.adapters.base import ClassificationPrediction
from inference.writer import PredictionWriter, SampleResult
from runtime.claims import claim_and_declare
from runtime.durable import write_concern

BATCH = 128
PASSES = 3


def _batches(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + BATCH] for start in range(0, len(ids), BATCH)]


def _writer(dataset: Any) -> PredictionWriter:
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
    return PredictionWriter(dataset, config)


def writer_rate(writer: PredictionWriter, ids: list[str]) -> float:
    start = time.perf_counter()
    for batch in _batches(ids):
        writer.write([SampleResult(sample_id, ClassificationPrediction("cat", 0.9)) for sample_id in batch])
    return len(ids) / (time.perf_counter() - start)


def bulk_write_rate(collection: Any, ids: list[str]) -> float:
    start = time.perf_counter()
    for batch in _batches(ids):
        now = datetime.now(UTC).replace(tzinfo=None)
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
                            "last_modified_at": now,
                        }
                    },
                )
                for sample_id in batch
            ],
            ordered=False,
        )
    return len(ids) / (time.perf_counter() - start)


def measure(dataset: Any) -> dict[str, Any]:
    """Samples/s of the writer and of raw ``bulk_write`` at the writer's and at the default concern."""
    ids: list[str] = dataset.values("id")
    writer = _writer(dataset)
    durable = dataset._sample_collection.with_options(write_concern=write_concern(DatabaseWrites()))
    default = dataset._sample_collection
    rates: dict[str, list[float]] = {"writer": [], "durable": [], "default": []}
    for _ in range(PASSES):
        rates["writer"].append(writer_rate(writer, ids))
        rates["durable"].append(bulk_write_rate(durable, ids))
        rates["default"].append(bulk_write_rate(default, ids))
    best = {key: max(values) for key, values in rates.items()}
    print(
        f"  write-back: writer {best['writer']:.0f} samples/s, raw bulk_write {best['durable']:.0f} "
        f"(same write concern), {best['default']:.0f} (server default concern)",
        flush=True,
    )
    return {
        "samples": len(ids),
        "writerSamplesPerSecond": best["writer"],
        "bulkWriteSamplesPerSecond": best["durable"],
        "bulkWriteDefaultConcernSamplesPerSecond": best["default"],
        "writeConcern": "writer and bulkWrite: w majority, j true; bulkWriteDefaultConcern: server default",
    }
