"""Inputs of the contract walk: a worker configuration built from a manifest, model metadata, an image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from contract.worker import WorkerConfig
from controller.api import parse_spec
from controller.worker_contract import worker_config
from inference.model_spec import ModelMetadata, TensorSpec

METADATA = {"namespace": "n", "name": "walk", "uid": "u-1"}


def walk_config(task: str, model: dict[str, Any], **spec: Any) -> WorkerConfig:
    manifest = {
        "task": task,
        "dataset": {"name": "d", "databaseSecretRef": {"name": "db"}, "target": {"all": True}},
        "model": {"endpoint": {"address": "triton:8001"}, "name": "m", **model},
        "labelField": "found",
        **spec,
    }
    return WorkerConfig.from_json(worker_config(METADATA, parse_spec(manifest)).to_json())


Tensors = Sequence[tuple[str, str, tuple[int, ...]]]


def model_metadata(inputs: Tensors, outputs: Tensors) -> ModelMetadata:
    return ModelMetadata(
        "m",
        tuple(TensorSpec(n, d, (-1, *s)) for n, d, s in inputs),
        tuple(TensorSpec(n, d, (-1, *s)) for n, d, s in outputs),
        8,
    )


IMAGE_NHWC = [("IMAGE", "UINT8", (64, 64, 3))]
FLOAT_NCHW = [("IMAGE", "FP32", (3, 64, 64))]


def red_image(tmp_path: Path, width: int = 128, height: int = 64) -> str:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = 255  # red everywhere
    path = tmp_path / "i.png"
    Image.fromarray(pixels).save(path)
    return str(path)


def schema_leaves(schema: dict[str, Any], prefix: str = "") -> set[str]:
    """The dotted paths of a structural schema's leaves."""
    properties = schema.get("properties")
    if not properties:
        return {prefix}
    leaves: set[str] = set()
    for name, child in properties.items():
        path = f"{prefix}.{name}" if prefix else name
        leaves |= schema_leaves(child.get("items", child) if child.get("type") == "array" else child, path)
    return leaves
