"""Every spec.model field, from a manifest through the controller's builder to what the worker does with it.

The controller builds the worker's typed configuration (the shared contract); these
tests take that configuration through the worker's own preprocessing and output
adapters on plain arrays and images. `WALKED` names, for each leaf of the CRD's
spec.model, where its effect is shown: a field added to the CRD without a walk fails
`test_every_model_field_is_walked`. The same walks against a real Triton are in
tests/integration/test_worker_layouts.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract.worker import LETTERBOX_FILL, OutputFormat
from controller.api import parse_spec
from controller.api.openapi import structural_schema
from controller.api.spec import AutoLabelRunSpec
from inference.adapters import make_adapter
from inference.adapters.base import BoxPrediction, DetectionPrediction
from inference.adapters.detection import BoxesScoresLabelsAdapter, YoloAdapter
from inference.adapters.segmentation import SegmentationAdapter
from inference.decode import Preprocessor
from inference.geometry import Window, to_image
from inference.model_spec import resolve_input
from runtime.errors import PreflightError
from tests.unit.walk_inputs import (
    FLOAT_NCHW,
    IMAGE_NHWC,
    model_metadata,
    red_image,
    schema_leaves,
    walk_config,
)

HERE = "tests/unit/test_contract_walk.py"
BUILDERS = "tests/unit/test_controller_builders.py"
LAYOUTS = "tests/integration/test_worker_layouts.py"
WALKED = {
    "endpoint.address": BUILDERS,
    "endpoint.protocol": "tests/integration/test_worker_adapters.py (http)",
    "sidecar.*": BUILDERS,
    "name": HERE,
    "input": "tests/integration/test_worker_encoded.py (file bytes to a real Triton ensemble)",
    "version": HERE,
    "outputFormat": HERE,
    "boxFormat": HERE,
    "boxCoordinates": HERE,
    "nmsIouThreshold": HERE,
    "tensors.input": HERE,
    "tensors.text": HERE,
    "tensors.output": HERE,
    "tensors.boxes": HERE,
    "tensors.scores": HERE,
    "tensors.labels": HERE,
    "tensors.count": HERE,
    "tensors.masks": HERE,
    "preprocess.layout": HERE,
    "preprocess.width": HERE,
    "preprocess.height": HERE,
    "preprocess.resize": HERE,
    "preprocess.scale": HERE,
    "preprocess.mean": HERE,
    "preprocess.std": HERE,
    "classNames": HERE,
    "classes": HERE,
    "zeroShot": HERE,
    "embeddings.*": BUILDERS + ", tests/integration/test_worker_adapters.py",
    "segmenter.*": LAYOUTS,
}


def test_every_model_field_is_walked() -> None:
    model = structural_schema(AutoLabelRunSpec)["properties"]["model"]
    leaves = {
        leaf if not leaf.startswith(("sidecar.", "embeddings.", "segmenter.")) else leaf.split(".")[0] + ".*"
        for leaf in schema_leaves(model)
    }
    assert leaves == set(WALKED), "spec.model fields without a walk (or walks of removed fields)"


def test_name_version_and_the_server_reach_the_worker() -> None:
    config = walk_config("classification", {"outputFormat": "logits", "version": "3"})
    assert (config.triton_model().name, config.triton_model().version, config.triton_model().url) == (
        "m",
        "3",
        "triton:8001",
    )


@pytest.mark.parametrize(
    ("layout", "shape"), [(None, (3, 64, 64)), ("NCHW", (3, 64, 64)), ("NHWC", (64, 64, 3))]
)
def test_layout_shapes_the_tensor(tmp_path: Path, layout: str | None, shape: tuple[int, ...]) -> None:
    preprocess = {"layout": layout} if layout else {}
    config = walk_config("classification", {"outputFormat": "logits", "preprocess": preprocess})
    inputs = [("IMAGE", "FP32", (3, 64, 64) if layout != "NHWC" else (64, 64, 3))]
    spec = resolve_input(model_metadata(inputs, [("OUT", "FP32", (5,))]), config.triton_model())
    pixels = Preprocessor.for_model(spec, config.triton_model()).load(red_image(tmp_path))
    assert pixels.shape == shape


def test_width_and_height_size_a_variable_input(tmp_path: Path) -> None:
    config = walk_config(
        "classification", {"outputFormat": "logits", "preprocess": {"width": 48, "height": 32}}
    )
    metadata = model_metadata([("IMAGE", "UINT8", (-1, -1, 3))], [("OUT", "FP32", (5,))])
    spec = resolve_input(metadata, config.triton_model())
    assert Preprocessor.for_model(spec, config.triton_model()).load(red_image(tmp_path)).shape == (32, 48, 3)
    with pytest.raises(PreflightError, match="inputSize"):
        resolve_input(metadata, walk_config("classification", {"outputFormat": "logits"}).triton_model())
    with pytest.raises(ValueError, match=r"width and preprocess\.height go together"):
        walk_config("classification", {"outputFormat": "logits", "preprocess": {"width": 48}})


def test_letterbox_pads_grey_and_maps_predictions_back(tmp_path: Path) -> None:
    config = walk_config("detection", {"outputFormat": "boxes", "preprocess": {"resize": "letterbox"}})
    spec = resolve_input(model_metadata(IMAGE_NHWC, []), config.triton_model())
    pixels, window = Preprocessor.for_model(spec, config.triton_model()).decode(
        red_image(tmp_path)
    )  # 128 x 64 -> 64 x 32
    assert (window.x, window.y, window.width, window.height) == (0, 16, 64, 32)
    assert (pixels[:16] == LETTERBOX_FILL).all() and (pixels[48:] == LETTERBOX_FILL).all()
    assert (pixels[16:48, :, 0] == 255).all()
    adapter = make_adapter(config, model_metadata(IMAGE_NHWC, _BOX_OUTPUTS), spec, ["a"])
    # A box covering the content's right half, found on the input: [0.5, 0.25, 0.5, 0.5] relative.
    outputs = {
        "BOXES": np.array([[[0.5, 0.25, 1.0, 0.75]]]),
        "SCORES": np.array([[0.9]]),
        "LABELS": np.array([[0]]),
    }
    (prediction,) = adapter.decode(outputs)
    mapped = to_image(prediction, window)
    assert mapped.boxes[0].bounding_box == pytest.approx((0.5, 0.0, 0.5, 1.0))  # type: ignore[union-attr]
    stretched = walk_config("detection", {"outputFormat": "boxes"})
    _, whole = Preprocessor.for_model(spec, stretched.triton_model()).decode(red_image(tmp_path))
    assert whole.fills_input and to_image(prediction, whole) == prediction


@pytest.mark.parametrize(
    ("preprocess", "expected"),
    [
        ({}, (1.0, 0.0, 0.0)),
        ({"scale": False}, (255.0, 0.0, 0.0)),
        ({"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.25, 0.5]}, (1.0, -2.0, -1.0)),
        ({"scale": False, "mean": [127.5, 0, 0], "std": [127.5, 1, 1]}, (1.0, 0.0, 0.0)),
    ],
)
def test_scale_mean_and_std_normalise_float_inputs(
    tmp_path: Path, preprocess: dict[str, Any], expected: tuple[float, float, float]
) -> None:
    config = walk_config("classification", {"outputFormat": "logits", "preprocess": preprocess})
    spec = resolve_input(model_metadata(FLOAT_NCHW, [("OUT", "FP32", (5,))]), config.triton_model())
    pixels = Preprocessor.for_model(spec, config.triton_model()).load(red_image(tmp_path))
    assert pixels.dtype == np.float32
    assert tuple(float(pixels[c, 10, 10]) for c in range(3)) == pytest.approx(expected)


def test_fp16_input_and_uint8_untouched(tmp_path: Path) -> None:
    config = walk_config("classification", {"outputFormat": "logits"})
    half = resolve_input(model_metadata([("IMAGE", "FP16", (3, 64, 64))], []), config.triton_model())
    assert Preprocessor.for_model(half, config.triton_model()).load(red_image(tmp_path)).dtype == np.float16
    raw = resolve_input(model_metadata(IMAGE_NHWC, []), config.triton_model())
    pixels = Preprocessor.for_model(raw, config.triton_model()).load(red_image(tmp_path))
    assert pixels.dtype == np.uint8 and pixels[0, 0, 0] == 255


def test_mean_std_on_a_uint8_model_is_refused() -> None:
    config = walk_config(
        "classification", {"outputFormat": "logits", "preprocess": {"mean": [0, 0, 0], "std": [1, 1, 1]}}
    )
    with pytest.raises(PreflightError, match=r"preprocess\.mean/std"):
        resolve_input(model_metadata(IMAGE_NHWC, []), config.triton_model())
    with pytest.raises(ValueError, match=r"mean and preprocess\.std go together"):
        walk_config("classification", {"outputFormat": "logits", "preprocess": {"mean": [0, 0, 0]}})


_BOX_OUTPUTS = [("BOXES", "FP32", (-1, 4)), ("SCORES", "FP32", (-1,)), ("LABELS", "INT32", (-1,))]


@pytest.mark.parametrize(
    ("settings", "raw", "expected"),
    [
        ({}, [0.25, 0.5, 0.75, 1.0], (0.25, 0.5, 0.5, 0.5)),
        ({"boxFormat": "xywh"}, [0.25, 0.5, 0.5, 0.5], (0.25, 0.5, 0.5, 0.5)),
        ({"boxFormat": "cxcywh", "boxCoordinates": "pixels"}, [32, 48, 32, 32], (0.25, 0.5, 0.5, 0.5)),
        ({"boxCoordinates": "pixels"}, [16, 32, 48, 64], (0.25, 0.5, 0.5, 0.5)),
    ],
)
def test_box_format_and_coordinates(
    settings: dict[str, Any], raw: list[float], expected: tuple[float, ...]
) -> None:
    config = walk_config("detection", {"outputFormat": "boxes", "classNames": ["a"], **settings})
    metadata = model_metadata(IMAGE_NHWC, _BOX_OUTPUTS)
    adapter = make_adapter(config, metadata, resolve_input(metadata, config.triton_model()), None)
    (prediction,) = adapter.decode(
        {"BOXES": np.array([[raw]], np.float32), "SCORES": np.array([[0.9]]), "LABELS": np.array([[0]])}
    )
    assert prediction.boxes[0].bounding_box == pytest.approx(expected)  # type: ignore[union-attr]


def test_box_settings_refused_off_box_formats() -> None:
    with pytest.raises(ValueError, match="boxFormat applies only to outputFormat"):
        walk_config("classification", {"outputFormat": "logits", "boxFormat": "xywh"})


def test_yolo_defaults_and_nms_threshold() -> None:
    metadata = model_metadata(IMAGE_NHWC, [("OUT", "FP32", (-1, 6))])
    rows = np.array([[[32, 32, 20, 20, 0.9, 0.0], [34, 34, 20, 20, 0.8, 0.0]]], np.float32)  # cxcywh pixels
    for threshold, kept in ((0.45, 1), (0.9, 2)):
        config = walk_config(
            "detection", {"outputFormat": "yolo", "classNames": ["a", "b"], "nmsIouThreshold": threshold}
        )
        adapter = make_adapter(config, metadata, resolve_input(metadata, config.triton_model()), None)
        assert isinstance(adapter, YoloAdapter)
        (prediction,) = adapter.decode({"OUT": rows})
        assert len(prediction.boxes) == kept  # type: ignore[union-attr]
        assert prediction.boxes[0].bounding_box == pytest.approx((22 / 64, 22 / 64, 20 / 64, 20 / 64))  # type: ignore[union-attr]


def test_efficient_nms_reads_num_dets_rows_only_and_tensor_names() -> None:
    names = {"boxes": "B", "scores": "S", "labels": "C", "count": "N"}
    config = walk_config(
        "detection", {"outputFormat": "efficient_nms", "classNames": ["a"], "tensors": names}
    )
    outputs = [("B", "FP32", (3, 4)), ("S", "FP32", (3,)), ("C", "INT32", (3,)), ("N", "INT32", (1,))]
    metadata = model_metadata(IMAGE_NHWC, outputs)
    adapter = make_adapter(config, metadata, resolve_input(metadata, config.triton_model()), None)
    assert isinstance(adapter, BoxesScoresLabelsAdapter) and adapter.output_names() == ["B", "S", "C", "N"]
    assert adapter.check(metadata) == []
    boxes = np.array([[[0, 0, 32, 32], [32, 32, 64, 64], [1, 1, 9, 9]]], np.float32)  # xyxy pixels
    (prediction,) = adapter.decode(
        {"B": boxes, "S": np.array([[0.9, 0.8, 0.7]]), "C": np.array([[0, 0, 0]]), "N": np.array([[2]])}
    )
    assert [b.bounding_box for b in prediction.boxes] == [(0, 0, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5)]  # type: ignore[union-attr]
    defaults = walk_config("detection", {"outputFormat": "efficient_nms"}).triton_model().tensors
    assert defaults.detection_outputs(OutputFormat.EFFICIENT_NMS) == (
        "det_boxes",
        "det_scores",
        "det_classes",
        "num_dets",
    )


def test_boxes_tensor_names_are_requested() -> None:
    config = walk_config(
        "detection", {"outputFormat": "boxes", "tensors": {"boxes": "b", "scores": "s", "labels": "l"}}
    )
    metadata = model_metadata(
        IMAGE_NHWC, [("b", "FP32", (-1, 4)), ("s", "FP32", (-1,)), ("l", "INT32", (-1,))]
    )
    adapter = make_adapter(config, metadata, resolve_input(metadata, config.triton_model()), None)
    assert adapter.output_names() == ["b", "s", "l"] and adapter.check(metadata) == []


@pytest.mark.parametrize(
    ("output_format", "datatype", "scores", "mask", "confidence"),
    [
        ("mask", "INT32", [[[0, 2], [1, 0]]], [[0, 2], [1, 0]], 1.0),  # class ids, never thresholded
        ("mask", "FP32", [[[0.9, 0.2], [0.6, 0.1]]], [[1, 0], [1, 0]], (0.9 + 0.8 + 0.6 + 0.9) / 4),
        ("probabilities", "FP32", [[[0.9, 0.2], [0.6, 0.1]]], [[1, 0], [1, 0]], (0.9 + 0.8 + 0.6 + 0.9) / 4),
        ("logits", "FP32", [[[0.0, 0.0], [0.0, 0.0]], [[3.0, -1.0], [0.0, 5.0]]], [[1, 0], [0, 1]], None),
    ],
)
def test_segmentation_formats(
    output_format: str, datatype: str, scores: list[Any], mask: list[list[int]], confidence: float | None
) -> None:
    config = walk_config("segmentation", {"outputFormat": output_format})
    shape = np.array(scores).shape
    metadata = model_metadata(IMAGE_NHWC, [("M", datatype, shape)])
    adapter = make_adapter(config, metadata, resolve_input(metadata, config.triton_model()), None)
    assert isinstance(adapter, SegmentationAdapter) and adapter.check(metadata) == []
    dtype = np.int32 if datatype == "INT32" else np.float32
    (prediction,) = adapter.decode({"M": np.array([scores], dtype)})
    assert prediction.mask.tolist() == mask  # type: ignore[union-attr]
    if confidence is not None:
        assert prediction.confidence == pytest.approx(confidence)  # type: ignore[union-attr]


def test_tensor_input_and_output_pick_among_several() -> None:
    config = walk_config(
        "classification", {"outputFormat": "probabilities", "tensors": {"input": "B", "output": "P"}}
    )
    metadata = model_metadata(
        [("A", "UINT8", (8, 8, 3)), ("B", "UINT8", (64, 64, 3))], [("L", "FP32", (3,)), ("P", "FP32", (3,))]
    )
    spec = resolve_input(metadata, config.triton_model())
    adapter = make_adapter(config, metadata, spec, None)
    assert spec.name == "B" and adapter.output_names() == ["P"]
    (prediction,) = adapter.decode({"P": np.array([[0.1, 0.7, 0.2]])})
    assert prediction.label == "1" and prediction.confidence == pytest.approx(0.7)  # type: ignore[union-attr]


def test_class_names_name_and_classes_filter() -> None:
    config = walk_config(
        "classification", {"outputFormat": "probabilities", "classNames": ["x", "y", "z"], "classes": ["y"]}
    )
    metadata = model_metadata(IMAGE_NHWC, [("P", "FP32", (3,))])
    adapter = make_adapter(config, metadata, resolve_input(metadata, config.triton_model()), None)
    kept, dropped = adapter.decode({"P": np.array([[0.1, 0.7, 0.2], [0.1, 0.2, 0.7]])})
    assert kept.label == "y" and dropped is None  # type: ignore[union-attr]


def test_zero_shot_sends_the_classes_as_prompts_named_by_tensors_text() -> None:
    prompts = ["a cat", "a dog"]
    model = {"outputFormat": "probabilities", "zeroShot": True, "classes": prompts, "tensors": {"text": "T2"}}
    config = walk_config("classification", model)
    assert (
        config.triton_model().classes == prompts
        and config.triton_model().keep_classes is None
        and config.triton_model().zero_shot
    )
    metadata = model_metadata(
        [*IMAGE_NHWC, ("T1", "BYTES", (-1,)), ("T2", "BYTES", (-1,))], [("P", "FP32", (-1,))]
    )
    spec = resolve_input(metadata, config.triton_model())
    assert spec.name == "IMAGE" and spec.text is not None and spec.text.name == "T2"
    assert spec.text.prompts == tuple(prompts)
    (prediction,) = make_adapter(config, metadata, spec, None).decode({"P": np.array([[0.2, 0.8]])})
    assert prediction.label == "a dog"  # type: ignore[union-attr]
    with pytest.raises(PreflightError, match="zeroShot true"):
        resolve_input(
            metadata, walk_config("classification", {"outputFormat": "probabilities"}).triton_model()
        )
    with pytest.raises(ValueError, match="classNames does not apply to zeroShot"):
        walk_config("classification", {**model, "classNames": ["x"]})


def test_manifest_takes_model_xor_source() -> None:
    base = {
        "task": "detection",
        "dataset": {"name": "d", "databaseSecretRef": {"name": "db"}, "target": {"all": True}},
        "labelField": "checked",
    }
    model = {"endpoint": {"address": "t:8001"}, "name": "m", "outputFormat": "boxes"}
    with pytest.raises(ValueError, match="exactly one of model"):
        parse_spec(base)
    with pytest.raises(ValueError, match="exactly one of model"):
        parse_spec({**base, "model": model, "source": {"field": "prior"}})
    with pytest.raises(ValueError, match=r"source\.field must differ"):
        parse_spec({**base, "source": {"field": "checked_in_review"}})


def test_instance_masks_cover_each_box_and_follow_the_letterbox() -> None:
    model = {
        "outputFormat": "boxes",
        "classNames": ["a"],
        "tensors": {"masks": "M"},
        "boxCoordinates": "pixels",
    }
    config = walk_config("detection", model)
    metadata = model_metadata(IMAGE_NHWC, [*_BOX_OUTPUTS, ("M", "FP32", (-1, 64, 64))])
    adapter = make_adapter(config, metadata, resolve_input(metadata, config.triton_model()), None)
    assert adapter.output_names() == ["BOXES", "SCORES", "LABELS", "M"] and adapter.check(metadata) == []
    whole = np.zeros((1, 2, 64, 64), np.float32)
    whole[0, 0, 8:24, 40:48] = 0.9  # over the whole input: cut to the box (x 32-48, y 8-24)
    whole[0, 1, :4, :4] = 1.0  # box-relative masks are kept as they are (here 64 x 64 is the input: cut)
    boxes = np.array([[[32, 8, 48, 24], [0, 0, 8, 8]]], np.float32)
    outputs = {"BOXES": boxes, "SCORES": np.array([[0.9, 0.8]]), "LABELS": np.array([[0, 0]]), "M": whole}
    (prediction,) = adapter.decode(outputs)
    first, second = prediction.boxes  # type: ignore[union-attr]
    assert first.mask is not None and first.mask.shape == (16, 16)
    assert first.mask[:, 8:].all() and not first.mask[:, :8].any()
    assert second.mask is not None and second.mask.shape == (8, 8) and second.mask[:4, :4].all()
    small = model_metadata(IMAGE_NHWC, [*_BOX_OUTPUTS, ("M", "UINT8", (-1, 28, 28))])
    relative = make_adapter(config, small, resolve_input(small, config.triton_model()), None)
    (prediction,) = relative.decode({**outputs, "M": np.ones((1, 2, 28, 28), np.uint8)})
    assert all(b.mask is not None and b.mask.shape == (28, 28) for b in prediction.boxes)  # type: ignore[union-attr]
    # Letterboxed (content rows 16-48 of 64): a box reaching into the padding loses that part of its mask.
    window = Window(0, 16, 64, 32, 64, 64)
    padded = BoxPrediction("a", 0.9, (0.0, 0.0, 0.5, 0.5), mask=np.ones((32, 32), bool))
    (mapped,) = to_image(DetectionPrediction(boxes=(padded,)), window).boxes  # type: ignore[union-attr]
    assert mapped.bounding_box == pytest.approx((0.0, 0.0, 0.5, 0.5)) and mapped.mask is not None
    assert mapped.mask.shape == (16, 32)  # the lower half of the box: what lay on the image


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"outputFormat": "yolo", "tensors": {"masks": "M"}},
            "tensors.masks applies only to outputFormat boxes",
        ),
        ({"outputFormat": "boxes", "tensors": {"count": "N"}}, "tensors.count applies only to outputFormat"),
        ({"outputFormat": "boxes", "tensors": {"text": "T"}}, "tensors.text applies only to zeroShot"),
    ],
)
def test_tensors_of_another_format_are_refused(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        walk_config("detection", model)
