"""(a) The ceiling: raw Triton throughput with tensors already decoded and in memory.

The client is ``tritonclient.grpc.aio`` with a fixed number of requests in
flight, as the worker sends them, and asks for the same output the worker asks
for. Client and server share the machine, as the worker and a sidecar Triton do.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.models import BenchModel, Setting


async def _throughput(
    url: str, model: BenchModel, images: npt.NDArray[np.uint8], setting: Setting, count: int
) -> float:
    import tritonclient.grpc.aio as grpc_aio

    client = grpc_aio.InferenceServerClient(url=url)
    batches = [
        np.ascontiguousarray(np.take(images, range(start, start + setting.batch), axis=0, mode="wrap"))
        for start in range(0, len(images), setting.batch)
    ]
    requests = count // setting.batch

    async def one(index: int) -> None:
        batch = batches[index % len(batches)]
        tensor = grpc_aio.InferInput("IMAGE", list(batch.shape), "UINT8")
        tensor.set_data_from_numpy(batch)
        result = await client.infer(
            model.name, [tensor], outputs=[grpc_aio.InferRequestedOutput(model.output)]
        )
        result.as_numpy(model.output)

    async def lane(lane_index: int) -> None:
        for index in range(lane_index, requests, setting.in_flight):
            await one(index)

    try:
        await asyncio.gather(*(one(index) for index in range(setting.in_flight)))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(lane(index) for index in range(setting.in_flight)))
        elapsed = time.perf_counter() - start
    finally:
        await client.close()
    return requests * setting.batch / elapsed


def sweep(url: str, model: BenchModel, images: npt.NDArray[np.uint8]) -> list[dict[str, Any]]:
    """Images/s for each of the model's raw settings."""
    rows = []
    for setting in model.raw_settings:
        rate = asyncio.run(_throughput(url, model, images, setting, model.raw_images))
        print(f"  raw triton {model.name}: {setting}: {rate:.1f} img/s", flush=True)
        rows.append({"batch": setting.batch, "inFlight": setting.in_flight, "imagesPerSecond": rate})
    return rows
