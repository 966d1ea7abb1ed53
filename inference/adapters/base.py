"""Prediction types and the output-adapter interface shared by all tasks.

Adapters turn a batch of raw output tensors into plain prediction objects; the
writer turns those into FiftyOne labels. Keeping FiftyOne out of here keeps the
adapters pure and unit-testable on arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from inference.model_spec import ModelMetadata

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ClassificationPrediction:
    label: str
    confidence: float | None  # None: a source label without one (models always give one)
    logits: list[float] | None = None


@dataclass(frozen=True)
class BoxPrediction:
    label: str
    confidence: float | None  # None: a source label without one (models always give one)
    bounding_box: tuple[float, float, float, float]  # relative x, y, width, height (FiftyOne's convention)
    mask: npt.NDArray[np.bool_] | None = None  # instance mask over the bounding box, as FiftyOne keeps it


@dataclass(frozen=True)
class DetectionPrediction:
    boxes: tuple[BoxPrediction, ...]


@dataclass(frozen=True)
class SegmentationPrediction:
    mask: npt.NDArray[np.uint8]  # one class index per pixel
    confidence: float | None  # mean over pixels of the winning class's probability (None: a source label)
    classes: tuple[str, ...]


Prediction = ClassificationPrediction | DetectionPrediction | SegmentationPrediction | None
"""One image's result; None when nothing passed the threshold or class filter (classification)."""


class OutputAdapter(Protocol):
    """Reads a task's predictions out of a model's output tensors."""

    def output_names(self) -> list[str]:
        """The output tensors to request."""
        ...

    def check(self, metadata: ModelMetadata) -> list[str]:
        """Reasons the model's metadata does not fit this adapter (empty when it fits)."""
        ...

    def decode(self, outputs: Mapping[str, npt.NDArray[Any]]) -> list[Prediction]:
        """One prediction per image of the batch, in order."""
        ...


class ClassNames:
    """Index -> class name, with the optional keep-only filter."""

    def __init__(self, names: Sequence[str] | None, keep: Sequence[str] | None = None) -> None:
        self.names = list(names or [])
        self.keep = set(keep) if keep else None

    def name(self, index: int) -> str:
        return self.names[index] if 0 <= index < len(self.names) else str(index)

    def kept(self, name: str) -> bool:
        return self.keep is None or name in self.keep


def softmax(scores: npt.NDArray[Any], axis: int = -1) -> FloatArray:
    shifted = scores.astype(np.float32) - scores.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    result: FloatArray = exp / exp.sum(axis=axis, keepdims=True)
    return result


def missing_output(metadata: ModelMetadata, name: str | None) -> str | None:
    """A problem message when ``name`` is not one of the model's outputs."""
    if name is not None and metadata.output(name) is not None:
        return None
    names = [spec.name for spec in metadata.outputs]
    return f"model {metadata.name!r} has no output {name!r}; its outputs are {names}"


def single_output_name(metadata: ModelMetadata, configured: str | None) -> str | None:
    """The configured output, or the model's only output when none is configured."""
    if configured is not None:
        return configured
    return metadata.outputs[0].name if len(metadata.outputs) == 1 else None
