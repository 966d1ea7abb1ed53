"""One shard, start to finish: load the dataset, preflight Triton, partition, resume, run, verify, report.

Before any sample, the run's fields are checked in the dataset's schema by a
fresh read (the validation step claimed and declared them; a worker started by
hand adds what is missing with the same atomic push, never by saving the
dataset document). After the pipeline, the shard is verified against the
database: this run's markers are counted over the shard's samples and whatever
is missing is processed again, at most `VERIFY_PASSES` times. The shard
succeeds only when every sample holds this run's prediction or was counted as
failed with its reason (unreadable image, sample deleted meanwhile);
``processed`` then is the number the database holds, not the number written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from contract.progress import ProgressState
from contract.worker import WorkerConfig
from inference.partition import ShardIds
from inference.pipeline import ShardPipeline
from inference.preflight import preflight
from inference.progress import ProgressTracker, publish
from inference.reader import done_ids, load_dataset, shard_sample_ids
from inference.source import SourcePipeline, source_problem
from inference.triton_client import TritonClient
from inference.writer import PredictionWriter
from runtime.claims import claim, declare, run_fields
from runtime.durable import retried
from runtime.errors import FatalError, PreflightError
from runtime.reporters import ProgressReporter

LOG = logging.getLogger(__name__)
VERIFY_PASSES = 3
SAMPLE_DELETED = "sample deleted during the run"


def first_leaf(error: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def _tick(reporter: ProgressReporter, tracker: ProgressTracker, shard: int, interval_s: float) -> None:
    while True:
        await asyncio.to_thread(publish, reporter, tracker, shard)
        await asyncio.sleep(interval_s)


def prepare_fields(dataset: Any, config: WorkerConfig) -> None:
    """The run's fields are claimed by this run and declared (checked by a fresh read)."""
    fields = run_fields(config)
    claim(dataset, config, fields)
    declare(dataset, config, [spec for spec in fields if spec.declare])
    dataset.reload()


def missing_ids(
    dataset: Any, config: WorkerConfig, shard: int, mine: ShardIds, excluded: set[str]
) -> ShardIds:
    """The shard's samples whose marker (read now from the database) is not this run's."""
    done = retried(
        "counting the shard's markers",
        config.database,
        lambda: done_ids(dataset, config.marker_field, config.run.uid, shard, config.shards),
    )
    return mine.without(done, excluded)


def existing_ids(dataset: Any, config: WorkerConfig, sample_ids: list[str]) -> set[str]:
    found: list[str] = retried(
        "reading sample ids", config.database, lambda: dataset.select(sample_ids).values("id")
    )
    return set(found)


async def run_shard(
    config: WorkerConfig, shard: int, reporter: ProgressReporter, tracker: ProgressTracker | None = None
) -> ProgressTracker:
    """Label this shard's samples that lack this run's prediction; raises on fatal errors."""
    tracker = tracker or ProgressTracker()
    ticker = asyncio.create_task(_tick(reporter, tracker, shard, config.progress.interval_s))
    client = TritonClient(config.model) if config.model is not None else None
    try:
        dataset = await asyncio.to_thread(
            retried, "loading the dataset", config.database, lambda: load_dataset(config.dataset)
        )
        # A model (or source field) that does not fit leaves the dataset untouched.
        plan = await preflight(client, config) if client is not None else None
        if plan is None and (problem := await asyncio.to_thread(source_problem, dataset, config)):
            raise PreflightError(problem)
        await asyncio.to_thread(prepare_fields, dataset, config)
        mine = await asyncio.to_thread(
            retried,
            "reading the shard's samples",
            config.database,
            lambda: shard_sample_ids(dataset, config.target, shard, config.shards),
        )
        todo = await asyncio.to_thread(missing_ids, dataset, config, shard, mine, set())
        tracker.start(total=len(mine), already_done=len(mine) - len(todo))
        labels_from = (
            f"model {config.triton_model().name} input {plan.input_spec.height}x{plan.input_spec.width}"
            if plan is not None
            else f"the labels of field {config.source.field if config.source else ''}"
        )
        print(
            f"shard {shard}/{config.shards}: {len(mine)} samples, {len(mine) - len(todo)} already done, "
            + labels_from,
            flush=True,
        )
        embeddings = plan.embeddings.field if plan is not None and plan.embeddings else None
        writer = PredictionWriter(dataset, config, embeddings)
        pipeline: ShardPipeline | SourcePipeline = (
            ShardPipeline(config, plan, client, dataset, writer, tracker)
            if plan is not None and client is not None
            else SourcePipeline(config, dataset, writer, tracker)
        )
        await pipeline.run(todo)
        await _verify(dataset, config, pipeline, tracker, mine, shard)
        tracker.state = ProgressState.SUCCEEDED
        return tracker
    except BaseException as error:
        cause = first_leaf(error)
        tracker.state = ProgressState.FAILED
        tracker.message = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        if cause is not error and isinstance(cause, Exception):
            raise cause from error  # report the failing request, not the TaskGroup that carried it
        raise
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await asyncio.to_thread(publish, reporter, tracker, shard)
        if client is not None:
            await client.close()


async def _verify(
    dataset: Any,
    config: WorkerConfig,
    pipeline: ShardPipeline | SourcePipeline,
    tracker: ProgressTracker,
    mine: ShardIds,
    shard: int,
) -> None:
    """Processes again what the database does not hold; fails the shard if something stays missing."""
    gone: set[str] = set()
    for attempt in range(1, VERIFY_PASSES + 1):
        excluded = pipeline.failed_ids | gone
        unmarked = await asyncio.to_thread(missing_ids, dataset, config, shard, mine, excluded)
        missing: list[str] = []
        if unmarked:
            existing = await asyncio.to_thread(existing_ids, dataset, config, list(unmarked))
            for sample_id in unmarked:
                if sample_id not in existing:
                    gone.add(sample_id)
                    tracker.add_failure(SAMPLE_DELETED)
            missing = [sample_id for sample_id in unmarked if sample_id in existing]
        tracker.processed = len(mine) - len(missing) - len(pipeline.failed_ids | gone)
        if not missing:
            return
        print(
            f"shard {shard}: verification pass {attempt}: {len(missing)} samples hold no prediction "
            "of this run in the database; processing them again",
            flush=True,
        )
        if attempt < VERIFY_PASSES:
            await pipeline.run(missing)
    raise FatalError(
        f"{len(missing)} samples of shard {shard} (first {missing[0]}) hold no prediction of this run "
        f"in the database after {VERIFY_PASSES} passes"
    )
