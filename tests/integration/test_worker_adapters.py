"""Each output adapter on real model outputs: real Triton, real FiftyOne database, real photos."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract.progress import ProgressState
from contract.worker import WorkerConfig
from inference.progress import ProgressTracker
from inference.shard import run_shard
from runtime.errors import PreflightError
from runtime.reporters import NullReporter
from tests.integration.worker_helpers import classifier_model, make_dataset, named_image, worker_config

pytestmark = pytest.mark.integration


def _run(config: dict[str, Any]) -> ProgressTracker:
    return asyncio.run(run_shard(WorkerConfig.model_validate(config), 0, NullReporter()))


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("photos")
    return {name: named_image(directory, name) for name in ("astronaut", "chelsea", "coffee")}


def _by_name(dataset: Any, field: str) -> dict[str, Any]:
    return {Path(path).stem: value for path, value in zip(*dataset.values(["filepath", field]), strict=True)}


def test_classification_labels_logits_and_embeddings(mongo, triton, photos):
    dataset = make_dataset(list(photos.values()))
    model = classifier_model(
        triton.grpc_url, storeLogits=True, embeddings={"tensor": "EMBEDDINGS", "field": "auto_embeddings"}
    )
    config = worker_config(dataset.name, model, "classification")
    tracker = _run(config)
    assert (tracker.state, tracker.processed, tracker.failed, tracker.total) == (
        ProgressState.SUCCEEDED,
        3,
        0,
        3,
    )
    labels = _by_name(dataset, "auto_in_review")
    assert labels["chelsea"].label in {"Egyptian cat", "tabby", "tiger cat"}
    assert labels["coffee"].label == "espresso" and labels["coffee"].confidence > 0.5
    for label in labels.values():
        assert label["autolabel_run"] == config["run"]["uid"]
        assert 0.0 < label.confidence <= 1.0 and len(label.logits) == 1000
    embeddings = dataset.values("auto_embeddings")
    assert all(np.asarray(vector).shape == (1280,) for vector in embeddings)
    assert set(dataset.values("auto_in_review_run")) == {config["run"]["uid"]}


def test_classification_over_http_with_class_subset(mongo, triton, photos):
    dataset = make_dataset([photos["chelsea"], photos["coffee"]])
    model = classifier_model(triton.http_url, protocol="http", keepClasses=["espresso"])
    tracker = _run(worker_config(dataset.name, model, "classification"))
    assert tracker.processed == 2
    labels = _by_name(dataset, "auto_in_review")
    assert labels["coffee"].label == "espresso"
    assert labels["chelsea"] is None  # its top class is not in the subset: processed, no label


def test_face_detection_boxes(mongo, triton, photos):
    dataset = make_dataset([photos["astronaut"], photos["coffee"]])
    model = {
        "url": triton.grpc_url,
        "name": "face_detector",
        "outputFormat": "boxes_scores_labels",
        "classes": ["face"],
        "confidenceThreshold": 0.5,
    }
    config = worker_config(dataset.name, model, "detection", labelField="faces")
    tracker = _run(config)
    assert tracker.processed == 2
    found = _by_name(dataset, "faces_in_review")
    (face,) = found["astronaut"].detections
    x, y, width, height = face.bounding_box
    assert face.label == "face" and face.confidence > 0.7 and face["autolabel_run"] == config["run"]["uid"]
    assert 0.25 < x < 0.45 and 0.05 < y < 0.25 and 0.1 < width < 0.3 and 0.1 < height < 0.3
    assert found["coffee"].detections == []  # processed, nothing found


@pytest.mark.parametrize("to_files", [False, True])
def test_selfie_segmentation_masks(mongo, triton, photos, tmp_path, to_files):
    dataset = make_dataset([photos["astronaut"]])
    model = {"url": triton.grpc_url, "name": "selfie_segmentation", "outputFormat": "probabilities"}
    extra: dict[str, Any] = {"maskDir": str(tmp_path / "masks")} if to_files else {}
    config = worker_config(dataset.name, model, "segmentation", labelField="person", **extra)
    _run(config)
    segmentation = dataset.first()["person_in_review"]
    assert segmentation["autolabel_run"] == config["run"]["uid"]
    mask = segmentation.get_mask()
    assert mask.shape == (256, 256) and set(np.unique(mask)) <= {0, 1}
    assert 0.2 < mask.mean() < 0.9  # the astronaut fills much of the frame
    if to_files:
        assert Path(segmentation.mask_path).is_file() and segmentation.mask is None


def test_preflight_names_the_mismatch(mongo, triton, photos):
    dataset = make_dataset([photos["coffee"]])
    model = {"url": triton.grpc_url, "name": "efficientnet_lite0", "outputFormat": "boxes_scores_labels"}
    with pytest.raises(PreflightError, match="no output 'BOXES'"):
        _run(worker_config(dataset.name, model, "detection"))
    assert not dataset.has_sample_field("auto_in_review")
