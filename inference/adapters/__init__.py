"""Output adapters: how each task's predictions are read out of a Triton model's output tensors.

``make_adapter`` picks and configures the adapter for a worker config once the
model's metadata and input size are known (tensor names may default from it).
"""

from __future__ import annotations

from contract.worker import OutputFormat, Task, WorkerConfig
from inference.adapters.base import (
    BoxPrediction,
    ClassificationPrediction,
    ClassNames,
    DetectionPrediction,
    OutputAdapter,
    Prediction,
    SegmentationPrediction,
    single_output_name,
)
from inference.adapters.classification import ClassificationAdapter
from inference.adapters.detection import BoxesScoresLabelsAdapter, YoloAdapter, _BoxSettings
from inference.adapters.segmentation import SegmentationAdapter
from inference.model_spec import FLOAT_DATATYPES, InputSpec, ModelMetadata
from runtime.errors import PreflightError

__all__ = [
    "BoxPrediction",
    "ClassNames",
    "ClassificationPrediction",
    "DetectionPrediction",
    "OutputAdapter",
    "Prediction",
    "SegmentationPrediction",
    "make_adapter",
]


def make_adapter(
    config: WorkerConfig, metadata: ModelMetadata, input_spec: InputSpec, class_names: list[str] | None
) -> OutputAdapter:
    """The adapter for ``config``'s task and output format; ``class_names`` from config or the model."""
    model = config.triton_model()
    classes = ClassNames(model.classes or class_names, model.keep_classes)
    output = single_output_name(metadata, model.tensors.output)
    needs_single_output = model.output_format not in (OutputFormat.BOXES, OutputFormat.EFFICIENT_NMS)
    if needs_single_output and output is None:
        names = [spec.name for spec in metadata.outputs]
        raise PreflightError(f"model {metadata.name!r} has outputs {names}: name one in model.tensors.output")
    if config.task == Task.CLASSIFICATION:
        assert output is not None
        return ClassificationAdapter(
            output,
            classes,
            from_logits=model.output_format == OutputFormat.LOGITS,
            confidence_threshold=model.confidence_threshold,
            store_logits=model.store_logits,
        )
    if config.task == Task.SEGMENTATION:
        assert output is not None
        reading = segmentation_reading(metadata, output, model.output_format)
        return SegmentationAdapter(output, classes, reading)
    settings = _BoxSettings(
        classes,
        confidence_threshold=model.confidence_threshold,
        box_format=model.resolved_box_format,
        normalized=model.resolved_boxes_normalized,
        input_width=input_spec.width,
        input_height=input_spec.height,
    )
    if model.output_format == OutputFormat.YOLO:
        assert output is not None
        return YoloAdapter(output, settings, model.nms_iou_threshold)
    boxes, scores, labels, count = model.tensors.detection_outputs(model.output_format)
    masks = model.tensors.masks if model.output_format == OutputFormat.BOXES else None
    return BoxesScoresLabelsAdapter(boxes, scores, labels, settings, count=count, masks=masks)


def segmentation_reading(metadata: ModelMetadata, output: str, output_format: OutputFormat) -> OutputFormat:
    """``mask`` reads an integer tensor as class ids and a float tensor as class probabilities."""
    spec = metadata.output(output)
    if output_format == OutputFormat.MASK and spec is not None and spec.datatype in FLOAT_DATATYPES:
        return OutputFormat.PROBABILITIES
    return output_format
