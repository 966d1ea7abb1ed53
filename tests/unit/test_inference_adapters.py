"""Output adapters on plain arrays: classification, boxes/scores/labels, YOLO, segmentation, metadata."""

from typing import Any

import numpy as np
import pytest

from contract.worker import BoxFormat, OutputFormat, WorkerConfig
from inference.adapters import (
    ClassificationPrediction,
    ClassNames,
    DetectionPrediction,
    SegmentationPrediction,
    make_adapter,
)
from inference.adapters.classification import ClassificationAdapter
from inference.adapters.detection import (
    BoxesScoresLabelsAdapter,
    YoloAdapter,
    _BoxSettings,
    non_max_suppression,
    to_relative_xywh,
)
from inference.adapters.segmentation import SegmentationAdapter
from inference.model_spec import InputSpec, ModelMetadata, TensorSpec, resolve_input
from runtime.errors import PreflightError


def _settings(classes: tuple[str, ...] = ("face", "cat"), **kwargs: Any) -> _BoxSettings:
    options: dict[str, Any] = {
        "confidence_threshold": 0.3,
        "box_format": BoxFormat.XYXY,
        "normalized": True,
        "input_width": 100,
        "input_height": 50,
    } | kwargs
    return _BoxSettings(ClassNames(list(classes)), **options)


def test_classification_from_logits_threshold_filter_and_logits():
    adapter = ClassificationAdapter(
        "LOGITS",
        ClassNames(["cat", "dog", "cup"], keep=["cat", "dog"]),
        from_logits=True,
        store_logits=True,
        confidence_threshold=0.5,
    )
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.1, 0.0, 0.0]], dtype=np.float32)
    first, filtered, uncertain = adapter.decode({"LOGITS": logits})
    assert isinstance(first, ClassificationPrediction)
    assert first.label == "cat" and first.confidence == pytest.approx(np.exp(4) / (np.exp(4) + 2), rel=1e-5)
    assert first.logits == [4.0, 0.0, 0.0]
    assert filtered is None  # "cup" is not kept
    assert uncertain is None  # below 0.5


def test_classification_from_probabilities_and_unknown_index_names():
    adapter = ClassificationAdapter("P", ClassNames(None), from_logits=False)
    (prediction,) = adapter.decode({"P": np.array([[0.1, 0.7, 0.2]])})
    assert isinstance(prediction, ClassificationPrediction)
    assert prediction.label == "1" and prediction.confidence == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("box", "box_format", "normalized", "expected"),
    [
        ([0.1, 0.2, 0.5, 0.6], BoxFormat.XYXY, True, (0.1, 0.2, 0.4, 0.4)),
        ([10, 10, 40, 20], BoxFormat.XYWH, False, (0.1, 0.2, 0.4, 0.4)),
        ([30, 20, 40, 20], BoxFormat.CXCYWH, False, (0.1, 0.2, 0.4, 0.4)),
        ([-10, -10, 50, 25], BoxFormat.XYXY, False, (0.0, 0.0, 0.5, 0.5)),  # clipped
    ],
)
def test_box_conversion(box, box_format, normalized, expected):
    result = to_relative_xywh(np.array(box, float), box_format, normalized=normalized, width=100, height=50)
    assert result == pytest.approx(expected)


def test_degenerate_box_is_dropped():
    assert (
        to_relative_xywh(np.array([0.5, 0.5, 0.5, 0.9]), BoxFormat.XYXY, normalized=True, width=1, height=1)
        is None
    )


def test_boxes_scores_labels_padding_and_threshold():
    adapter = BoxesScoresLabelsAdapter("B", "S", "L", _settings())
    boxes = np.array(
        [[[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9], [0, 0, 0, 0]], [[0.2, 0.2, 0.4, 0.4], [0] * 4, [0] * 4]]
    )
    scores = np.array([[0.9, 0.2, 0.0], [0.8, 0.0, 0.0]])
    labels = np.array([[0, 1, -1], [1, -1, -1]])
    first, second = adapter.decode({"B": boxes, "S": scores, "L": labels})
    assert isinstance(first, DetectionPrediction) and isinstance(second, DetectionPrediction)
    assert [(b.label, round(b.confidence or 0.0, 2)) for b in first.boxes] == [("face", 0.9)]
    assert first.boxes[0].bounding_box == pytest.approx((0.1, 0.1, 0.2, 0.2))
    assert [b.label for b in second.boxes] == ["cat"]


def test_nms_keeps_best_of_overlapping():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=float)
    assert non_max_suppression(boxes, np.array([0.8, 0.9, 0.5]), 0.5) == [1, 2]


@pytest.mark.parametrize("transposed", [False, True])
def test_yolo_v8_layout(transposed):
    settings = _settings(box_format=BoxFormat.CXCYWH, normalized=False, input_width=100, input_height=100)
    adapter = YoloAdapter("OUT", settings, iou_threshold=0.5)
    rows = np.array(
        [
            [50, 50, 20, 20, 0.9, 0.1],  # face
            [51, 51, 20, 20, 0.8, 0.1],  # duplicate face, suppressed
            [20, 20, 10, 10, 0.1, 0.7],  # cat
            [80, 80, 10, 10, 0.1, 0.2],  # below threshold
        ],
        dtype=np.float32,
    )
    table = rows.T if transposed else rows
    (prediction,) = adapter.decode({"OUT": table[np.newaxis]})
    assert isinstance(prediction, DetectionPrediction)
    assert [(b.label, round(b.confidence or 0.0, 2)) for b in prediction.boxes] == [
        ("face", 0.9),
        ("cat", 0.7),
    ]
    assert prediction.boxes[0].bounding_box == pytest.approx((0.4, 0.4, 0.2, 0.2))


def test_yolo_v5_objectness():
    adapter = YoloAdapter("OUT", _settings(box_format=BoxFormat.CXCYWH, normalized=True), iou_threshold=0.5)
    rows = np.array([[[0.5, 0.5, 0.2, 0.2, 0.5, 0.9, 0.1]]], dtype=np.float32)  # obj 0.5 x face 0.9
    (prediction,) = adapter.decode({"OUT": rows})
    assert isinstance(prediction, DetectionPrediction)
    assert prediction.boxes[0].confidence == pytest.approx(0.45)


def test_segmentation_binary_probability_and_multiclass_logits():
    binary = SegmentationAdapter("M", ClassNames(["background", "person"]), OutputFormat.PROBABILITIES)
    probabilities = np.array([[[0.9, 0.1], [0.2, 0.6]]], dtype=np.float32)
    (prediction,) = binary.decode({"M": probabilities})
    assert isinstance(prediction, SegmentationPrediction)
    assert prediction.mask.tolist() == [[1, 0], [0, 1]] and prediction.mask.dtype == np.uint8
    assert prediction.confidence == pytest.approx((0.9 + 0.9 + 0.8 + 0.6) / 4)
    multi = SegmentationAdapter("M", ClassNames(None), OutputFormat.LOGITS)
    logits = np.zeros((1, 3, 2, 2), dtype=np.float32)
    logits[0, 2, 0, 0] = 5
    (prediction,) = multi.decode({"M": logits})
    assert isinstance(prediction, SegmentationPrediction)
    assert prediction.mask[0, 0] == 2 and prediction.classes == ("0", "1", "2")


def _metadata(outputs: list[tuple[str, str, tuple[int, ...]]], max_batch_size: int = 8) -> ModelMetadata:
    return ModelMetadata(
        "m",
        (TensorSpec("IMAGE", "UINT8", (-1, 224, 224, 3)),),
        tuple(TensorSpec(name, dtype, shape) for name, dtype, shape in outputs),
        max_batch_size,
    )


def _config(task: str, output_format: str, **model: Any) -> WorkerConfig:
    return WorkerConfig.model_validate(
        {
            "run": {"namespace": "n", "name": "r", "uid": "u"},
            "dataset": "d",
            "labelField": "f",
            "task": task,
            "model": {"url": "u", "name": "m", "outputFormat": output_format} | model,
        }
    )


def test_metadata_mismatch_is_named():
    config = _config("detection", "boxes_scores_labels")
    metadata = _metadata([("LOGITS", "FP32", (-1, 1000))])
    spec = resolve_input(metadata, config.triton_model())
    problems = make_adapter(config, metadata, spec, None).check(metadata)
    assert any("no output 'BOXES'" in problem for problem in problems)


def test_classification_metadata_fits():
    config = _config("classification", "logits")
    metadata = _metadata([("LOGITS", "FP32", (-1, 1000))])
    spec = resolve_input(metadata, config.triton_model())
    assert spec == InputSpec("IMAGE", "UINT8", spec.layout, 224, 224, batched=True)
    assert make_adapter(config, metadata, spec, None).check(metadata) == []


def test_variable_input_size_needs_config():
    metadata = ModelMetadata("m", (TensorSpec("x", "FP32", (-1, 3, -1, -1)),), (), 4)
    with pytest.raises(PreflightError, match="inputSize"):
        resolve_input(metadata, _config("classification", "logits").triton_model())
    spec = resolve_input(metadata, _config("classification", "logits", inputSize=[320, 240]).triton_model())
    assert (spec.layout, spec.height, spec.width) == ("NCHW", 320, 240)
