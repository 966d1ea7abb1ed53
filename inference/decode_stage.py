"""The read and decode stage of a shard: pages of filepaths -> decoded, preprocessed images, in order.

Decoding runs in a thread pool (Pillow releases the GIL while it decodes and
resizes, so threads scale to the cores), at most a window of images ahead of
the consumer. A sample whose filepath (after the path rewrites) is an object
URL (``s3://``, ``http(s)://``) is fetched first in a pool of I/O threads
(``objectStore.fetchConcurrency`` GETs at once, `runtime.storage`), the window
then at least that wide (`DecodeBudget.fetch_window`); its bytes are kept for a
second stage only when one needs them. An image that cannot be decoded (or an
object that does not exist) is reported through ``on_failure`` with its reason
and skipped. The shard pipeline feeds Triton from it; the benchmark's
decode-only column (`bench/decode_only.py`) runs the very same stage with
nothing after it, which is the local limit of the worker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.worker import WorkerConfig, is_object_url
from inference.decode import DecodeBudget, Preprocessor, rewrite_path
from inference.geometry import Window
from inference.reader import filepath_page
from runtime.durable import retried
from runtime.errors import DecodeError
from runtime.storage import ObjectStore


@dataclass(frozen=True)
class DecodedImage:
    sample_id: str
    pixels: npt.NDArray[Any]
    window: Window  # where the image lies in the input: predictions are mapped back through it
    path: str  # the file, for a second stage that crops it
    data: bytes | None = None  # an object's bytes, kept only for a second stage (it cannot reopen a file)


@dataclass(frozen=True)
class DecodedBatch:
    """Up to ``batchSize`` images stacked into one request tensor (one copy, straight from decode)."""

    sample_ids: list[str]
    pixels: npt.NDArray[Any]
    windows: list[Window]
    paths: list[str]
    data: list[bytes | None]


_Loaded = tuple[npt.NDArray[Any], Window, bytes | None]
_Window = deque[tuple[str, str, "asyncio.Future[_Loaded]"]]


class DecodeStage:
    def __init__(
        self,
        config: WorkerConfig,
        dataset: Any,
        preprocessor: Preprocessor,
        budget: DecodeBudget,
        on_failure: Callable[[str, DecodeError], None],
        store: ObjectStore | None = None,
        keep_data: bool = False,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.preprocessor = preprocessor
        self.budget = budget
        self.on_failure = on_failure
        self.store = store or ObjectStore(config.object_store)
        self.keep_data = keep_data

    async def batches(self, sample_ids: Sequence[str]) -> AsyncIterator[DecodedBatch]:
        """Decoded images grouped ``budget.batch_size`` at a time, in shard order."""
        batch: list[DecodedImage] = []
        async for image in self.images(sample_ids):
            batch.append(image)
            if len(batch) == self.budget.batch_size:
                yield _stacked(batch)
                batch = []
        if batch:
            yield _stacked(batch)

    async def images(self, sample_ids: Sequence[str]) -> AsyncIterator[DecodedImage]:
        """Decoded images in shard order, decoding up to a window ahead in the thread pool."""
        window: _Window = deque()
        fetchers = self.config.object_store.fetch_concurrency
        with (
            ThreadPoolExecutor(self.config.decode_threads, thread_name_prefix="decode") as pool,
            ThreadPoolExecutor(fetchers, thread_name_prefix="fetch") as fetch_pool,
        ):
            try:
                async for image in self._window_of(sample_ids, window, pool, fetch_pool):
                    yield image
            finally:
                for _, _, pending in window:  # the consumer stopped early (a fatal error): stop the rest
                    pending.cancel()

    async def _window_of(
        self,
        sample_ids: Sequence[str],
        window: _Window,
        pool: ThreadPoolExecutor,
        fetch_pool: ThreadPoolExecutor,
    ) -> AsyncIterator[DecodedImage]:
        page_size = self.config.page_size
        limit = self.budget.window
        for start in range(0, len(sample_ids), page_size):
            page = await asyncio.to_thread(
                retried,
                "reading filepaths",
                self.config.database,
                partial(filepath_page, self.dataset, sample_ids[start : start + page_size]),
            )
            for sample_id, stored_path in page:
                path = rewrite_path(stored_path, self.config.media_path_rewrite)
                if is_object_url(path):
                    limit = self.budget.fetch_window
                load = asyncio.ensure_future(self._load(path, pool, fetch_pool))
                window.append((sample_id, path, load))
                while len(window) >= limit:
                    image = await self._take(window)
                    if image is not None:
                        yield image
        while window:
            image = await self._take(window)
            if image is not None:
                yield image

    async def _load(self, path: str, pool: ThreadPoolExecutor, fetch_pool: ThreadPoolExecutor) -> _Loaded:
        loop = asyncio.get_running_loop()
        if not is_object_url(path):
            return (*await loop.run_in_executor(pool, self.preprocessor.decode, path), None)
        data = await loop.run_in_executor(fetch_pool, self.store.read, path)
        pixels, where = await loop.run_in_executor(pool, self.preprocessor.decode, path, data)
        return pixels, where, data if self.keep_data else None

    async def _take(self, window: _Window) -> DecodedImage | None:
        sample_id, path, future = window.popleft()
        try:
            pixels, where, data = await future
            return DecodedImage(sample_id, pixels, where, path, data)
        except DecodeError as error:
            self.on_failure(sample_id, error)
            return None


def _stacked(batch: list[DecodedImage]) -> DecodedBatch:
    return DecodedBatch(
        [image.sample_id for image in batch],
        np.stack([image.pixels for image in batch]),
        [image.window for image in batch],
        [image.path for image in batch],
        [image.data for image in batch],
    )
