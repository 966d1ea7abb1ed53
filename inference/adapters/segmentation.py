"""Segmentation adapter: per-pixel scores or class ids -> a uint8 mask and a mean confidence.

Accepted per-image shapes: [H, W] (probability of class 1, or class ids), [1, H, W]
(the same with a channel axis) and [C, H, W] (logits or probabilities per class).
``mask`` here means class ids (make_adapter turns ``mask`` on a float tensor into
probabilities); class ids carry confidence 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.worker import OutputFormat
from inference.adapters.base import ClassNames, Prediction, SegmentationPrediction, missing_output, softmax
from inference.model_spec import ModelMetadata


class SegmentationAdapter:
    def __init__(self, output: str, classes: ClassNames, output_format: OutputFormat) -> None:
        self.output = output
        self.classes = classes
        self.output_format = output_format

    def output_names(self) -> list[str]:
        return [self.output]

    def check(self, metadata: ModelMetadata) -> list[str]:
        problem = missing_output(metadata, self.output)
        if problem:
            return [problem]
        spec = metadata.output(self.output)
        assert spec is not None
        shape = metadata.item_shape(spec)
        if len(shape) not in (2, 3):
            return [
                f"output {self.output!r} has shape {list(shape)} per image; "
                "segmentation needs [H, W] or [C, H, W]"
            ]
        if self.output_format == OutputFormat.MASK and len(shape) == 3 and shape[0] not in (1, -1):
            return [
                f"output {self.output!r} holds integers of shape {list(shape)} per image; class ids need "
                "[H, W] or [1, H, W] (per-class scores come as a float tensor)"
            ]
        return []

    def decode(self, outputs: Mapping[str, npt.NDArray[Any]]) -> list[Prediction]:
        batch = np.asarray(outputs[self.output])
        return [self._one(batch[row]) for row in range(batch.shape[0])]

    def _one(self, scores: npt.NDArray[Any]) -> SegmentationPrediction:
        if scores.ndim == 3 and scores.shape[0] == 1:
            scores = scores[0]
        if self.output_format == OutputFormat.MASK:
            mask = scores.astype(np.uint8)
            confidence = 1.0
            class_count = int(mask.max()) + 1
        elif scores.ndim == 2:  # one channel: probability (or logit) of the foreground class
            foreground = scores.astype(np.float32)
            if self.output_format == OutputFormat.LOGITS:
                foreground = 1.0 / (1.0 + np.exp(-foreground))
            mask = (foreground > 0.5).astype(np.uint8)
            confidence = float(np.maximum(foreground, 1.0 - foreground).mean())
            class_count = 2
        else:
            probabilities = softmax(scores, axis=0) if self.output_format == OutputFormat.LOGITS else scores
            mask = np.argmax(probabilities, axis=0).astype(np.uint8)
            confidence = float(probabilities.max(axis=0).mean())
            class_count = scores.shape[0]
        names = tuple(self.classes.name(index) for index in range(max(class_count, len(self.classes.names))))
        return SegmentationPrediction(mask=mask, confidence=confidence, classes=names)
