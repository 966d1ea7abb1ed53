"""FiftyOne label documents built as plain BSON dicts, field for field what FiftyOne itself stores.

Building a ``fo.Classification`` and serializing it through mongoengine costs
~0.4 ms per label, several times the database's own time for the write. These
builders produce the same document directly (same keys, same order, same
types; arrays through FiftyOne's own field serializers), so the writer runs at
the database's speed. ``tests/unit/test_label_documents.py`` compares them with
FiftyOne's ``to_mongo`` over every prediction shape, and
``tests/integration/test_writer_documents.py`` reads them back through FiftyOne
next to labels FiftyOne wrote itself.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.worker import RUN_ATTRIBUTE, Task
from inference.adapters import (
    ClassificationPrediction,
    DetectionPrediction,
    Prediction,
    SegmentationPrediction,
)


@cache
def _array_field(label_class: str, name: str) -> Any:
    """FiftyOne's own field object for an array attribute (its serializer: npy, zlib, Binary)."""
    import fiftyone.core.labels as fol

    return getattr(fol, label_class)._fields[name]


@cache
def _vector_field() -> Any:
    import fiftyone.core.fields as fof

    return fof.VectorField()


def vector_document(vector: npt.NDArray[Any]) -> Any:
    """An embedding as FiftyOne's VectorField stores it."""
    return _vector_field().to_mongo(vector)


class LabelDocuments:
    """One run's label documents: every label carries ``autolabel_run = run_uid``."""

    def __init__(self, task: Task, run_uid: str) -> None:
        from bson import ObjectId

        self.task = task
        self.run_uid = run_uid
        self._object_id = ObjectId

    def classification(self, prediction: ClassificationPrediction) -> dict[str, Any]:
        document: dict[str, Any] = {
            "_id": self._object_id(),
            "_cls": "Classification",
            "tags": [],
            "label": str(prediction.label),
        }
        if prediction.confidence is not None:  # labels reviewed from a source field may have none
            document["confidence"] = float(prediction.confidence)
        if prediction.logits:
            document["logits"] = _array_field("Classification", "logits").to_mongo(
                np.asarray(prediction.logits)
            )
        document[RUN_ATTRIBUTE] = self.run_uid
        return document

    def detections(self, prediction: DetectionPrediction | None) -> dict[str, Any]:
        boxes = prediction.boxes if prediction is not None else ()
        return {
            "_cls": "Detections",
            "detections": [self._detection(box) for box in boxes],
            RUN_ATTRIBUTE: self.run_uid,
        }

    def _detection(self, box: Any) -> dict[str, Any]:
        document: dict[str, Any] = {
            "_id": self._object_id(),
            "_cls": "Detection",
            "attributes": {},
            "tags": [],
            "label": str(box.label),
            "bounding_box": [float(value) for value in box.bounding_box],
        }
        if box.mask is not None:  # instance segmentation: the object's mask within its box
            document["mask"] = _array_field("Detection", "mask").to_mongo(box.mask)
        if box.confidence is not None:
            document["confidence"] = float(box.confidence)
        document[RUN_ATTRIBUTE] = self.run_uid
        return document

    def segmentation(self, prediction: SegmentationPrediction, mask_path: str | None) -> dict[str, Any]:
        document: dict[str, Any] = {"_id": self._object_id(), "_cls": "Segmentation", "tags": []}
        if mask_path is not None:
            document["mask_path"] = mask_path
        else:
            document["mask"] = _array_field("Segmentation", "mask").to_mongo(prediction.mask)
        document["confidence"] = None if prediction.confidence is None else float(prediction.confidence)
        document[RUN_ATTRIBUTE] = self.run_uid
        return document

    def document(self, prediction: Prediction, mask_path: str | None = None) -> dict[str, Any] | None:
        """The stored value of the staging field for one prediction (None: nothing passed the filters)."""
        if isinstance(prediction, ClassificationPrediction):
            return self.classification(prediction)
        if isinstance(prediction, DetectionPrediction):
            return self.detections(prediction)
        if isinstance(prediction, SegmentationPrediction):
            return self.segmentation(prediction, mask_path)
        if self.task == Task.DETECTION:
            return self.detections(None)
        return None
