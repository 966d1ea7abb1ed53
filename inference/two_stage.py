"""Two-stage instance segmentation: the detector's boxes, then a second model segmenting each box's crop.

Preflight resolves the segmenter like the main model (its input, preprocessing and a
segmentation adapter); during the shard, every batch's kept boxes (of the configured
classes) are cut from the full-resolution images, sent to the segmenter in requests of
at most its max_batch_size, and each mask (non-zero pixels) becomes its box's mask.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from contract.worker import ModelConfig, ResizeMode, SegmenterConfig, WorkerConfig
from inference.adapters import segmentation_reading
from inference.adapters.base import (
    ClassNames,
    DetectionPrediction,
    Prediction,
    SegmentationPrediction,
    single_output_name,
)
from inference.adapters.segmentation import SegmentationAdapter
from inference.decode import Preprocessor
from inference.model_spec import InputSpec, resolve_input
from inference.triton_client import TritonClient
from runtime.errors import PreflightError


@dataclass(frozen=True)
class Segmenter:
    name: str
    version: str
    input_spec: InputSpec
    preprocessor: Preprocessor
    adapter: SegmentationAdapter
    classes: frozenset[str] | None
    max_batch: int

    async def segment(
        self,
        client: TritonClient,
        predictions: list[Prediction],
        paths: list[str],
        data: list[bytes | None] | None = None,
    ) -> list[Prediction]:
        """``predictions`` (on the images at ``paths``, or their fetched bytes) with masks on the boxes."""
        wanted = [
            (row, index)
            for row, prediction in enumerate(predictions)
            if isinstance(prediction, DetectionPrediction)
            for index, box in enumerate(prediction.boxes)
            if self.classes is None or box.label in self.classes
        ]
        if not wanted:
            return predictions
        crops: list[Any] = []
        for row in sorted({row for row, _ in wanted}):
            prediction = predictions[row]
            assert isinstance(prediction, DetectionPrediction)
            regions = [prediction.boxes[index].bounding_box for r, index in wanted if r == row]
            encoded = data[row] if data is not None else None
            crops.extend(await asyncio.to_thread(self.preprocessor.crops, paths[row], regions, encoded))
        masks: list[SegmentationPrediction] = []
        for start in range(0, len(crops), self.max_batch):
            chunk = np.stack(crops[start : start + self.max_batch])
            request = chunk if self.input_spec.batched else chunk[0]
            result = await client.infer(
                self.name, self.version, self.input_spec, request, self.adapter.output_names()
            )
            if not self.input_spec.batched:
                result = {name: value[np.newaxis] for name, value in result.items()}
            masks.extend(m for m in self.adapter.decode(result) if isinstance(m, SegmentationPrediction))
        updated = list(predictions)
        for (row, index), mask in zip(sorted(wanted), masks, strict=True):
            prediction = updated[row]
            assert isinstance(prediction, DetectionPrediction)
            boxes = list(prediction.boxes)
            boxes[index] = replace(boxes[index], mask=mask.mask != 0)
            updated[row] = DetectionPrediction(boxes=tuple(boxes))
        return updated


async def resolve_segmenter(client: TritonClient, config: WorkerConfig) -> Segmenter | None:
    """The segmenter of ``config``, checked against its metadata; None when the run has none."""
    model = config.triton_model()
    wanted = model.segmenter
    if wanted is None:
        return None
    if not await client.model_ready(wanted.name, wanted.version):
        raise PreflightError(f"segmenter model {wanted.name!r} is not ready; check model.segmenter.name")
    metadata = await client.metadata(wanted.name, wanted.version)
    settings = _as_model(model, wanted)
    input_spec = resolve_input(metadata, settings)
    output = single_output_name(metadata, wanted.tensors.output)
    if output is None:
        names = [spec.name for spec in metadata.outputs]
        raise PreflightError(f"segmenter {wanted.name!r} has outputs {names}: name one in segmenter.output")
    adapter = SegmentationAdapter(
        output, ClassNames(None), segmentation_reading(metadata, output, wanted.output_format)
    )
    problems = adapter.check(metadata)
    if problems:
        raise PreflightError(f"segmenter {wanted.name!r}: " + "; ".join(problems))
    return Segmenter(
        wanted.name,
        wanted.version,
        input_spec,
        Preprocessor.for_model(input_spec, settings),
        adapter,
        frozenset(wanted.classes) if wanted.classes else None,
        max(1, metadata.max_batch_size),
    )


def _as_model(model: ModelConfig, segmenter: SegmenterConfig) -> ModelConfig:
    """The segmenter as a model configuration, for the input resolution and preprocessing shared with it."""
    return model.model_copy(
        update={
            "name": segmenter.name,
            "version": segmenter.version,
            "output_format": segmenter.output_format,
            "tensors": segmenter.tensors,
            "input_size": None,
            "input_layout": None,
            "resize": ResizeMode.STRETCH,
            "scale": segmenter.scale,
            "normalize_mean": segmenter.normalize_mean,
            "normalize_std": segmenter.normalize_std,
            "zero_shot": False,
            "segmenter": None,
        }
    )
