"""Unit tests of the AutoLabelRun pydantic models: defaults, cross-field rules, rule semantics, phases."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from contract.review import DEFAULT_PROBLEM_TAGS, Decision
from contract.verdicts import ValidationReason
from controller.api import (
    AutoLabelRun,
    AutoLabelRunSpec,
    AutoLabelRunStatus,
    ConditionStatus,
    ConditionType,
    Phase,
    ReviewRule,
    ReviewSpec,
    derive_phase,
    parse_spec,
    set_condition,
    transition_errors,
)
from tests.integration.bad_manifests import BAD_INPUTS, BadInput, run_with
from tests.integration.manifest_edges import GOOD_INPUTS

MINIMAL_SPEC: dict[str, Any] = {
    "task": "detection",
    "dataset": {"name": "faces", "target": {"all": True}, "databaseSecretRef": {"name": "fiftyone-db"}},
    "model": {"endpoint": {"address": "triton:8001"}, "name": "face_detector", "outputFormat": "boxes"},
    "labelField": "auto_faces",
}


def spec_with(**changes: Any) -> dict[str, Any]:
    """MINIMAL_SPEC with dotted-path changes applied (a value of None deletes the key)."""
    spec = copy.deepcopy(MINIMAL_SPEC)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = spec
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return spec


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_spec(MINIMAL_SPEC)
    assert spec.execution.parallelism == 1
    assert spec.execution.effective_shards == 1
    assert spec.execution.backoff_limit_per_index == 2
    assert spec.execution.shm_size == "1Gi"
    assert spec.review.problem_tags == list(DEFAULT_PROBLEM_TAGS)
    assert spec.dataset.database_secret_ref.key == "uri"
    assert (
        spec.model is not None and spec.model.endpoint is not None and spec.model.endpoint.protocol == "grpc"
    )
    assert spec.finalize is False and spec.discard is False and spec.suspend is False
    assert spec.deletion_policy.value == "retain"


def test_dump_round_trips_in_camel_case() -> None:
    spec = parse_spec(MINIMAL_SPEC)
    dumped = spec.dump()
    assert dumped["labelField"] == "auto_faces"
    assert dumped["dataset"]["databaseSecretRef"] == {"name": "fiftyone-db", "key": "uri"}
    assert "confidenceThreshold" not in dumped  # unset optional fields are left out
    assert parse_spec(dumped) == spec


def test_seven_default_problem_tags() -> None:
    assert len(DEFAULT_PROBLEM_TAGS) == 7
    assert "needs_correction" in DEFAULT_PROBLEM_TAGS and "ambiguous" in DEFAULT_PROBLEM_TAGS


def test_shards_default_to_parallelism() -> None:
    spec = parse_spec(spec_with(execution={"parallelism": 4}))
    assert spec.execution.effective_shards == 4
    assert parse_spec(spec_with(execution={"parallelism": 2, "shards": 8})).execution.effective_shards == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset__target": {"all": True, "view": "v"}}, "exactly one of all"),
        ({"dataset__target": {}}, "exactly one of all"),
        ({"dataset__target": {"all": False}}, "exactly one of all"),
        ({"dataset__name": None}, "name"),
        ({"dataset__target__sampleIds": ["not-an-id"], "dataset__target__all": None}, "sampleIds"),
        ({"task": "tracking"}, "task"),
        ({"labelField": "a.b"}, "labelField"),
        ({"labelField": "price$"}, "labelField"),
        ({"labelField": "1st"}, "labelField"),
        ({"labelField": "x" * 64}, "labelField"),
        ({"labelField": "filepath"}, "FiftyOne manages itself"),
        ({"confidenceThreshold": 1.5}, "confidenceThreshold"),
        ({"model__sidecar": {"image": "triton", "modelRepository": "/models"}}, "endpoint or sidecar"),
        ({"model__endpoint": None}, "endpoint or sidecar"),
        ({"model__endpoint": {"address": "no-port"}}, "address"),
        ({"model__outputFormat": "logits"}, "does not fit task"),
        ({"model__zeroShot": True}, "zeroShot"),
        ({"execution": {"parallelism": 0}}, "parallelism"),
        ({"execution": {"parallelism": 4, "shards": 2}}, "parallelism must not exceed shards"),
        (
            {"review": {"approve": [{"minConfidence": 0.9, "maxConfidence": 0.5}]}},
            "minConfidence must be below",
        ),
        ({"review": {"problemTags": ["a", "a"]}}, "must not repeat"),
        ({"review": {"groundTruthField": "auto_faces"}}, "groundTruthField must differ"),
        ({"finalize": True, "discard": True}, "finalize and discard"),
        ({"maskDir": "/media/masks"}, "maskDir applies only to task segmentation"),
        ({"storeLogits": True}, "storeLogits"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_invalid_specs_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_spec(spec_with(**changes))


def test_mask_dir_needs_writable_media_volume() -> None:
    segmentation = spec_with(task="segmentation", model__outputFormat="mask", maskDir="/media/masks")
    with pytest.raises(ValidationError, match="writable"):
        parse_spec(segmentation)
    segmentation["dataset"]["media"] = {
        "persistentVolumeClaim": {"claimName": "media", "mountPath": "/media", "readOnly": False}
    }
    assert parse_spec(segmentation).mask_dir == "/media/masks"


def test_sidecar_repository_must_lie_on_its_volume() -> None:
    sidecar = {
        "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
        "modelRepository": "/elsewhere",
        "volume": {"claimName": "models", "mountPath": "/models"},
    }
    with pytest.raises(ValidationError, match="modelRepository"):
        parse_spec(spec_with(model__endpoint=None, model__sidecar=sidecar))


def test_transition_rules() -> None:
    old = parse_spec(MINIMAL_SPEC)
    assert transition_errors(old, parse_spec(spec_with(labelField="other"))) == [
        "labelField is immutable once set"
    ]
    finalized = parse_spec(spec_with(finalize=True))
    assert transition_errors(finalized, old) == ["finalize cannot be undone once true"]
    assert transition_errors(old, finalized) == []


@pytest.mark.parametrize(
    ("rule", "label", "confidence", "selected"),
    [
        ({}, "cat", None, True),
        ({"classes": ["cat"]}, "dog", 0.9, False),
        ({"minConfidence": 0.5}, "cat", 0.5, True),
        ({"minConfidence": 0.5}, "cat", 0.49, False),
        ({"maxConfidence": 0.5}, "cat", 0.5, False),
        ({"maxConfidence": 1.0}, "cat", 1.0, True),
        ({"minConfidence": 0.2}, "cat", None, False),
    ],
)
def test_review_rule_matching(
    rule: dict[str, Any], label: str, confidence: float | None, selected: bool
) -> None:
    assert ReviewRule.model_validate(rule).matches(label, confidence) is selected


def test_reject_wins_over_approve() -> None:
    review = ReviewSpec.model_validate(
        {"approve": [{"minConfidence": 0.5}], "reject": [{"classes": ["dog"], "maxConfidence": 0.8}]}
    )
    assert review.decide("cat", 0.6) is Decision.APPROVED
    assert review.decide("dog", 0.6) is Decision.REJECTED
    assert review.decide("dog", 0.9) is Decision.APPROVED
    assert review.decide("cat", 0.1) is None


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    first = set_condition(
        [], ConditionType.VALIDATED, ConditionStatus.TRUE, ValidationReason.VALIDATION_PASSED, "ok", 1, t0
    )
    again = set_condition(
        first,
        ConditionType.VALIDATED,
        ConditionStatus.TRUE,
        ValidationReason.VALIDATION_PASSED,
        "ok",
        2,
        t0 + timedelta(1),
    )
    assert again[0].last_transition_time == t0 and again[0].observed_generation == 2
    flipped = set_condition(
        again,
        ConditionType.VALIDATED,
        ConditionStatus.FALSE,
        ValidationReason.DATASET_NOT_FOUND,
        "no",
        3,
        t0 + timedelta(2),
    )
    assert flipped[0].last_transition_time == t0 + timedelta(2)
    assert len(flipped) == 1


@pytest.mark.parametrize(
    ("spec_changes", "true_conditions", "phase"),
    [
        ({}, [], Phase.PENDING),
        ({}, [ConditionType.VALIDATED], Phase.INFERRING),
        ({"suspend": True}, [ConditionType.VALIDATED], Phase.SUSPENDED),
        ({}, [ConditionType.VALIDATED, ConditionType.INFERENCE_COMPLETE], Phase.REVIEW),
        ({"finalize": True}, [ConditionType.INFERENCE_COMPLETE], Phase.FINALIZING),
        ({"finalize": True}, [ConditionType.INFERENCE_COMPLETE, ConditionType.FINALIZED], Phase.FINALIZED),
        ({"discard": True}, [ConditionType.VALIDATED], Phase.DISCARDING),
        ({"discard": True}, [ConditionType.DISCARDED], Phase.DISCARDED),
        ({}, [ConditionType.VALIDATED, ConditionType.FAILED], Phase.FAILED),
    ],
)
def test_derive_phase(
    spec_changes: dict[str, Any], true_conditions: list[ConditionType], phase: Phase
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    conditions: list[Any] = []
    for condition_type in true_conditions:
        conditions = set_condition(conditions, condition_type, ConditionStatus.TRUE, "Test", "", 1, now)
    assert derive_phase(parse_spec(spec_with(**spec_changes)), conditions) is phase


def test_status_dump_is_camel_case_and_tolerant() -> None:
    status = AutoLabelRunStatus.model_validate(
        {
            "phase": "Review",
            "review": {"total": 3, "quality": {"groundTruthField": "gt", "overall": {"mAP": 0.5}}},
            "someFutureField": 1,
        }
    )
    dumped = status.dump()
    assert dumped["review"]["quality"]["overall"]["mAP"] == 0.5
    assert dumped["phase"] == "Review"
    assert "someFutureField" not in dumped


def test_whole_object_parses() -> None:
    run = AutoLabelRun.from_body(
        {
            "apiVersion": "autolabel.dev/v1alpha1",
            "kind": "AutoLabelRun",
            "metadata": {"name": "r"},
            "spec": MINIMAL_SPEC,
        }
    )
    assert run.status.phase is None and isinstance(run.spec, AutoLabelRunSpec)


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_parse(example: Path) -> None:
    run = AutoLabelRun.from_body(yaml.safe_load(example.read_text()))
    assert run.spec.label_field


# Rules only the API server can check: they are about metadata, not the spec.
SERVER_ONLY_CASES = {"run-name-too-long"}


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[bad.case for bad in BAD_INPUTS])
def test_models_refuse_what_the_server_refuses(bad: BadInput) -> None:
    if bad.case in SERVER_ONLY_CASES:
        pytest.skip("checked by the API server only")
    with pytest.raises(ValidationError):
        AutoLabelRun.from_body(run_with(bad.changes))


def test_auto_approve_defaults_and_the_review_pass_reads_them() -> None:
    from contract.review import ReviewConfig

    spec = parse_spec(spec_with(review__autoApprove={"targetPrecision": 0.98}))
    assert spec.review.auto_approve is not None
    assert spec.review.auto_approve.confidence_level == 0.95
    assert spec.review.auto_approve.min_reviewed_per_class == 30
    passed = ReviewConfig.model_validate(spec.review.model_dump(by_alias=True, mode="json"))
    assert passed.auto_approve is not None
    assert passed.auto_approve.target_precision == 0.98
    assert passed.auto_approve.sample_per_class == spec.review.auto_approve.sample_per_class


@pytest.mark.parametrize(("case", "changes"), GOOD_INPUTS, ids=[case for case, _ in GOOD_INPUTS])
def test_models_accept_valid_edge_values(case: str, changes: dict[str, Any]) -> None:
    AutoLabelRun.from_body(run_with(changes))
