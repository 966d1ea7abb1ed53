"""Shards at dataset scale: start-up and peak RSS of a shard of a 10,000- and a 1,000,000-sample dataset.

Large datasets are inserted straight into the sample collection (documents
copied from one that FiftyOne wrote, with fresh ObjectIds, cycling the bench's
JPEGs: samples share image files), which takes seconds where ``add_samples``
takes many minutes. For each size the bench runs the light model's worker:

- one shard of everything, stopped with SIGTERM after ``--scale-stop`` samples
  (labelling a million samples on 2 shared cores would take most of an hour):
  start-up (process start to the shard's first line: dataset, preflight, the
  shard's IDs, resume) and the RSS plateau;
- shard 0 of ``size / 10,000`` shards, run to the end: a 10,000-sample shard
  of the big dataset, start-up and peak RSS of a whole shard.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

from bson import ObjectId

from bench.models import LIGHT, Setting
from bench.worker_run import run_worker

STARTUP_LIMIT_S = 15.0
RSS_LIMIT_MIB = 600.0
SHARD_SAMPLES = 10_000
INSERT_CHUNK = 20_000


def big_dataset(paths: list[Path], size: int) -> Any:
    """A FiftyOne dataset of ``size`` image samples over ``paths`` (cycled), inserted in bulk."""
    import fiftyone as fo

    dataset = fo.Dataset(f"bench-scale-{size}-{uuid.uuid4().hex[:8]}")
    dataset.add_sample(fo.Sample(filepath=str(paths[0])))
    collection = dataset._sample_collection
    template = collection.find_one({})
    rng = random.Random(size)
    for start in range(1, size, INSERT_CHUNK):
        documents = []
        for index in range(start, min(size, start + INSERT_CHUNK)):
            document = dict(template, _id=ObjectId(), filepath=str(paths[index % len(paths)]))
            document["_rand"] = rng.random()
            documents.append(document)
        collection.insert_many(documents, ordered=False)
    return dataset


def measure(
    paths: list[Path], sizes: list[int], url: str, setting: Setting, stop: int, work: Path
) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        dataset = big_dataset(paths, size)
        shards = max(1, size // SHARD_SAMPLES)
        # A whole shard of at most SHARD_SAMPLES runs to the end; larger ones stop after `stop`.
        runs = [("whole", 1, stop if size > SHARD_SAMPLES else None), ("shard", shards, None)]
        for kind, count, stop_after in runs:
            if kind == "shard" and count == 1:
                continue  # the same run as "whole"
            result = run_worker(
                dataset.name, size, url, LIGHT, setting, work, shards=count, stop_after=stop_after
            )
            row = {"datasetSamples": size, "run": kind, **result.as_dict()}
            print(
                f"  {size} samples, {'1 shard' if count == 1 else f'shard 0 of {count}'}"
                f"{f', stopped after {result.processed}' if result.stopped else ''}: start-up "
                f"{result.startup_seconds:.1f} s, peak RSS {result.peak_rss_mib:.0f} MiB, "
                f"{result.images_per_second:.1f} img/s",
                flush=True,
            )
            rows.append(row)
        dataset.delete()
    return rows


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        f"| dataset samples | run | shard start-up s (target < {STARTUP_LIMIT_S:.0f}) "
        f"| worker peak RSS MiB (target < {RSS_LIMIT_MIB:.0f}) | img/s |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        run = (
            f"1 shard, stopped after {row['processed']}"
            if row["stoppedAfterProcessed"]
            else f"shard 0 of {row['shards']} ({row['processed']} samples)"
        )
        startup, rss = row["startupSeconds"], row["peakRssMiB"]
        startup_verdict = "met" if startup < STARTUP_LIMIT_S else "MISSED"
        rss_verdict = "met" if rss < RSS_LIMIT_MIB else "MISSED"
        lines.append(
            f"| {row['datasetSamples']:,} | {run} | {startup:.1f} {startup_verdict} "
            f"| {rss:.0f} {rss_verdict} | {row['imagesPerSecond']:.1f} |"
        )
    return lines
