"""The writer's label documents are, key for key and type for type, what FiftyOne's own serializer stores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from bson import ObjectId

from contract.worker import Task, WorkerConfig
from inference.adapters import (
    BoxPrediction,
    ClassificationPrediction,
    DetectionPrediction,
    Prediction,
    SegmentationPrediction,
)
from inference.documents import LabelDocuments, vector_document
from runtime.claims import RunField, schema_field
from tests.fiftyone_labels import fiftyone_label

UID = "uid-documents"


def _config(task: Task) -> WorkerConfig:
    output = {Task.CLASSIFICATION: "logits", Task.DETECTION: "yolo", Task.SEGMENTATION: "class_ids"}[task]
    return WorkerConfig.model_validate(
        {
            "run": {"namespace": "ns", "name": "run", "uid": UID},
            "dataset": "d",
            "labelField": "auto",
            "task": task.value,
            "model": {"url": "127.0.0.1:1", "name": "m", "outputFormat": output},
        }
    )


def _shape(value: Any) -> Any:
    """A stored value with every ObjectId replaced by a marker, SON as dict, key order kept as a list."""
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if isinstance(value, ObjectId):
        return "<ObjectId>"
    return (type(value).__name__, value)


BOXES = (
    BoxPrediction("face", 0.91, (0.1, 0.2, 0.3, 0.4)),
    BoxPrediction("cat", float(np.float32(0.5)), (0.0, 0.0, 1.0, 1.0)),
)
CASES: list[tuple[Task, Prediction, str | None]] = [
    (Task.CLASSIFICATION, ClassificationPrediction("tabby cat", 0.875), None),
    (Task.CLASSIFICATION, ClassificationPrediction("7", 1.0, logits=[0.5, -1.25, 3.0]), None),
    (Task.CLASSIFICATION, None, None),
    (Task.DETECTION, DetectionPrediction(BOXES), None),
    (Task.DETECTION, DetectionPrediction(()), None),
    (Task.DETECTION, None, None),
    (
        Task.SEGMENTATION,
        SegmentationPrediction(np.arange(12, dtype=np.uint8).reshape(3, 4), 0.6, ("a",)),
        None,
    ),
    (Task.SEGMENTATION, SegmentationPrediction(np.zeros((2, 2), np.uint8), 0.5, ("a",)), "/masks/x.png"),
]


@pytest.mark.parametrize(("task", "prediction", "mask_path"), CASES)
def test_documents_match_fiftyones_own(task: Task, prediction: Prediction, mask_path: str | None) -> None:
    config = _config(task)
    ours = LabelDocuments(task, UID).document(prediction, mask_path)
    label = fiftyone_label(prediction, task.value, UID, mask_path)
    if label is None:
        assert ours is None
        return
    theirs = schema_field(RunField(config.staging, "staging"), config).to_mongo(label)
    assert ours is not None
    assert _shape(ours) == _shape(dict(theirs))


def test_label_ids_are_fresh_per_label() -> None:
    documents = LabelDocuments(Task.DETECTION, UID)
    first = documents.document(DetectionPrediction(BOXES))
    second = documents.document(DetectionPrediction(BOXES))
    assert first is not None and second is not None
    ids = [box["_id"] for box in first["detections"] + second["detections"]]
    assert len(set(ids)) == len(ids) == 4


def test_vectors_match_fiftyones_vector_field() -> None:
    import fiftyone.core.fields as fof

    vector = np.linspace(-1, 1, 1280, dtype=np.float32)
    assert vector_document(vector) == fof.VectorField().to_mongo(vector)
