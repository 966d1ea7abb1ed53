"""Detection adapters: boxes/scores/labels tensors, or one YOLO-style tensor decoded with NMS here.

Boxes come out in FiftyOne's convention, relative [x, y, width, height], of the
model input; `inference.geometry` maps them onto the image (the identity for a
stretched input, through the window for a letterboxed one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.worker import BoxFormat
from inference.adapters.base import (
    BoxPrediction,
    ClassNames,
    DetectionPrediction,
    Prediction,
    missing_output,
)
from inference.adapters.instances import box_mask
from inference.model_spec import ModelMetadata


def to_relative_xywh(
    box: npt.NDArray[Any], box_format: BoxFormat, *, normalized: bool, width: int, height: int
) -> tuple[float, float, float, float] | None:
    """Convert one box to relative [x, y, w, h], clipped to the image; None when nothing is left."""
    a, b, c, d = (float(v) for v in box[:4])
    if box_format == BoxFormat.XYXY:
        x1, y1, x2, y2 = a, b, c, d
    elif box_format == BoxFormat.XYWH:
        x1, y1, x2, y2 = a, b, a + c, b + d
    else:
        x1, y1, x2, y2 = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    if not normalized:
        x1, x2, y1, y2 = x1 / width, x2 / width, y1 / height, y2 / height
    x1, x2 = min(max(x1, 0.0), 1.0), min(max(x2, 0.0), 1.0)
    y1, y2 = min(max(y1, 0.0), 1.0), min(max(y2, 0.0), 1.0)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


def non_max_suppression(
    boxes_xyxy: npt.NDArray[Any], scores: npt.NDArray[Any], iou_threshold: float
) -> list[int]:
    """Greedy NMS; returns the indices kept, best first."""
    order = list(np.argsort(-scores))
    kept: list[int] = []
    areas = np.clip(boxes_xyxy[:, 2] - boxes_xyxy[:, 0], 0, None) * np.clip(
        boxes_xyxy[:, 3] - boxes_xyxy[:, 1], 0, None
    )
    while order:
        best = int(order.pop(0))
        kept.append(best)
        if not order:
            break
        rest = np.array(order)
        x1 = np.maximum(boxes_xyxy[best, 0], boxes_xyxy[rest, 0])
        y1 = np.maximum(boxes_xyxy[best, 1], boxes_xyxy[rest, 1])
        x2 = np.minimum(boxes_xyxy[best, 2], boxes_xyxy[rest, 2])
        y2 = np.minimum(boxes_xyxy[best, 3], boxes_xyxy[rest, 3])
        intersection = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        iou = intersection / np.maximum(areas[best] + areas[rest] - intersection, 1e-9)
        order = [int(i) for i, overlap in zip(rest, iou, strict=True) if overlap <= iou_threshold]
    return kept


class _BoxSettings:
    def __init__(
        self,
        classes: ClassNames,
        *,
        confidence_threshold: float,
        box_format: BoxFormat,
        normalized: bool,
        input_width: int,
        input_height: int,
    ) -> None:
        self.classes = classes
        self.confidence_threshold = confidence_threshold
        self.box_format = box_format
        self.normalized = normalized
        self.input_width = input_width
        self.input_height = input_height

    def box(self, raw_box: npt.NDArray[Any], score: float, class_index: int) -> BoxPrediction | None:
        if class_index < 0 or score < self.confidence_threshold:
            return None
        name = self.classes.name(class_index)
        if not self.classes.kept(name):
            return None
        relative = to_relative_xywh(
            raw_box,
            self.box_format,
            normalized=self.normalized,
            width=self.input_width,
            height=self.input_height,
        )
        if relative is None:
            return None
        return BoxPrediction(label=name, confidence=float(score), bounding_box=relative)


class BoxesScoresLabelsAdapter:
    """Three outputs per image: boxes [N, 4], scores [N], labels [N]; rows with label < 0 are padding.

    With ``count`` (TensorRT's EfficientNMS layout: num_dets [1], det_boxes, det_scores,
    det_classes), only the first num_dets rows of each image are read; the rest is junk.
    With ``masks`` (a [N, h, w] output), each box carries its instance mask (instances.py).
    """

    def __init__(
        self,
        boxes: str,
        scores: str,
        labels: str,
        settings: _BoxSettings,
        count: str | None = None,
        masks: str | None = None,
    ) -> None:
        self.boxes, self.scores, self.labels = boxes, scores, labels
        self.count = count
        self.masks = masks
        self.settings = settings

    def output_names(self) -> list[str]:
        extra = [name for name in (self.count, self.masks) if name]
        return [self.boxes, self.scores, self.labels, *extra]

    def check(self, metadata: ModelMetadata) -> list[str]:
        problems = [p for name in self.output_names() if (p := missing_output(metadata, name))]
        if problems:
            return problems
        boxes = metadata.output(self.boxes)
        assert boxes is not None
        box_shape = metadata.item_shape(boxes)
        if len(box_shape) != 2 or box_shape[1] not in (4, -1):
            problems.append(f"output {self.boxes!r} has shape {list(box_shape)} per image; boxes need [N, 4]")
        for name in (self.scores, self.labels):
            spec = metadata.output(name)
            assert spec is not None
            if len(metadata.item_shape(spec)) != 1:
                problems.append(
                    f"output {name!r} has shape {list(metadata.item_shape(spec))} per image; need [N]"
                )
        masks = metadata.output(self.masks) if self.masks else None
        if masks is not None and len(metadata.item_shape(masks)) not in (3, 4):
            problems.append(
                f"output {self.masks!r} has shape {list(metadata.item_shape(masks))} per image; "
                "instance masks need [N, h, w]"
            )
        count = metadata.output(self.count) if self.count else None
        if count is not None and metadata.item_shape(count) not in ((1,), (-1,), ()):
            problems.append(
                f"output {self.count!r} has shape {list(metadata.item_shape(count))} per image; "
                "num_dets needs [1]"
            )
        return problems

    def decode(self, outputs: Mapping[str, npt.NDArray[Any]]) -> list[Prediction]:
        boxes = np.asarray(outputs[self.boxes], dtype=np.float32)
        scores = np.asarray(outputs[self.scores], dtype=np.float32)
        labels = np.asarray(outputs[self.labels]).astype(np.int64)
        counts = (
            np.asarray(outputs[self.count]).reshape(boxes.shape[0], -1)[:, 0].astype(np.int64)
            if self.count
            else np.full(boxes.shape[0], boxes.shape[1])
        )
        masks = np.asarray(outputs[self.masks]) if self.masks else None
        results: list[Prediction] = []
        for row in range(boxes.shape[0]):
            kept: list[BoxPrediction] = []
            for i in range(max(min(int(counts[row]), boxes.shape[1]), 0)):
                box = self.settings.box(boxes[row, i], float(scores[row, i]), int(labels[row, i]))
                if box is not None and masks is not None:
                    width, height = self.settings.input_width, self.settings.input_height
                    box = replace(box, mask=box_mask(masks[row, i], box.bounding_box, width, height))
                if box is not None:
                    kept.append(box)
            results.append(DetectionPrediction(boxes=tuple(kept)))
        return results


class YoloAdapter:
    """One output per image: [N, 4 + C] (YOLOv8) or [N, 5 + C] with objectness (YOLOv5).

    [4 + C, N] is transposed. Boxes are usually centre x, y, w, h in input pixels
    (boxFormat cxcywh, boxesNormalized false).
    """

    def __init__(self, output: str, settings: _BoxSettings, iou_threshold: float) -> None:
        self.output = output
        self.settings = settings
        self.iou_threshold = iou_threshold

    def output_names(self) -> list[str]:
        return [self.output]

    def check(self, metadata: ModelMetadata) -> list[str]:
        problem = missing_output(metadata, self.output)
        if problem:
            return [problem]
        spec = metadata.output(self.output)
        assert spec is not None
        if len(metadata.item_shape(spec)) != 2:
            return [
                f"output {self.output!r} has shape {list(metadata.item_shape(spec))} per image; "
                "yolo needs 2 dims"
            ]
        return []

    def _rows(self, table: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
        """Boxes, best score and best class per candidate row."""
        class_count = len(self.settings.classes.names)
        widths = (4 + class_count, 5 + class_count) if class_count else ()
        rows_look_like_attributes = table.shape[0] in widths and table.shape[1] not in widths
        if rows_look_like_attributes or (not widths and table.shape[0] < table.shape[1]):
            table = table.T  # [4 + C, N] layout
        if class_count and table.shape[1] == 5 + class_count:  # v5: objectness x class probability
            class_scores = table[:, 5:] * table[:, 4:5]
        else:
            class_scores = table[:, 4:]
        best = np.argmax(class_scores, axis=1)
        return table[:, :4], class_scores[np.arange(len(best)), best], best

    def decode(self, outputs: Mapping[str, npt.NDArray[Any]]) -> list[Prediction]:
        batch = np.asarray(outputs[self.output], dtype=np.float32)
        results: list[Prediction] = []
        for row in range(batch.shape[0]):
            raw_boxes, scores, classes = self._rows(batch[row])
            candidates = np.flatnonzero(scores >= self.settings.confidence_threshold)
            kept: list[BoxPrediction] = []
            for class_index in np.unique(classes[candidates]):
                members = candidates[classes[candidates] == class_index]
                xyxy = np.array([self._xyxy(raw_boxes[i]) for i in members]).reshape(-1, 4)
                for keep in non_max_suppression(xyxy, scores[members], self.iou_threshold):
                    index = members[keep]
                    box = self.settings.box(raw_boxes[index], float(scores[index]), int(class_index))
                    if box is not None:
                        kept.append(box)
            kept.sort(key=lambda b: -(b.confidence or 0.0))
            results.append(DetectionPrediction(boxes=tuple(kept)))
        return results

    def _xyxy(self, box: npt.NDArray[Any]) -> tuple[float, float, float, float]:
        relative = to_relative_xywh(
            box,
            self.settings.box_format,
            normalized=self.settings.normalized,
            width=self.settings.input_width,
            height=self.settings.input_height,
        ) or (0.0, 0.0, 0.0, 0.0)
        x, y, w, h = relative
        return (x, y, x + w, y + h)
