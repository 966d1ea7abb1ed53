"""The shard pipeline: read -> decode (`inference.decode_stage`) -> Triton (maxInFlight) -> adapt -> write.

Every stage is bounded: decoding runs at most a window of images ahead of the
requests, at most ``maxInFlight`` requests are outstanding, and results are
written ``writeBatchSize`` at a time (the write runs in a thread while
inference goes on). An image that cannot be decoded is counted with its reason
and skipped; any other error ends the shard (fatal), after the results already
inferred are written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from contract.worker import WorkerConfig
from inference.decode import Preprocessor, decode_budget
from inference.decode_stage import DecodedBatch, DecodeStage
from inference.geometry import to_image
from inference.preflight import Plan
from inference.progress import ProgressTracker
from inference.triton_client import TritonClient
from inference.writer import PredictionWriter, SampleResult
from runtime.errors import DecodeError

LOG = logging.getLogger(__name__)


class ShardPipeline:
    def __init__(
        self,
        config: WorkerConfig,
        plan: Plan,
        client: TritonClient,
        dataset: Any,
        writer: PredictionWriter,
        tracker: ProgressTracker,
    ) -> None:
        self.config = config
        self.plan = plan
        self.client = client
        self.dataset = dataset
        self.writer = writer
        self.tracker = tracker
        self.preprocessor = Preprocessor.for_model(plan.input_spec, config.triton_model())
        self.budget = decode_budget(
            plan.input_spec,
            config.batch_size if plan.input_spec.batched else 1,
            config.max_in_flight,
            config.decode_threads,
            fetch_concurrency=config.object_store.fetch_concurrency,
        )
        self.batch_size = self.budget.batch_size
        self.stage = DecodeStage(
            config,
            dataset,
            self.preprocessor,
            self.budget,
            self._failed,
            keep_data=plan.segmenter is not None,
        )
        self.failed_ids: set[str] = set()  # samples counted as failed (unreadable), never retried here
        self._pending: list[SampleResult] = []
        self._write_lock = asyncio.Lock()

    async def run(self, sample_ids: Sequence[str]) -> None:
        """Process ``sample_ids`` (the shard minus what is already done); may be called again for a retry."""
        slots = asyncio.Semaphore(self.budget.in_flight)
        try:
            async with asyncio.TaskGroup() as group:
                async for batch in self.stage.batches(sample_ids):
                    await slots.acquire()
                    task = group.create_task(self._infer(batch, group))
                    task.add_done_callback(lambda _: slots.release())
        finally:
            # Results already inferred are written even when the shard is failing or being stopped.
            await asyncio.shield(self._flush(force=True))

    def _failed(self, sample_id: str, error: DecodeError) -> None:
        if sample_id not in self.failed_ids:
            self.failed_ids.add(sample_id)
            self.tracker.add_failure(error.reason)
        print(f"failed sample={sample_id} reason={error.reason!r} detail={error.detail!r}", flush=True)

    async def _infer(self, batch: DecodedBatch, group: asyncio.TaskGroup) -> None:
        plan, model = self.plan, self.config.triton_model()
        pixels = batch.pixels
        request = pixels if plan.input_spec.batched else pixels[0]
        outputs = plan.adapter.output_names()
        embeddings = plan.embeddings
        if embeddings is not None and embeddings.same_model and embeddings.tensor not in outputs:
            outputs = [*outputs, embeddings.tensor]
        result = await self.client.infer(model.name, model.version, plan.input_spec, request, outputs)
        if embeddings is not None and not embeddings.same_model:
            result.update(
                await self.client.infer(
                    embeddings.model, embeddings.version, plan.input_spec, request, [embeddings.tensor]
                )
            )
        if not plan.input_spec.batched:
            result = {name: value[np.newaxis] for name, value in result.items()}
        predictions = plan.adapter.decode(result)
        vectors = result.get(embeddings.tensor) if embeddings is not None else None
        mapped = [
            to_image(prediction, window)
            for prediction, window in zip(predictions, batch.windows, strict=True)
        ]
        if plan.segmenter is not None:
            mapped = await plan.segmenter.segment(self.client, mapped, batch.paths, batch.data)
        for row, sample_id in enumerate(batch.sample_ids):
            embedding = None if vectors is None else np.asarray(vectors[row], dtype=np.float32).reshape(-1)
            self._pending.append(SampleResult(sample_id, mapped[row], embedding))
        if len(self._pending) >= self.config.write_batch_size:
            group.create_task(self._flush())

    async def _flush(self, force: bool = False) -> None:
        async with self._write_lock:
            while self._pending and (force or len(self._pending) >= self.config.write_batch_size):
                results = self._pending[: self.config.write_batch_size]
                del self._pending[: len(results)]
                await asyncio.to_thread(self.writer.write, results)
                self.tracker.add_processed(len(results))
