"""Review existing labels (spec.source.field) on a real FiftyOne database: copy, review, finalize.

The source field is never modified. Each run is written as a manifest and turned into the
worker's configuration by the controller's builder; no Triton is involved (a source run has
no model).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from contract.progress import ProgressState
from contract.review import ReviewConfig, Rule
from contract.worker import WorkerConfig
from controller.api import parse_spec
from controller.worker_contract import worker_config
from inference.shard import run_shard
from runtime.errors import PreflightError
from runtime.reporters import NullReporter
from steps.finalize import finalize
from tests.integration.worker_helpers import run_command

pytestmark = pytest.mark.integration


def _dataset() -> Any:
    import fiftyone as fo

    dataset = fo.Dataset(f"source-{uuid.uuid4().hex[:8]}")
    dataset.add_samples([fo.Sample(filepath=f"/data/img-{i}.jpg") for i in range(3)])
    prior = {
        0: [
            ("cat", 0.9, [0.1, 0.1, 0.3, 0.3]),
            ("dog", 0.4, [0.5, 0.5, 0.2, 0.2]),
            ("cup", 0.1, [0, 0, 0.1, 0.1]),
        ],
        1: [("dog", 0.85, [0.2, 0.2, 0.4, 0.4])],
        2: [],
    }
    for index, sample in enumerate(dataset.iter_samples(autosave=True)):
        sample["prior"] = fo.Detections(
            detections=[
                fo.Detection(label=label, confidence=confidence, bounding_box=box, notes="from a notebook")
                for label, confidence, box in prior[index]
            ]
        )
    return dataset


def _config(dataset: Any, **spec: Any) -> WorkerConfig:
    manifest = {
        "task": "detection",
        "dataset": {"name": dataset.name, "databaseSecretRef": {"name": "db"}, "target": {"all": True}},
        "source": {"field": "prior"},
        "labelField": "checked",
        **spec,
    }
    metadata = {"namespace": "default", "name": "source-run", "uid": f"uid-{uuid.uuid4().hex[:8]}"}
    return WorkerConfig.from_json(worker_config(metadata, parse_spec(manifest)).to_json())


def _snapshot(dataset: Any, field: str) -> list[Any]:
    dataset.reload()
    return [None if value is None else value.to_dict() for value in dataset.values(field)]


def test_source_labels_are_copied_reviewed_and_finalized_while_the_source_stays(mongo):
    dataset = _dataset()
    before = _snapshot(dataset, "prior")
    config = _config(dataset, confidenceThreshold=0.3)
    assert config.model is None and config.source is not None and config.source.confidence_threshold == 0.3
    tracker = asyncio.run(run_shard(config, 0, NullReporter()))
    assert (tracker.state, tracker.processed, tracker.failed) == (ProgressState.SUCCEEDED, 3, 0)
    dataset.reload()
    staged = dataset.values("checked_in_review")
    source_ids = {d["_id"] for value in before for d in value["detections"]}
    copies = [d for value in staged for d in value.detections]
    assert sorted((d.label, d.confidence) for d in copies) == [("cat", 0.9), ("dog", 0.4), ("dog", 0.85)]
    assert all(d["autolabel_run"] == config.run.uid for d in copies)  # the run's own labels
    assert not source_ids & {d.id for d in copies}  # new labels, not the source's
    assert set(dataset.values("checked_in_review_run")) == {config.run.uid}
    assert _snapshot(dataset, "prior") == before

    # A rerun (a retried pod) finds every sample done and writes nothing new.
    again = asyncio.run(run_shard(config, 0, NullReporter()))
    assert again.processed == 3 and dataset.values("checked_in_review") == staged

    counts = finalize(config, ReviewConfig(approve=[Rule(min_confidence=0.8)]))
    assert counts["promoted"] == 2
    dataset.reload()
    finalized = [value for value in dataset.values("checked") if value is not None]
    kept = sorted((d.label, d.confidence) for value in finalized for d in value.detections)
    assert kept == [("cat", 0.9), ("dog", 0.85)]
    assert not dataset.has_sample_field("checked_in_review")
    assert _snapshot(dataset, "prior") == before


def test_source_field_of_another_label_type_is_refused(mongo):
    dataset = _dataset()
    config = _config(dataset, task="classification")
    with pytest.raises(PreflightError, match=r"source\.field 'prior' holds Detections.*Classification"):
        asyncio.run(run_shard(config, 0, NullReporter()))
    assert not dataset.has_sample_field("checked_in_review")


def test_probe_checks_the_source_field_and_no_triton(mongo):
    dataset = _dataset()
    good = json.loads(_config(dataset).to_json())
    verdict = run_command(good, "probe")
    assert verdict["ok"] is True and "source field 'prior'" in verdict["message"], verdict
    missing = json.loads(_config(dataset, source={"field": "nowhere"}).to_json())
    verdict = run_command(missing, "probe")
    assert (verdict["ok"], verdict["reason"]) == (False, "InvalidSpec")
    assert "no field 'nowhere'" in verdict["message"]
