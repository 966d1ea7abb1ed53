"""The shard pipeline: read -> decode (thread pool) -> Triton (maxInFlight requests) -> adapt -> bulk write.

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
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from inference.config import WorkerConfig
from inference.decode import DecodeError, Preprocessor, decode_budget, rewrite_path
from inference.durable import retried
from inference.geometry import Window, to_image
from inference.preflight import Plan
from inference.progress import ProgressTracker
from inference.reader import filepath_page
from inference.triton_client import TritonClient
from inference.writer import PredictionWriter, SampleResult

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodedImage:
    sample_id: str
    pixels: npt.NDArray[Any]
    window: Window  # where the image lies in the input: predictions are mapped back through it
    path: str  # the file, for a second stage that crops it


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
        )
        self.batch_size = self.budget.batch_size
        self.failed_ids: set[str] = set()  # samples counted as failed (unreadable), never retried here
        self._pending: list[SampleResult] = []
        self._write_lock = asyncio.Lock()

    async def run(self, sample_ids: list[str]) -> None:
        """Process ``sample_ids`` (the shard minus what is already done); may be called again for a retry."""
        slots = asyncio.Semaphore(self.budget.in_flight)
        try:
            async with asyncio.TaskGroup() as group:
                async for batch in self._batches(sample_ids):
                    await slots.acquire()
                    task = group.create_task(self._infer(batch, group))
                    task.add_done_callback(lambda _: slots.release())
        finally:
            # Results already inferred are written even when the shard is failing or being stopped.
            await asyncio.shield(self._flush(force=True))

    async def _batches(self, sample_ids: list[str]) -> AsyncIterator[list[DecodedImage]]:
        batch: list[DecodedImage] = []
        async for image in self._decoded(sample_ids):
            batch.append(image)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _decoded(self, sample_ids: list[str]) -> AsyncIterator[DecodedImage]:
        """Decoded images in shard order, decoding up to a window ahead in the thread pool."""
        loop = asyncio.get_running_loop()
        window_size = self.budget.window
        window: deque[tuple[str, str, asyncio.Future[tuple[npt.NDArray[Any], Window]]]] = deque()
        page_size = self.config.page_size
        with ThreadPoolExecutor(self.config.decode_threads, thread_name_prefix="decode") as pool:
            for start in range(0, len(sample_ids), page_size):
                page = await asyncio.to_thread(
                    retried,
                    "reading filepaths",
                    self.config.database,
                    partial(filepath_page, self.dataset, sample_ids[start : start + page_size]),
                )
                for sample_id, stored_path in page:
                    path = rewrite_path(stored_path, self.config.media_path_rewrite)
                    decoding = loop.run_in_executor(pool, self.preprocessor.decode, path)
                    window.append((sample_id, path, decoding))
                    while len(window) >= window_size:
                        image = await self._take(window)
                        if image is not None:
                            yield image
            while window:
                image = await self._take(window)
                if image is not None:
                    yield image

    async def _take(
        self, window: deque[tuple[str, str, asyncio.Future[tuple[npt.NDArray[Any], Window]]]]
    ) -> DecodedImage | None:
        sample_id, path, future = window.popleft()
        try:
            return DecodedImage(sample_id, *await future, path)
        except DecodeError as error:
            if sample_id not in self.failed_ids:
                self.failed_ids.add(sample_id)
                self.tracker.add_failure(error.reason)
            print(f"failed sample={sample_id} reason={error.reason!r} detail={error.detail!r}", flush=True)
            return None

    async def _infer(self, batch: list[DecodedImage], group: asyncio.TaskGroup) -> None:
        plan, model = self.plan, self.config.triton_model()
        pixels = np.stack([image.pixels for image in batch])
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
            to_image(prediction, image.window) for prediction, image in zip(predictions, batch, strict=True)
        ]
        if plan.segmenter is not None:
            mapped = await plan.segmenter.segment(self.client, mapped, [image.path for image in batch])
        for row, image in enumerate(batch):
            embedding = None if vectors is None else np.asarray(vectors[row], dtype=np.float32).reshape(-1)
            self._pending.append(SampleResult(image.sample_id, mapped[row], embedding))
        if len(self._pending) >= self.config.write_batch_size:
            group.create_task(self._flush())

    async def _flush(self, force: bool = False) -> None:
        async with self._write_lock:
            while self._pending and (force or len(self._pending) >= self.config.write_batch_size):
                results = self._pending[: self.config.write_batch_size]
                del self._pending[: len(results)]
                await asyncio.to_thread(self.writer.write, results)
                self.tracker.add_processed(len(results))
