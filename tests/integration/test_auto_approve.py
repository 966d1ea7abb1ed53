"""Calibrated auto-approval (review/auto_approve.py) on a real FiftyOne database.

A run's labels whose correctness falls with confidence (known ground truth); a person
reviews the verification sample; the pass approves what the sample certifies, never a
sampled or decided label, never counts a rule's decision, keeps hand-set tags, and
takes back approvals a later, worse estimate no longer covers.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from contract.review import APPROVED_TAG, DECISION_ATTRIBUTE, REJECTED_TAG, AutoApproveConfig
from contract.worker import WorkerConfig
from review.auto_approve import AUTO_APPROVED_ATTRIBUTE, VERIFICATION_ATTRIBUTE, auto_approve

pytestmark = pytest.mark.integration
UID = "uid-calibration-0001"
SETTINGS = AutoApproveConfig(
    target_precision=0.9, confidence_level=0.95, min_reviewed_per_class=30, sample_per_class=100
)


def _truth(confidence: float, rng: random.Random) -> bool:
    """Right almost always above 0.5 confidence, a coin flip with a bias below it."""
    return rng.random() < (0.995 if confidence >= 0.5 else 0.6)


def make_dataset(task: str, samples: int = 600) -> tuple[Any, WorkerConfig, dict[str, bool]]:
    """A dataset as a finished run leaves it, plus which label is truly right (by label id)."""
    import fiftyone as fo

    rng = random.Random(3)
    dataset = fo.Dataset(f"calibration-{task}-{uuid.uuid4().hex[:8]}")
    dataset.add_samples([fo.Sample(filepath=f"/data/{i:04d}.jpg") for i in range(samples)])
    ids = dataset.values("id")
    staged, truth = {}, {}
    for i, sample_id in enumerate(ids):
        classes = ("cat", "dog") if task == "detection" else (("cat", "dog")[i % 2],)
        labels = []
        for name in classes:
            confidence = rng.random()
            label: Any = (
                fo.Detection(label=name, confidence=confidence, bounding_box=[0.1, 0.1, 0.2, 0.2])
                if task == "detection"
                else fo.Classification(label=name, confidence=confidence)
            )
            label.autolabel_run = UID
            truth[label.id] = _truth(confidence, rng)
            labels.append(label)
        staged[sample_id] = fo.Detections(detections=labels) if task == "detection" else labels[0]
    dataset.set_values("pred_in_review", staged, key_field="id")
    dataset.set_values("pred_in_review_run", {sample_id: UID for sample_id in ids}, key_field="id")
    config = WorkerConfig.model_validate(
        {
            "run": {"namespace": "team-a", "name": "digits", "uid": UID},
            "dataset": dataset.name,
            "labelField": "pred",
            "task": task,
            "model": {
                "url": "127.0.0.1:1",
                "name": "m",
                "outputFormat": "boxes_scores_labels" if task == "detection" else "probabilities",
            },
        }
    )
    return dataset, config, truth


def labels(dataset: Any) -> list[dict[str, Any]]:
    """Every staged label as stored (reads the database afresh)."""
    dataset.reload()
    rows = []
    for sample in dataset.select_fields("pred_in_review"):
        value = sample["pred_in_review"]
        for label in value.detections if hasattr(value, "detections") else [value]:
            rows.append(label)
    return [
        {
            "id": label.id,
            "label": label.label,
            "confidence": label.confidence,
            "tags": list(label.tags),
            "rank": label[VERIFICATION_ATTRIBUTE] if label.has_field(VERIFICATION_ATTRIBUTE) else None,
            "auto": label[AUTO_APPROVED_ATTRIBUTE] if label.has_field(AUTO_APPROVED_ATTRIBUTE) else None,
        }
        for label in rows
    ]


def tag(dataset: Any, label_ids: list[str], tag_name: str) -> None:
    """What a person does in the App: tag selected labels."""
    if label_ids:
        dataset.select_labels(ids=label_ids, fields="pred_in_review").tag_labels(tag_name, "pred_in_review")


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_sample_reviewed_then_certified_labels_approved(mongo, task):
    dataset, config, truth = make_dataset(task)
    first = auto_approve(dataset, config, SETTINGS)
    stored = labels(dataset)
    sampled = [row for row in stored if row["rank"] is not None]
    assert first["sampleSize"] == len(sampled) == 200
    assert sorted(row["rank"] for row in sampled) == list(range(200))
    assert {row["label"] for row in sampled} == {"cat", "dog"}
    assert first["autoApproved"] == 0 and first["reviewed"] == 0
    assert all(row["moreReviewsNeeded"] == 30 for row in first["classes"])
    assert dataset.has_saved_view(first["savedView"])
    assert len(dataset.load_saved_view(first["savedView"]).values("id")) > 0
    assert auto_approve(dataset, config, SETTINGS)["changed"] == 0  # drawn once: a re-run changes nothing

    # A person reviews the sample honestly; someone else flags a label outside it at the same time.
    tag(dataset, [r["id"] for r in sampled if truth[r["id"]]], APPROVED_TAG)
    tag(dataset, [r["id"] for r in sampled if not truth[r["id"]]], REJECTED_TAG)
    outside = next(r for r in stored if r["rank"] is None and r["confidence"] > 0.95)
    tag(dataset, [outside["id"]], "needs_correction")

    second = auto_approve(dataset, config, SETTINGS)
    assert second["reviewed"] == 200
    stored = labels(dataset)
    auto = [row for row in stored if row["auto"] is not None]
    assert second["autoApproved"] == len(auto) > 0
    for row in second["classes"]:
        assert row["threshold"] is not None and row["lowerBound"] >= SETTINGS.target_precision
    thresholds = {row["name"]: row["threshold"] for row in second["classes"]}
    for row in auto:
        assert row["rank"] is None and APPROVED_TAG in row["tags"]
        assert row["confidence"] >= thresholds[row["label"]]
    precision = sum(truth[row["id"]] for row in auto) / len(auto)
    assert precision >= SETTINGS.target_precision
    flagged = next(row for row in stored if row["id"] == outside["id"])
    assert "needs_correction" in flagged["tags"]
    sampled_now = {row["id"]: row["tags"] for row in stored if row["rank"] is not None}
    assert all(APPROVED_TAG not in tags or truth[label_id] for label_id, tags in sampled_now.items())

    # The reviewer finds the class worse than it looked: every sampled cat becomes a rejection.
    cats = [r["id"] for r in stored if r["rank"] is not None and r["label"] == "cat"]
    dataset.select_labels(ids=cats, fields="pred_in_review").untag_labels(APPROVED_TAG, "pred_in_review")
    tag(dataset, cats, REJECTED_TAG)
    third = auto_approve(dataset, config, SETTINGS)
    cat_row = next(row for row in third["classes"] if row["name"] == "cat")
    assert cat_row["threshold"] is None and cat_row["moreReviewsNeeded"] is None
    stored = labels(dataset)
    cats_auto = [
        r
        for r in stored
        if r["label"] == "cat"
        and (r["auto"] is not None or (r["rank"] is None and APPROVED_TAG in r["tags"]))
    ]
    assert cats_auto == []  # every earlier auto-approval of the class is taken back
    assert any(r["auto"] is not None for r in stored if r["label"] == "dog")
    flagged = next(row for row in stored if row["id"] == outside["id"])
    assert "needs_correction" in flagged["tags"]


def test_rule_decisions_in_the_sample_are_not_reviews(mongo):
    dataset, config, _ = make_dataset("classification", samples=200)
    auto_approve(dataset, config, SETTINGS)
    sampled = [row for row in labels(dataset) if row["rank"] is not None]
    view = dataset.select_labels(ids=[r["id"] for r in sampled], fields="pred_in_review")
    view.tag_labels(APPROVED_TAG, "pred_in_review")
    view.set_values(f"pred_in_review.{DECISION_ATTRIBUTE}", ["approved"] * len(view), dynamic=True)
    result = auto_approve(dataset, config, SETTINGS)
    assert result["reviewed"] == 0 and result["autoApproved"] == 0


def test_finalize_records_who_approved_each_kept_label(mongo):
    from contract.review import APPROVED_BY_ATTRIBUTE
    from steps.finalize import finalize

    dataset, config, truth = make_dataset("classification", samples=400)
    auto_approve(dataset, config, SETTINGS)
    stored = labels(dataset)
    sampled = [row for row in stored if row["rank"] is not None]
    tag(dataset, [r["id"] for r in sampled if truth[r["id"]]], APPROVED_TAG)
    tag(dataset, [r["id"] for r in sampled if not truth[r["id"]]], REJECTED_TAG)
    by_rule = next(r for r in stored if r["rank"] is None and r["confidence"] < 0.3)
    view = dataset.select_labels(ids=[by_rule["id"]], fields="pred_in_review")
    view.tag_labels(APPROVED_TAG, "pred_in_review")
    view.set_values(f"pred_in_review.{DECISION_ATTRIBUTE}", ["approved"], dynamic=True)
    result = auto_approve(dataset, config, SETTINGS)
    assert result["autoApproved"] > 0
    by_id = {row["id"]: row for row in labels(dataset)}

    counts = finalize(config, None, 100)
    dataset.reload()
    kept = {label.id: label[APPROVED_BY_ATTRIBUTE] for label in dataset.values("pred") if label is not None}
    assert counts["promoted"] == len(kept)
    assert kept[by_rule["id"]] == "rule"
    for label_id, by in kept.items():
        row = by_id[label_id]
        if row["rank"] is not None:
            assert by == "person" and truth[label_id]
        elif label_id != by_rule["id"]:
            assert by == "calibration" and row["auto"] is not None
    assert sum(1 for by in kept.values() if by == "calibration") == result["autoApproved"]
    assert {row["rank"] is not None for row in by_id.values() if row["id"] in kept} == {True, False}
