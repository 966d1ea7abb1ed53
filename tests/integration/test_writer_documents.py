"""The writer's documents on the real mongod, read back through FiftyOne next to labels FiftyOne wrote itself.

For every task the worker's `PredictionWriter` writes a batch into the staging
field while FiftyOne's own ``set_values`` writes the same predictions, built as
FiftyOne labels, into a second field; both are read back through FiftyOne (as
labels, through aggregations and through a label filter) and must be equal but
for the label ids. The writer never touches the dataset document: the schema
declared once for the run (by the claims) is the same before and after.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract.worker import WorkerConfig
from inference.adapters import (
    BoxPrediction,
    ClassificationPrediction,
    DetectionPrediction,
    Prediction,
    SegmentationPrediction,
)
from inference.writer import PredictionWriter, SampleResult
from runtime.claims import claim_and_declare
from tests.fiftyone_labels import fiftyone_label
from tests.integration.worker_helpers import fresh_schema, make_dataset

pytestmark = pytest.mark.integration
OUTPUT = {"classification": "logits", "detection": "yolo", "segmentation": "class_ids"}


def _box(values: Any) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in values)
    return (x, y, w, h)


def _predictions(task: str, count: int) -> list[Prediction]:
    rng = np.random.default_rng(11)
    out: list[Prediction] = []
    for index in range(count):
        if task == "classification":
            logits = [float(x) for x in rng.normal(size=5)] if index % 2 else None
            out.append(
                None
                if index == 3
                else ClassificationPrediction(f"class {index % 4}", 0.5 + index / 100, logits)
            )
        elif task == "detection":
            boxes = tuple(
                BoxPrediction(f"obj{k}", float(rng.uniform()), _box(rng.uniform(0, 0.5, 4)))
                for k in range(index % 3)
            )
            out.append(None if index == 4 else DetectionPrediction(boxes))
        else:
            mask = rng.integers(0, 3, size=(8, 6), dtype=np.uint8)
            out.append(SegmentationPrediction(mask, float(rng.uniform()), ("a", "b", "c")))
    return out


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_ids(item) for key, item in value.items() if key != "_id"}
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    return value


def _as_dict(label: Any) -> Any:
    return None if label is None else _without_ids(label.to_dict(extended=False))


@pytest.mark.parametrize(
    ("task", "mask_dir"),
    [("classification", False), ("detection", False), ("segmentation", False), ("segmentation", True)],
)
def test_written_labels_read_back_as_fiftyones_own(
    mongo: Any, tmp_path: Path, task: str, mask_dir: bool
) -> None:
    import fiftyone as fo

    dataset = make_dataset([tmp_path / f"img-{i}.jpg" for i in range(9)], name=f"docs-{uuid.uuid4().hex[:8]}")
    model: dict[str, Any] = {"url": "127.0.0.1:1", "name": "m", "outputFormat": OUTPUT[task]}
    if task == "classification":
        model["embeddings"] = {"tensor": "E", "field": "emb"}
    config = WorkerConfig.model_validate(
        {
            "run": {"namespace": "ns", "name": "docs", "uid": f"uid-{uuid.uuid4().hex[:8]}"},
            "dataset": dataset.name,
            "labelField": "auto",
            "task": task,
            "model": model,
            **({"maskDir": str(tmp_path / "masks")} if mask_dir else {}),
        }
    )
    claim_and_declare(dataset, config)
    declared = fresh_schema(dataset.name)
    ids: list[str] = dataset.values("id")
    before = dict(zip(ids, dataset.values("last_modified_at"), strict=True))
    predictions = _predictions(task, len(ids))
    vectors = [np.arange(4, dtype=np.float32) * i for i in range(len(ids))]
    writer = PredictionWriter(dataset, config, "emb" if task == "classification" else None)
    writer.write([SampleResult(i, p, v) for i, p, v in zip(ids, predictions, vectors, strict=True)])
    assert fresh_schema(dataset.name) == declared, "writing values changed the dataset's schema"

    mask_paths = [str(tmp_path / "masks" / config.run.uid / f"{i}.png") if mask_dir else None for i in ids]
    theirs = [
        fiftyone_label(p, task, config.run.uid, m) for p, m in zip(predictions, mask_paths, strict=True)
    ]
    dataset.set_values("fiftyone_own", theirs, dynamic=False)
    dataset.reload()
    ours_read = dataset.values(config.staging)
    theirs_read = dataset.values("fiftyone_own")
    assert [_as_dict(label) for label in ours_read] == [_as_dict(label) for label in theirs_read]
    assert all(isinstance(label, fo.Label) or label is None for label in ours_read)
    assert dataset.values(config.marker_field) == [config.run.uid] * len(ids)
    assert all(after > before[i] for i, after in zip(ids, dataset.values("last_modified_at"), strict=True))

    if task == "classification":
        stored = dataset.values("emb")
        assert all(np.array_equal(a, b) for a, b in zip(stored, vectors, strict=True))
        assert dataset.count_values(f"{config.staging}.label") == dataset.count_values("fiftyone_own.label")
    if task == "detection":
        from fiftyone import ViewField as F

        field = f"{config.staging}.detections"
        assert dataset.count(field) == dataset.count("fiftyone_own.detections") > 0
        assert dataset.bounds(f"{field}.confidence") == dataset.bounds("fiftyone_own.detections.confidence")
        kept = dataset.filter_labels(config.staging, F("confidence") > 0.5, only_matches=False)
        mine = kept.values(f"{field}.label")
        own = dataset.filter_labels("fiftyone_own", F("confidence") > 0.5, only_matches=False).values(
            "fiftyone_own.detections.label"
        )
        assert mine == own
        assert all(box.id for label in ours_read for box in label.detections)
    if task == "segmentation" and mask_dir:
        assert all(Path(label.mask_path).is_file() for label in ours_read)
        assert np.array_equal(ours_read[0].get_mask(), predictions[0].mask)  # type: ignore[union-attr]
