"""Classification adapter: one score vector per image (logits or probabilities) -> top-1 label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from inference.adapters.base import (
    ClassificationPrediction,
    ClassNames,
    Prediction,
    missing_output,
    softmax,
)
from inference.model_spec import ModelMetadata

FLOAT_DATATYPES = ("FP32", "FP16", "FP64")


class ClassificationAdapter:
    def __init__(
        self,
        output: str,
        classes: ClassNames,
        *,
        from_logits: bool,
        confidence_threshold: float = 0.0,
        store_logits: bool = False,
    ) -> None:
        self.output = output
        self.classes = classes
        self.from_logits = from_logits
        self.confidence_threshold = confidence_threshold
        self.store_logits = store_logits

    def output_names(self) -> list[str]:
        return [self.output]

    def check(self, metadata: ModelMetadata) -> list[str]:
        problem = missing_output(metadata, self.output)
        if problem:
            return [problem]
        spec = metadata.output(self.output)
        assert spec is not None
        problems = []
        shape = metadata.item_shape(spec)
        if len(shape) != 1:
            problems.append(
                f"output {self.output!r} has shape {list(shape)} per image; classification needs [C]"
            )
        elif shape[0] > 0 and len(self.classes.names) > shape[0]:
            problems.append(
                f"{len(self.classes.names)} class names for output {self.output!r} of {shape[0]} scores"
            )
        if spec.datatype not in FLOAT_DATATYPES:
            problems.append(f"output {self.output!r} is {spec.datatype}; classification scores must be float")
        return problems

    def decode(self, outputs: Mapping[str, npt.NDArray[Any]]) -> list[Prediction]:
        scores = np.asarray(outputs[self.output], dtype=np.float32)
        scores = scores.reshape(scores.shape[0], -1)
        probabilities = softmax(scores) if self.from_logits else scores
        results: list[Prediction] = []
        for row in range(scores.shape[0]):
            index = int(np.argmax(probabilities[row]))
            confidence = float(probabilities[row, index])
            name = self.classes.name(index)
            if confidence < self.confidence_threshold or not self.classes.kept(name):
                results.append(None)
                continue
            logits = [float(v) for v in scores[row]] if self.store_logits else None
            results.append(ClassificationPrediction(label=name, confidence=confidence, logits=logits))
        return results
