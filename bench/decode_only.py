"""(d) The worker's local limit: its own read + decode + preprocess, with no inference and no writes.

``python -m bench.decode_only CONFIG`` takes the same worker config as (b),
runs the worker's preflight against the same Triton (so the input size,
layout, batch and decode-ahead window are the plan the worker would use), then
drives `inference.decode_stage.DecodeStage` over the whole target exactly as
the shard pipeline does, stacking each batch into its request tensor and
dropping it. Prints one JSON line: ``{"images", "failed", "seconds"}``, the
seconds counted from the first page read to the last batch.

``--profile FILE`` writes a cProfile of that run (the bench's profile notes in
docs/benchmarks.md come from it and from py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import sys
import time
from pathlib import Path

from contract.worker import WorkerConfig
from inference.decode import Preprocessor, decode_budget
from inference.decode_stage import DecodeStage
from inference.preflight import preflight
from inference.reader import load_dataset, target_ids
from inference.triton_client import TritonClient
from runtime.errors import DecodeError


async def decode_only(config: WorkerConfig) -> dict[str, float]:
    client = TritonClient(config.triton_model())
    try:
        plan = await preflight(client, config)
    finally:
        await client.close()
    dataset = load_dataset(config.dataset)
    ids = target_ids(dataset, config.target)
    budget = decode_budget(
        plan.input_spec,
        config.batch_size if plan.input_spec.batched else 1,
        config.max_in_flight,
        config.decode_threads,
        fetch_concurrency=config.object_store.fetch_concurrency,
    )
    failed: list[str] = []

    def on_failure(sample_id: str, _error: DecodeError) -> None:
        failed.append(sample_id)

    stage = DecodeStage(
        config, dataset, Preprocessor.for_model(plan.input_spec, config.triton_model()), budget, on_failure
    )
    images = 0
    start = time.perf_counter()
    async for batch in stage.batches(ids):
        images += len(batch.sample_ids)
    return {"images": images, "failed": len(failed), "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode_only", description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)
    config = WorkerConfig.from_file(args.config)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    result = asyncio.run(decode_only(config))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
