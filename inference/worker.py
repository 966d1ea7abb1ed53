"""One shard, start to finish: load the dataset, preflight Triton, partition, resume, run, report."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from inference.config import WorkerConfig
from inference.partition import shard_ids
from inference.pipeline import ShardPipeline
from inference.preflight import preflight
from inference.progress import ProgressReporter, ProgressTracker, State, publish
from inference.reader import done_ids, load_dataset, target_ids
from inference.triton_client import TritonClient
from inference.writer import PredictionWriter

LOG = logging.getLogger(__name__)


def first_leaf(error: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def _tick(reporter: ProgressReporter, tracker: ProgressTracker, shard: int, interval_s: float) -> None:
    while True:
        await asyncio.to_thread(publish, reporter, tracker, shard)
        await asyncio.sleep(interval_s)


async def run_shard(
    config: WorkerConfig, shard: int, reporter: ProgressReporter, tracker: ProgressTracker | None = None
) -> ProgressTracker:
    """Label this shard's samples that lack this run's prediction; raises on fatal errors."""
    tracker = tracker or ProgressTracker()
    ticker = asyncio.create_task(_tick(reporter, tracker, shard, config.progress.interval_s))
    client = TritonClient(config.model)
    try:
        dataset = await asyncio.to_thread(load_dataset, config.dataset)
        plan = await preflight(client, config)
        all_ids = await asyncio.to_thread(target_ids, dataset, config.target)
        mine = shard_ids(all_ids, shard, config.shards)
        done = await asyncio.to_thread(done_ids, dataset, mine, config.marker_field, config.run.uid)
        todo = [sample_id for sample_id in mine if sample_id not in done]
        tracker.start(total=len(mine), already_done=len(mine) - len(todo))
        print(
            f"shard {shard}/{config.shards}: {len(mine)} samples, {len(mine) - len(todo)} already done, "
            f"model {config.model.name} input {plan.input_spec.height}x{plan.input_spec.width}",
            flush=True,
        )
        writer = PredictionWriter(
            dataset,
            task=config.task,
            staging_field=config.staging,
            marker_field=config.marker_field,
            run_uid=config.run.uid,
            mask_dir=config.mask_dir,
            embeddings_field=plan.embeddings.field if plan.embeddings else None,
        )
        await ShardPipeline(config, plan, client, dataset, writer, tracker).run(todo)
        tracker.state = State.SUCCEEDED
        return tracker
    except BaseException as error:
        cause = first_leaf(error)
        tracker.state = State.FAILED
        tracker.message = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        if cause is not error and isinstance(cause, Exception):
            raise cause from error  # report the failing request, not the TaskGroup that carried it
        raise
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await asyncio.to_thread(publish, reporter, tracker, shard)
        await client.close()
