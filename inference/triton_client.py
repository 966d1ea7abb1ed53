"""Async Triton client for the worker: gRPC (``tritonclient.grpc.aio``) or HTTP (``tritonclient.http.aio``).

Wraps the two protocols behind one small surface, retries the transient
failures (UNAVAILABLE, DEADLINE_EXCEEDED, connection errors) with exponential
backoff within a time budget, and reads class names through Triton's
classification extension (``class_count``), which serves the model's label file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from contract.worker import ModelConfig, Protocol
from inference.model_spec import InputSpec, ModelMetadata

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# NOT_FOUND too: preflight proved the model exists, so mid-run it means the model is being
# unloaded or reloaded ("has no available versions" while a server restarts).
RETRYABLE_GRPC_STATUSES = ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.NOT_FOUND")
RETRYABLE_HTTP_STATUSES = ("502", "503", "504")


def is_retryable(error: BaseException) -> bool:
    """True for failures a restarted or overloaded server explains; False for bad requests and models."""
    from tritonclient.utils import InferenceServerException

    if isinstance(error, InferenceServerException):
        status = str(error.status() or "")
        message = str(error.message() or "").lower()
        if status in RETRYABLE_GRPC_STATUSES or status in RETRYABLE_HTTP_STATUSES:
            return True
        # A server that is starting or stopping answers with these before the model is back.
        return any(
            hint in message for hint in ("server is stopping", "is not ready", "no available versions")
        )
    return isinstance(error, (ConnectionError, TimeoutError, OSError)) or type(error).__module__.startswith(
        "aiohttp"
    )


def _black_jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="JPEG")
    return buffer.getvalue()


class RetryPolicy:
    def __init__(
        self, budget_s: float = 180.0, first_delay_s: float = 0.25, max_delay_s: float = 5.0
    ) -> None:
        self.budget_s = budget_s
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s

    async def call(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``operation``; on a retryable error wait and try again until the budget is spent."""
        deadline = time.monotonic() + self.budget_s
        delay = self.first_delay_s
        attempt = 0
        while True:
            attempt += 1
            try:
                return await operation()
            except Exception as error:
                if not is_retryable(error) or time.monotonic() + delay > deadline:
                    raise
                if attempt in (1, 5) or attempt % 20 == 0:
                    LOG.warning("%s failed (attempt %d), retrying: %s", what, attempt, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)


class TritonClient:
    """One connection to one Triton server, for the worker's few calls."""

    def __init__(self, model: ModelConfig, retry: RetryPolicy | None = None) -> None:
        self.protocol = model.protocol
        self.timeout_s = model.timeout_s
        self.retry = retry or RetryPolicy()
        if self.protocol == Protocol.GRPC:
            import tritonclient.grpc.aio as grpc_aio

            self._module: Any = grpc_aio
            # Short reconnect backoff: after a Triton restart the channel is usable again within ~2 s.
            channel_args = [
                ("grpc.initial_reconnect_backoff_ms", 250),
                ("grpc.min_reconnect_backoff_ms", 250),
                ("grpc.max_reconnect_backoff_ms", 2000),
            ]
            self._client: Any = grpc_aio.InferenceServerClient(url=model.url, channel_args=channel_args)
        else:
            import tritonclient.http.aio as http_aio

            self._module = http_aio
            self._client = http_aio.InferenceServerClient(url=model.url, conn_limit=1024)

    async def close(self) -> None:
        await self._client.close()

    async def server_live(self) -> bool:
        return bool(await self._client.is_server_live())

    async def server_ready(self) -> bool:
        return bool(await self._client.is_server_ready())

    async def model_ready(self, name: str, version: str) -> bool:
        return bool(await self._client.is_model_ready(name, version))

    async def metadata(self, name: str, version: str) -> ModelMetadata:
        if self.protocol == Protocol.GRPC:
            metadata = await self._client.get_model_metadata(name, version, as_json=True)
            config = (await self._client.get_model_config(name, version, as_json=True))["config"]
            # gRPC's JSON renders int64 fields as strings.
            for tensor in metadata.get("inputs", []) + metadata.get("outputs", []):
                tensor["shape"] = [int(d) for d in tensor.get("shape", [])]
        else:
            metadata = await self._client.get_model_metadata(name, version)
            config = await self._client.get_model_config(name, version)
        return ModelMetadata.from_triton(metadata, config)

    def _input(self, spec: InputSpec, batch: npt.NDArray[Any]) -> Any:
        tensor = self._module.InferInput(spec.name, list(batch.shape), spec.datatype)
        tensor.set_data_from_numpy(batch)
        return tensor

    def _inputs(self, spec: InputSpec, batch: npt.NDArray[Any]) -> list[Any]:
        """The image tensor, and a zero-shot model's prompts ([prompts], or one row per image)."""
        if spec.text is None:
            return [self._input(spec, batch)]
        prompts = np.array([prompt.encode() for prompt in spec.text.prompts], dtype=np.object_)
        if spec.batched:
            prompts = np.tile(prompts, (batch.shape[0], 1))
        text = self._module.InferInput(spec.text.name, list(prompts.shape), "BYTES")
        text.set_data_from_numpy(prompts)
        return [self._input(spec, batch), text]

    async def infer(
        self, name: str, version: str, spec: InputSpec, batch: npt.NDArray[Any], outputs: list[str]
    ) -> dict[str, npt.NDArray[Any]]:
        """One request, retried when transient; ``batch`` has the batch dimension if the model batches."""
        requested = [self._module.InferRequestedOutput(output) for output in outputs]

        async def attempt() -> Any:
            if self.protocol == Protocol.GRPC:
                return await self._client.infer(
                    name,
                    self._inputs(spec, batch),
                    model_version=version,
                    outputs=requested,
                    client_timeout=self.timeout_s,
                )
            return await self._client.infer(
                name, self._inputs(spec, batch), model_version=version, outputs=requested
            )

        result = await self.retry.call(attempt, f"inference on {name}")
        return {output: result.as_numpy(output) for output in outputs}

    async def class_names(
        self, name: str, version: str, spec: InputSpec, output: str, class_count: int
    ) -> list[str] | None:
        """Index -> name from the model's label file, via one classification-extension request on zeros.

        Returns None when the model has no label file for ``output``.
        """
        if spec.datatype == "BYTES":  # an encoded-input model: one small black JPEG
            zeros = np.array([_black_jpeg()], dtype=np.object_).reshape([1, 1] if spec.batched else [1])
        else:
            shape = [spec.height, spec.width, 3] if spec.layout == "NHWC" else [3, spec.height, spec.width]
            dtype = {"UINT8": np.uint8, "FP16": np.float16}.get(spec.datatype, np.float32)
            zeros = np.zeros(([1] if spec.batched else []) + shape, dtype=dtype)
        requested = [self._module.InferRequestedOutput(output, class_count=class_count)]

        async def attempt() -> Any:
            return await self._client.infer(
                name, self._inputs(spec, zeros), model_version=version, outputs=requested
            )

        result = await self.retry.call(attempt, f"class names of {name}")
        entries = np.asarray(result.as_numpy(output)).reshape(-1)
        names: dict[int, str] = {}
        for entry in entries:
            text = entry.decode() if isinstance(entry, bytes) else str(entry)
            parts = text.split(":", 2)
            if len(parts) < 3:
                return None
            names[int(parts[1])] = parts[2]
        if not names:
            return None
        return [names.get(index, str(index)) for index in range(max(names) + 1)]
