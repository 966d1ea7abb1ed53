"""Manifest to labels on a real Triton: every detection layout, preprocessing option and zero-shot prompts.

Each test writes an AutoLabelRun spec as a user would, lets the controller's
builder turn it into the worker configuration (the one contract), and runs a
shard against the real tritonserver serving models/ and a real mongod. The
square_* models find red and blue rectangles in float32 NCHW ImageNet-normalised
input and answer in one layout each; the images are drawn here, so where each
rectangle lies on the original image is known to the pixel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from contract.progress import ProgressState
from contract.worker import WorkerConfig
from controller.api import parse_spec
from controller.worker_contract import worker_config
from inference.progress import ProgressTracker
from inference.shard import run_shard
from runtime.errors import PreflightError
from runtime.reporters import NullReporter
from tests.integration.worker_helpers import make_dataset

pytestmark = pytest.mark.integration

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
# A 640 x 320 image: a red square and a blue bar, as (x1, y1, x2, y2) pixels of the original.
WIDTH, HEIGHT = 640, 320
RED = (400, 100, 520, 220)
BLUE = (40, 20, 140, 300)
TOLERANCE = 2.5 / WIDTH  # one model-input pixel of a 2x downscale, plus resampling at the edges


def _draw(path: Path, width: int = WIDTH, height: int = HEIGHT, boxes: bool = True) -> Path:
    pixels = np.full((height, width, 3), (90, 160, 90), np.uint8)  # green-grey: neither colour
    if boxes:
        pixels[RED[1] : RED[3], RED[0] : RED[2]] = (230, 20, 20)
        pixels[BLUE[1] : BLUE[3], BLUE[0] : BLUE[2]] = (20, 20, 230)
    Image.fromarray(pixels).save(path)  # PNG: no compression artefacts at the edges
    return path


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _draw(tmp_path_factory.mktemp("layouts") / "squares.png")


def _spec(dataset: str, grpc_url: str, task: str, model: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "task": task,
        "dataset": {"name": dataset, "databaseSecretRef": {"name": "db"}, "target": {"all": True}},
        "model": {"endpoint": {"address": grpc_url}, **model},
        "labelField": "found",
        **extra,
    }


def _run(manifest: dict[str, Any]) -> tuple[WorkerConfig, ProgressTracker]:
    metadata = {"namespace": "default", "name": "layouts", "uid": "uid-layouts"}
    config = WorkerConfig.from_json(worker_config(metadata, parse_spec(manifest)).to_json())
    return config, asyncio.run(run_shard(config, 0, NullReporter()))


def _relative(box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 / WIDTH, y1 / HEIGHT, (x2 - x1) / WIDTH, (y2 - y1) / HEIGHT)


def _boxes(dataset: Any) -> dict[str, tuple[float, float, float, float]]:
    detections = dataset.first()["found_in_review"].detections
    assert len({d.label for d in detections}) == len(detections), "one box per class (NMS, num_dets)"
    return {d.label: tuple(d.bounding_box) for d in detections}


def _assert_squares_found(dataset: Any) -> None:
    found = _boxes(dataset)
    assert set(found) == {"red", "blue"}
    for name, box in (("red", RED), ("blue", BLUE)):
        assert found[name] == pytest.approx(_relative(box), abs=TOLERANCE), name


PREPROCESS = {"resize": "letterbox", **IMAGENET}


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        # BOXES as x, y, width, height in input pixels: both settings say so.
        ("square_detector", {"outputFormat": "boxes", "boxFormat": "xywh", "boxCoordinates": "pixels"}),
        # YOLO defaults: centre x, y, w, h in pixels, NMS by the worker; v8 transposed, v5 with objectness.
        ("square_detector_yolov8", {"outputFormat": "yolo"}),
        ("square_detector_yolov5", {"outputFormat": "yolo", "nmsIouThreshold": 0.5}),
        # TensorRT EfficientNMS: x1, y1, x2, y2 pixels, rows past num_dets are junk.
        ("square_detector_efficient_nms", {"outputFormat": "efficient_nms"}),
    ],
)
def test_detection_layouts_letterboxed_map_back_to_the_original_image(mongo, triton, picture, name, layout):
    dataset = make_dataset([picture])
    model = {"name": name, "classNames": ["red", "blue"], "preprocess": PREPROCESS, **layout}
    _, tracker = _run(_spec(dataset.name, triton.grpc_url, "detection", model, confidenceThreshold=0.3))
    assert (tracker.state, tracker.processed, tracker.failed) == (ProgressState.SUCCEEDED, 1, 0)
    _assert_squares_found(dataset)


def test_stretch_is_the_default_and_maps_back_too(mongo, triton, picture):
    dataset = make_dataset([picture])
    model = {
        "name": "square_detector_efficient_nms",
        "outputFormat": "efficient_nms",
        "classNames": ["red", "blue"],
    }
    _run(_spec(dataset.name, triton.grpc_url, "detection", {**model, "preprocess": IMAGENET}))
    _assert_squares_found(dataset)


def test_box_settings_change_what_is_read(mongo, triton, picture):
    """The same BOXES read as the default xyxy normalized: not the squares (the settings take effect)."""
    dataset = make_dataset([picture])
    model = {"name": "square_detector", "outputFormat": "boxes", "classNames": ["red", "blue"]}
    _run(_spec(dataset.name, triton.grpc_url, "detection", {**model, "preprocess": PREPROCESS}))
    detections = dataset.first()["found_in_review"].detections
    assert all(d.bounding_box != pytest.approx(_relative(RED), abs=0.05) for d in detections)


@pytest.mark.parametrize(
    "preprocess",
    [
        {"resize": "letterbox"},  # no mean/std: the model sees 0-1 pixels, un-normalises them wrongly
        {"resize": "letterbox", "scale": False, **IMAGENET},  # 0-255 pixels minus a 0-1 mean
    ],
)
def test_wrong_normalisation_finds_nothing(mongo, triton, picture, preprocess):
    dataset = make_dataset([picture])
    model = {
        "name": "square_detector_efficient_nms",
        "outputFormat": "efficient_nms",
        "preprocess": preprocess,
    }
    _, tracker = _run(_spec(dataset.name, triton.grpc_url, "detection", model))
    assert tracker.processed == 1
    found = _boxes(dataset)
    assert all(box != pytest.approx(_relative(RED), abs=0.05) for box in found.values())


def test_class_id_mask_letterboxed_is_cut_to_the_image(mongo, triton, picture):
    dataset = make_dataset([picture])
    model = {"name": "square_segmenter", "outputFormat": "mask", "preprocess": PREPROCESS}
    _run(_spec(dataset.name, triton.grpc_url, "segmentation", model))
    mask = dataset.first()["found_in_review"].get_mask()
    assert mask.shape == (160, 320)  # the 2:1 image's window of the 320 x 320 input, padding cut off
    assert set(np.unique(mask)) == {0, 1, 2}  # class ids as the model gave them, no 0.5 threshold

    def at(x: int, y: int) -> int:  # class at a pixel of the original image
        return int(mask[y * mask.shape[0] // HEIGHT, x * mask.shape[1] // WIDTH])

    assert at(460, 160) == 1 and at(90, 160) == 2 and at(300, 50) == 0


def test_uint8_model_with_mean_std_is_refused_naming_the_fix(mongo, triton, picture):
    dataset = make_dataset([picture])
    model = {"name": "light_classifier", "outputFormat": "probabilities", "preprocess": IMAGENET}
    with pytest.raises(PreflightError, match=r"UINT8.*preprocess.mean/std"):
        _run(_spec(dataset.name, triton.grpc_url, "classification", model))


def test_zero_shot_prompts_name_the_outputs_in_their_order(mongo, triton, tmp_path):
    colours = {"red": (220, 30, 30), "blue": (30, 40, 220), "yellow": (230, 220, 40)}
    paths = []
    for name, rgb in colours.items():
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (80, 50), rgb).save(path)
        paths.append(path)
    dataset = make_dataset(paths)
    prompts = ["yellow", "a photo of red", "blue", "purple"]  # any order; unknown words score 0
    model = {
        "name": "zero_shot_colours",
        "outputFormat": "probabilities",
        "zeroShot": True,
        "classes": prompts,
    }
    config, tracker = _run(
        _spec(dataset.name, triton.grpc_url, "classification", model, execution={"batchSize": 2})
    )
    assert config.triton_model().classes == prompts and config.triton_model().keep_classes is None
    assert (tracker.processed, tracker.failed) == (3, 0)
    labels = {
        Path(p).stem: c.label for p, c in zip(*dataset.values(["filepath", "found_in_review"]), strict=True)
    }
    assert labels == {"red": "a photo of red", "blue": "blue", "yellow": "yellow"}


def test_zero_shot_model_without_zero_shot_is_refused(mongo, triton, picture):
    dataset = make_dataset([picture])
    model = {"name": "zero_shot_colours", "outputFormat": "probabilities"}
    with pytest.raises(PreflightError, match="zeroShot"):
        _run(_spec(dataset.name, triton.grpc_url, "classification", model))


def test_instance_masks_from_boxes_and_per_box_masks(mongo, triton, tmp_path):
    """A red disc and the blue bar: each detection carries its mask, cut to its box on the original image."""
    dataset = make_dataset([_disc_picture(tmp_path)])
    model = {
        "name": "square_instances",
        "outputFormat": "boxes",
        "boxFormat": "xywh",
        "boxCoordinates": "pixels",
        "tensors": {"masks": "MASKS"},
        "classNames": ["red", "blue"],
        "preprocess": PREPROCESS,
    }
    _run(_spec(dataset.name, triton.grpc_url, "detection", model, confidenceThreshold=0.3))
    found = {d.label: d for d in dataset.first()["found_in_review"].detections}
    disc, bar = found["red"], found["blue"]
    # A disc's thin tips blur away in the 2x smaller input: one input pixel (2 of the image) each way.
    assert disc.bounding_box == pytest.approx(_relative((400, 100, 520, 220)), abs=2.5 / HEIGHT)
    assert disc.mask.shape == pytest.approx((60, 60), abs=1)  # the box's pixels in the 2x smaller input
    assert disc.mask[30, 30] and not disc.mask[1, 1] and not disc.mask[-2, -2]  # a disc, not its box
    assert disc.mask.mean() == pytest.approx(np.pi / 4, abs=0.06)
    assert bar.mask.mean() > 0.95


def _disc_picture(directory: Path) -> Path:
    pixels = np.full((HEIGHT, WIDTH, 3), (90, 160, 90), np.uint8)
    rows, columns = np.mgrid[:HEIGHT, :WIDTH]
    pixels[(columns - 460) ** 2 + (rows - 160) ** 2 < 60**2] = (230, 20, 20)
    pixels[BLUE[1] : BLUE[3], BLUE[0] : BLUE[2]] = (20, 20, 230)
    path = directory / "disc.png"
    Image.fromarray(pixels).save(path)
    return path


def test_two_stage_segments_the_crops_of_chosen_classes(mongo, triton, tmp_path):
    """Detector boxes, then square_segmenter on each red box's crop: the disc's mask; blue boxes stay bare."""
    dataset = make_dataset([_disc_picture(tmp_path)])
    segmenter = {"name": "square_segmenter", "outputFormat": "mask", "classes": ["red"], **IMAGENET}
    model = {
        "name": "square_detector",
        "outputFormat": "boxes",
        "boxFormat": "xywh",
        "boxCoordinates": "pixels",
        "classNames": ["red", "blue"],
        "preprocess": PREPROCESS,
        "segmenter": segmenter,
    }
    _run(_spec(dataset.name, triton.grpc_url, "detection", model, confidenceThreshold=0.3))
    found = {d.label: d for d in dataset.first()["found_in_review"].detections}
    disc = found["red"]
    assert disc.mask.shape == (320, 320)  # the segmenter's own resolution, stretched over the box
    assert disc.mask[160, 160] and not disc.mask[3, 3] and not disc.mask[-4, -4]
    assert disc.mask.mean() == pytest.approx(np.pi / 4, abs=0.06)
    assert found["blue"].mask is None  # not a chosen class


def test_two_stage_real_models_selfie_segmenter_on_face_crops(mongo, triton, tmp_path):
    """Real models on a real photo: MediaPipe's face boxes, then its selfie segmenter on each face crop."""
    from tests.integration.worker_helpers import named_image

    dataset = make_dataset([named_image(tmp_path, "astronaut")])
    model = {
        "name": "face_detector",
        "outputFormat": "boxes",
        "classNames": ["face"],
        "segmenter": {"name": "selfie_segmentation", "outputFormat": "probabilities"},
    }
    _run(_spec(dataset.name, triton.grpc_url, "detection", model, confidenceThreshold=0.5))
    (face,) = dataset.first()["found_in_review"].detections
    assert face.mask.shape == (256, 256)  # selfie_segmentation's output for the crop
    assert 0.3 < face.mask.mean() < 1.0  # the face is person; a crop margin or background is not
