"""Checks before any sample is touched: Triton live and ready, models ready, metadata fits the adapter.

Every failure raises ``PreflightError`` naming the mismatch, so the Job's pod
exits non-zero with a message a user can act on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from contract.worker import Task, WorkerConfig
from inference.adapters import OutputAdapter, make_adapter
from inference.model_spec import InputSpec, ModelMetadata, resolve_input
from inference.triton_client import TritonClient, is_retryable
from inference.two_stage import Segmenter, resolve_segmenter
from runtime.errors import PreflightError


@dataclass(frozen=True)
class EmbeddingSource:
    """Where embeddings come from: an output of the main model, or a second model fed the same input."""

    model: str
    version: str
    tensor: str
    field: str
    same_model: bool


@dataclass(frozen=True)
class Plan:
    metadata: ModelMetadata
    input_spec: InputSpec
    adapter: OutputAdapter
    embeddings: EmbeddingSource | None
    segmenter: Segmenter | None = None  # two-stage instance segmentation of the boxes


async def wait_until_true(check: str, probe_factory: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    """Call the async ``probe_factory()`` until it returns True; transient errors count as not yet."""
    deadline = time.monotonic() + timeout_s
    last = "answered not ready"
    while True:
        try:
            if await probe_factory():
                return
            last = "answered not ready"
        except Exception as error:
            if not is_retryable(error):
                raise PreflightError(f"{check}: {error}") from error
            last = str(error)
        if time.monotonic() >= deadline:
            raise PreflightError(f"{check} after {timeout_s:.0f}s: {last}")
        await asyncio.sleep(1.0)


async def preflight(client: TritonClient, config: WorkerConfig, wait_s: float = 120.0) -> Plan:
    """Wait (bounded) for the server and model, then check the model against the configured adapter."""
    model = config.triton_model()
    await wait_until_true(f"Triton at {model.url} is not live", client.server_live, wait_s)
    await wait_until_true(f"Triton at {model.url} is not ready", client.server_ready, wait_s)
    await wait_until_true(
        f"model {model.name!r} (version {model.version or 'latest'}) is not ready on {model.url}",
        lambda: client.model_ready(model.name, model.version),
        wait_s,
    )
    metadata = await client.metadata(model.name, model.version)
    input_spec = resolve_input(metadata, model)
    class_names = model.classes
    if class_names is None and config.task == Task.CLASSIFICATION:
        class_names = await _classification_labels(client, config, metadata, input_spec)
    adapter = make_adapter(config, metadata, input_spec, class_names)
    problems = adapter.check(metadata)
    if metadata.max_batch_size > 0 and config.batch_size > metadata.max_batch_size:
        problems.append(
            f"batchSize {config.batch_size} exceeds the model's max_batch_size {metadata.max_batch_size}"
        )
    if input_spec.datatype == "BYTES" and config.task == Task.DETECTION and not model.boxes_normalized:
        problems.append(
            "boxesNormalized false needs the model's input size, which the worker does not know with "
            "model.input encoded: have the model output normalized boxes"
        )
    embeddings = await _embedding_source(client, config, metadata, input_spec, problems)
    if problems:
        raise PreflightError(
            f"model {model.name!r} does not fit task {config.task} with outputFormat "
            f"{model.output_format}: " + "; ".join(problems)
        )
    return Plan(metadata, input_spec, adapter, embeddings, await resolve_segmenter(client, config))


async def _classification_labels(
    client: TritonClient, config: WorkerConfig, metadata: ModelMetadata, input_spec: InputSpec
) -> list[str] | None:
    model = config.triton_model()
    output = model.tensors.output or (metadata.outputs[0].name if len(metadata.outputs) == 1 else None)
    spec = metadata.output(output) if output else None
    if spec is None:
        return None
    item = metadata.item_shape(spec)
    if len(item) != 1 or item[0] <= 0:
        return None
    return await client.class_names(model.name, model.version, input_spec, spec.name, item[0])


async def _embedding_source(
    client: TritonClient,
    config: WorkerConfig,
    metadata: ModelMetadata,
    input_spec: InputSpec,
    problems: list[str],
) -> EmbeddingSource | None:
    wanted = config.embeddings
    if wanted is None:
        return None
    model = config.triton_model()
    if wanted.model is None or wanted.model == model.name:
        if metadata.output(wanted.tensor) is None:
            problems.append(f"embeddings tensor {wanted.tensor!r} is not an output of {metadata.name!r}")
        return EmbeddingSource(model.name, model.version, wanted.tensor, wanted.field, True)
    await wait_until_true(
        f"embeddings model {wanted.model!r} is not ready",
        lambda: client.model_ready(wanted.model or "", wanted.version),
        30.0,
    )
    other = await client.metadata(wanted.model, wanted.version)
    try:
        other_input = resolve_input(other, model.model_copy(update={"tensors": model.tensors}))
    except PreflightError as error:
        problems.append(f"embeddings model: {error}")
        return None
    if (other_input.height, other_input.width, other_input.datatype, other_input.layout) != (
        input_spec.height,
        input_spec.width,
        input_spec.datatype,
        input_spec.layout,
    ):
        problems.append(f"embeddings model {wanted.model!r} takes a different input than {metadata.name!r}")
    if other.output(wanted.tensor) is None:
        problems.append(f"embeddings tensor {wanted.tensor!r} is not an output of {wanted.model!r}")
    return EmbeddingSource(wanted.model, wanted.version, wanted.tensor, wanted.field, False)
