"""Real models served as production serves them: manifest to labels on a real Triton and mongod.

``efficientnet_lite0_onnx`` is EfficientNet-Lite0 exported to ONNX and run by onnxruntime,
fed float32 NCHW with the ImageNet mean/std by the worker (the ``spec.model`` of
examples/classification-onnx.yaml). It must give the top-1 class, and nearly the
confidence, of the uint8 ``efficientnet_lite0`` (the same weights, normalising inside the
model) on the real photos the other tests use. ``face_detector_mtcnn`` is a real detector
whose boxes come out in pixels of its input; through the worker, resized either way,
its face box must land where the same detector finds the face at full resolution.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from contract.progress import ProgressState
from contract.worker import WorkerConfig
from controller.api import parse_spec
from controller.worker_contract import worker_config
from inference.progress import ProgressTracker
from inference.shard import run_shard
from runtime.reporters import NullReporter
from tests.integration.worker_helpers import REPO_ROOT, make_dataset, named_image
from tools.images import SKIMAGE_IMAGES, skimage_rgb

pytestmark = pytest.mark.integration

ONNX_EXAMPLE = REPO_ROOT / "examples" / "classification-onnx.yaml"
UINT8_MODEL = {"name": "efficientnet_lite0", "outputFormat": "logits", "tensors": {"output": "LOGITS"}}
MTCNN = {
    "name": "face_detector_mtcnn",
    "outputFormat": "boxes",
    "boxCoordinates": "pixels",  # x1, y1, x2, y2 (the default boxFormat) in pixels of the 320 x 320 input
    "classNames": ["face"],
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("real-models")
    return {name: named_image(directory, name) for name in SKIMAGE_IMAGES}


def _run(dataset: str, grpc_url: str, task: str, model: dict[str, Any], label_field: str) -> ProgressTracker:
    spec = {
        "task": task,
        "dataset": {"name": dataset, "databaseSecretRef": {"name": "db"}, "target": {"all": True}},
        "model": {**model, "endpoint": {"address": grpc_url}},
        "labelField": label_field,
    }
    metadata = {"namespace": "default", "name": label_field, "uid": f"uid-{uuid.uuid4().hex[:12]}"}
    config = WorkerConfig.from_json(worker_config(metadata, parse_spec(spec)).to_json())
    tracker = asyncio.run(run_shard(config, 0, NullReporter()))
    assert (tracker.state, tracker.failed) == (ProgressState.SUCCEEDED, 0)
    return tracker


def _by_name(dataset: Any, field: str) -> dict[str, Any]:
    return {Path(path).stem: value for path, value in zip(*dataset.values(["filepath", field]), strict=True)}


def _onnx_model(**preprocess: Any) -> dict[str, Any]:
    model: dict[str, Any] = yaml.safe_load(ONNX_EXAMPLE.read_text())["spec"]["model"]
    if preprocess:
        model["preprocess"] = preprocess
    return model


def test_onnx_export_with_imagenet_normalisation_gives_the_uint8_models_top1(mongo, triton, photos):
    dataset = make_dataset(list(photos.values()))
    example = _onnx_model()
    assert example["preprocess"]["mean"] == [0.485, 0.456, 0.406]  # the example is the torchvision case
    _run(dataset.name, triton.grpc_url, "classification", UINT8_MODEL, "uint8")
    tracker = _run(dataset.name, triton.grpc_url, "classification", example, "onnx")
    assert tracker.processed == len(photos)
    uint8, onnx = _by_name(dataset, "uint8_in_review"), _by_name(dataset, "onnx_in_review")
    assert uint8["coffee"].label == "espresso"  # the reference itself sees the photos right
    assert uint8["chelsea"].label in {"Egyptian cat", "tabby", "tiger cat"}
    for name in photos:
        assert onnx[name].label == uint8[name].label, name
        # Same weights, same pixels: only the float rounding of the normalisation and the kernels differ.
        assert onnx[name].confidence == pytest.approx(uint8[name].confidence, abs=1e-4), name


def test_onnx_model_without_the_mean_std_sees_other_input(mongo, triton, photos):
    """The comparison above can fail: the same run with 0-1 pixels and no mean/std scores otherwise."""
    dataset = make_dataset(list(photos.values()))
    _run(dataset.name, triton.grpc_url, "classification", UINT8_MODEL, "uint8")
    _run(dataset.name, triton.grpc_url, "classification", _onnx_model(layout="NCHW"), "unnormalised")
    uint8, wrong = _by_name(dataset, "uint8_in_review"), _by_name(dataset, "unnormalised_in_review")
    differences = [abs(wrong[name].confidence - uint8[name].confidence) for name in photos]
    assert max(differences) > 0.05


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two x, y, width, height boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    overlap = max(0.0, width) * max(0.0, height)
    return overlap / (a[2] * a[3] + b[2] * b[3] - overlap)


def _full_resolution_face(pixels: np.ndarray[Any, Any]) -> tuple[float, float, float, float]:
    """MTCNN in this process on the whole image: the face as relative x, y, width, height."""
    from facenet_pytorch import MTCNN

    boxes, _ = MTCNN(keep_all=True).detect(pixels)
    assert boxes is not None and len(boxes) == 1
    x1, y1, x2, y2 = (float(value) for value in boxes[0])
    height, width = pixels.shape[:2]
    return x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height


# Stretching squeezes the face 1.45:1 for the model, so its box is not quite the full-size one (IoU 0.78
# seen); letterboxed it is (0.93 seen). The padding left in would give 0.64; pixels read as relative, no box.
@pytest.mark.parametrize(("resize", "min_iou"), [("stretch", 0.7), ("letterbox", 0.85)])
def test_pixel_boxes_of_a_real_detector_land_on_the_face(mongo, triton, photos, tmp_path, resize, min_iou):
    # The astronaut cut to 512 x 352: not square, so stretch and letterbox map pixels back differently.
    pixels = np.ascontiguousarray(skimage_rgb("astronaut")[:352])
    path = tmp_path / "astronaut-wide.png"
    Image.fromarray(pixels).save(path)
    dataset = make_dataset([path, photos["coffee"]])
    model = {**MTCNN, "preprocess": {"resize": resize}}
    tracker = _run(dataset.name, triton.grpc_url, "detection", model, "faces")
    assert tracker.processed == 2
    found = _by_name(dataset, "faces_in_review")
    (face,) = found["astronaut-wide"].detections
    assert face.label == "face" and face.confidence > 0.9
    assert _iou(tuple(face.bounding_box), _full_resolution_face(pixels)) > min_iou
    assert found["coffee"].detections == []  # processed, no face
