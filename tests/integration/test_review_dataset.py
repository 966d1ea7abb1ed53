"""The review subcommands on a real FiftyOne database: tags from the App and from rules, undo, statistics,
review aids, and finalize killed at each step then rerun, compared field by field with an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from typing import Any

import numpy as np
import pytest

from contract.review import APPROVED_TAG, REJECTED_TAG
from contract.worker import WorkerConfig
from runtime.claims import CLAIMS_COLLECTION, claim_and_declare
from tests.integration.worker_helpers import REPO_ROOT

pytestmark = pytest.mark.integration
STAGING, MARKER, UID = "pred_in_review", "pred_in_review_run", "uid-review-1"
VOLATILE = {"created_at", "last_modified_at", "_dataset_id", "updatedAt"}  # updatedAt: the run record's


def make_run_dataset(samples: int = 6) -> Any:
    """A dataset as a finished detection run leaves it: staging labels, markers, embeddings, ground truth."""
    import fiftyone as fo

    dataset = fo.Dataset(f"review-{uuid.uuid4().hex[:8]}")
    dataset.add_samples([fo.Sample(filepath=f"/data/img-{i:02d}.jpg") for i in range(samples)])
    claim_and_declare(dataset, WorkerConfig.model_validate(config(dataset)))  # what the probe does
    ids = dataset.values("id")
    rng = np.random.default_rng(0)
    staged, truth, other = {}, {}, {}
    for i, sample_id in enumerate(ids):
        boxes = [("cat", 0.95 - 0.1 * i, [0.1, 0.1, 0.3, 0.3]), ("dog", 0.12 + 0.1 * i, [0.5, 0.5, 0.2, 0.2])]
        staged[sample_id] = fo.Detections(
            detections=[
                fo.Detection(label=label, confidence=conf, bounding_box=box, autolabel_run=UID)
                for label, conf, box in boxes
            ],
            autolabel_run=UID,
        )
        truth[sample_id] = fo.Detections(
            detections=[fo.Detection(label="cat", bounding_box=[0.1, 0.1, 0.3, 0.3])]
        )
        other[sample_id] = fo.Classification(label="indoor", tags=["keep-me"])
    dataset.set_values(STAGING, staged, key_field="id")
    dataset.set_values(MARKER, {sample_id: UID for sample_id in ids}, key_field="id")
    dataset.set_values("gt", truth, key_field="id")
    dataset.set_values("scene", other, key_field="id")
    dataset.set_values("pred_embeddings", {s: rng.random(16) for s in ids}, key_field="id")
    return dataset


def config(dataset: Any) -> dict[str, Any]:
    return {
        "run": {"namespace": "runs", "name": "review-run", "uid": UID},
        "dataset": dataset.name,
        "labelField": "pred",
        "task": "detection",
        "model": {"url": "127.0.0.1:1", "name": "m", "outputFormat": "boxes_scores_labels"},
    }


def environment(dataset: Any, review: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "AUTOLABEL_WORKER_CONFIG": json.dumps(config(dataset)),
        "AUTOLABEL_REVIEW_CONFIG": json.dumps(review or {}),
        **extra,
    }


def inference(dataset: Any, *argv: str, review: dict[str, Any] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "worker", *argv],
        env=environment(dataset, review),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    verdict: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    dataset.reload()
    return verdict


def tags_by_label(dataset: Any) -> dict[tuple[str, str], list[str]]:
    filepaths, labels = dataset.values(["filepath", f"{STAGING}.detections"])
    return {(path, d.label): list(d.tags) for path, dets in zip(filepaths, labels, strict=True) for d in dets}


def test_app_tags_rules_undo_and_statistics(mongo: Any) -> None:
    dataset = make_run_dataset()
    from fiftyone import ViewField as F

    # App channel: a reviewer tags two dog labels approved and flags one as a false positive.
    dogs = dataset.filter_labels(STAGING, F("label") == "dog")
    dogs.skip(3).limit(2).tag_labels(APPROVED_TAG, label_fields=STAGING)
    dogs.skip(5).tag_labels("false_positive", label_fields=STAGING)
    # GitOps/CLI channel: rules approve confident cats and reject low-confidence labels.
    review = {"approve": [{"classes": ["cat"], "minConfidence": 0.7}], "reject": [{"maxConfidence": 0.25}]}
    first = inference(dataset, "apply-rules", review=review)
    assert first == {"changed": 5, "approved": 3, "rejected": 2}
    assert inference(dataset, "apply-rules", review=review)["changed"] == 0  # idempotent
    stats = inference(dataset, "review-stats", review={**review, "groundTruthField": "gt"})
    assert (stats["total"], stats["approved"], stats["rejected"], stats["unreviewed"]) == (12, 5, 2, 5)
    by_class = {c["name"]: c for c in stats["classes"]}
    assert (by_class["cat"]["approved"], by_class["dog"]["approved"], by_class["dog"]["rejected"]) == (
        3,
        2,
        2,
    )
    assert by_class["cat"]["meanConfidence"] == pytest.approx(0.7)
    assert stats["problemTags"]["false_positive"] == 1
    quality = stats["quality"]
    assert quality["overall"]["precision"] == pytest.approx(0.5) and quality["overall"]["recall"] == 1.0
    assert quality["approved"]["precision"] == pytest.approx(0.6)
    assert quality["approved"]["recall"] == pytest.approx(0.5)
    assert 0 < quality["overall"]["mAP"] <= 1
    # Undo of class cat (the rule is gone from the spec): only the tags rules set go, the App's stay.
    after_undo = inference(dataset, "apply-rules", review={"reject": [{"maxConfidence": 0.25}]})
    assert after_undo["changed"] == 3
    tags = tags_by_label(dataset)
    assert all(APPROVED_TAG not in t for (_, label), t in tags.items() if label == "cat")
    assert sum(APPROVED_TAG in t for (_, label), t in tags.items() if label == "dog") == 2
    assert sum(REJECTED_TAG in t for t in tags.values()) == 2
    assert sum("false_positive" in t for t in tags.values()) == 1


def test_a_persons_tag_that_a_rule_agrees_with_is_never_taken_back(mongo: Any) -> None:
    dataset = make_run_dataset()
    from fiftyone import ViewField as F

    # A person approves the most confident cat; then a rule approves every cat of 0.7 or more.
    dataset.filter_labels(STAGING, F("label") == "cat").limit(1).tag_labels(
        APPROVED_TAG, label_fields=STAGING
    )
    review = {"approve": [{"classes": ["cat"], "minConfidence": 0.7}]}
    assert inference(dataset, "apply-rules", review=review) == {"changed": 2, "approved": 3, "rejected": 0}
    assert inference(dataset, "apply-rules", review=review)["changed"] == 0  # idempotent
    # The rule is removed: it takes back the two tags it set, never the person's.
    assert inference(dataset, "apply-rules", review={})["changed"] == 2
    tags = tags_by_label(dataset)
    approved = sorted(path for (path, label), t in tags.items() if label == "cat" and APPROVED_TAG in t)
    assert approved == ["/data/img-00.jpg"]


def test_review_aids_are_created_once_and_removed_by_finalize(mongo: Any) -> None:
    dataset = make_run_dataset()
    result = inference(dataset, "review", "--visualize")
    assert result["aids"]["brainKey"] == "autolabel_review_run_uidrevie" and result["aids"]["error"] is None
    assert result["aids"]["savedViews"] == [
        "autolabel-review-run-uidrevie-predictions",
        "autolabel-review-run-uidrevie-low-confidence",
        "autolabel-review-run-uidrevie-problems",
    ]
    assert dataset.load_saved_view("autolabel-review-run-uidrevie-predictions").count() == 12  # label patches
    assert dataset.load_saved_view("autolabel-review-run-uidrevie-low-confidence").count() == 5
    assert inference(dataset, "visualize")["brainKey"] == "autolabel_review_run_uidrevie"
    inference(dataset, "finalize")
    assert dataset.list_saved_views() == [] and dataset.list_brain_runs() == []


def snapshot(dataset: Any) -> dict[str, Any]:
    """Everything a user could see, except ids and timestamps that differ between two datasets anyway."""
    dataset.reload()

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    samples = sorted((clean(s.to_dict()) for s in dataset), key=lambda s: s["filepath"])
    return {
        "schema": sorted(dataset.get_field_schema()),
        "samples": samples,
        "info": clean(dataset.info),
        "views": dataset.list_saved_views(),
        "brain": dataset.list_brain_runs(),
    }


def prepared_pair() -> tuple[Any, Any]:
    """Two identical datasets (a clone keeps label ids) with the same review decisions."""
    original = make_run_dataset()
    inference(original, "review", "--apply-rules", "--visualize", review=REVIEW)
    from fiftyone import ViewField as F

    original.filter_labels(STAGING, F("label") == "cat").limit(1).tag_labels(
        "ambiguous", label_fields=STAGING
    )
    copy = original.clone(f"{original.name}-copy")
    import fiftyone.core.odm as foo

    claims = foo.get_db_conn()[CLAIMS_COLLECTION]
    for claim in claims.find({"dataset": str(original._doc.id)}, {"_id": 0}):
        claims.insert_one({**claim, "dataset": str(copy._doc.id)})  # the clone's fields are the run's too
    return original, copy


REVIEW = {"approve": [{"classes": ["cat"], "minConfidence": 0.7}], "reject": [{"classes": ["dog"]}]}
KILL_POINTS = ["promoted batch 1", "recorded promotion", "removed review aids", "unset staging values"]


@pytest.mark.parametrize("kill_after", KILL_POINTS)
def test_finalize_killed_and_rerun_equals_uninterrupted(mongo: Any, kill_after: str) -> None:
    uninterrupted, interrupted = prepared_pair()
    assert inference(uninterrupted, "finalize", "--batch-size", "2") == {"promoted": 3, "discarded": 9}
    expected = snapshot(uninterrupted)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.paused_finalize", "2", "--batch-size", "2"],
        env=environment(interrupted),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if kill_after in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen[-20:])
    assert inference(interrupted, "finalize", "--batch-size", "2") == {"promoted": 3, "discarded": 9}
    assert snapshot(interrupted) == expected
    assert inference(interrupted, "finalize") == {"promoted": 3, "discarded": 9}  # and once more: no change
    assert snapshot(interrupted) == expected
    # What finalize kept: approved labels only, with their tags; other fields untouched; staging gone.
    dataset = uninterrupted
    assert not dataset.has_sample_field(STAGING) and not dataset.has_sample_field(MARKER)
    kept = [d for dets in dataset.values("pred.detections") if dets for d in dets]
    assert {d.label for d in kept} == {"cat"} and all(APPROVED_TAG in d.tags for d in kept)
    assert dataset.count_label_tags("pred") == {APPROVED_TAG: 3, "ambiguous": 1}  # problem tags survive
    assert dataset.count_values("scene.label") == {"indoor": 6}
    assert dataset.count_label_tags("scene") == {"keep-me": 6}
    assert dataset.has_sample_field("pred_embeddings") and dataset.count("gt.detections") == 6
