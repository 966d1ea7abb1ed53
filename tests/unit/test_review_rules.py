"""Rule semantics shared by controller and worker, and the review statistics (no database)."""

from __future__ import annotations

import itertools

import pytest

from contract.review import APPROVED_TAG, REJECTED_TAG, ReviewConfig, Rule
from controller.api import ReviewRule, ReviewSpec
from review.decisions import statistics
from review.labels import LabelRecord

RULES = [
    {},
    {"classes": ["cat"]},
    {"minConfidence": 0.5},
    {"maxConfidence": 0.5},
    {"maxConfidence": 1.0},
    {"classes": ["cat", "dog"], "minConfidence": 0.2, "maxConfidence": 0.8},
]
LABELS = ["cat", "dog", "mask"]
CONFIDENCES = [None, 0.0, 0.2, 0.5, 0.79, 0.8, 1.0]


@pytest.mark.parametrize("rule", RULES, ids=[str(r) for r in RULES])
def test_worker_rules_match_exactly_like_the_api_rules(rule: dict[str, object]) -> None:
    api, worker = ReviewRule.model_validate(rule), Rule.model_validate(rule)
    for label, confidence in itertools.product(LABELS, CONFIDENCES):
        assert api.matches(label, confidence) == worker.matches(label, confidence), (label, confidence)


def test_decisions_agree_and_reject_wins() -> None:
    spec = {"approve": [{"classes": ["cat"]}], "reject": [{"maxConfidence": 0.3}]}
    api, worker = ReviewSpec.model_validate(spec), ReviewConfig.model_validate(spec)
    for label, confidence in itertools.product(LABELS, CONFIDENCES):
        decided = api.decide(label, confidence)
        assert (decided.value if decided else None) == worker.decide(label, confidence)
    assert worker.decide("cat", 0.1) == "rejected" and worker.decide("cat", 0.9) == "approved"


def test_the_controller_review_json_is_what_the_worker_reads() -> None:
    spec = ReviewSpec.model_validate({"approve": [{"minConfidence": 0.9}], "groundTruthField": "gt"})
    config = ReviewConfig.model_validate(spec.dump())
    assert config.approve[0].min_confidence == 0.9 and config.ground_truth_field == "gt"
    assert config.problem_tags[:2] == ["needs_correction", "false_positive"]


def record(label: str, confidence: float | None, *tags: str) -> LabelRecord:
    return LabelRecord("s", f"l-{label}-{confidence}-{tags}", label, confidence, tuple(tags), None)


def test_statistics_count_per_class_and_problem_tags() -> None:
    records = [
        record("cat", 0.9, APPROVED_TAG),
        record("cat", 0.7, APPROVED_TAG, REJECTED_TAG, "wrong_class"),
        record("cat", None),
        record("dog", 0.2, "false_positive"),
    ]
    stats = statistics(records, ["false_positive", "wrong_class", "ambiguous"])
    assert (stats["total"], stats["approved"], stats["rejected"], stats["unreviewed"]) == (4, 1, 1, 2)
    assert stats["classes"] == [
        {"name": "cat", "count": 3, "meanConfidence": pytest.approx(0.8), "approved": 1, "rejected": 1},
        {"name": "dog", "count": 1, "meanConfidence": 0.2, "approved": 0, "rejected": 0},
    ]
    assert stats["problemTags"] == {"false_positive": 1, "wrong_class": 1, "ambiguous": 0}
