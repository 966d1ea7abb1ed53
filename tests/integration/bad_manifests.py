"""The table of invalid AutoLabelRun manifests the API server must refuse, each with the field it must name.

Kept apart from the test module so the table reads as a specification of the API's input rules.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

VALID_RUN: dict[str, Any] = {
    "apiVersion": "autolabel.dev/v1alpha1",
    "kind": "AutoLabelRun",
    "metadata": {"name": "bad-input"},
    "spec": {
        "task": "detection",
        "dataset": {"name": "faces", "target": {"all": True}, "databaseSecretRef": {"name": "fiftyone-db"}},
        "model": {"endpoint": {"address": "triton:8001"}, "name": "face_detector", "outputFormat": "boxes"},
        "labelField": "auto_faces",
    },
}

DELETE = object()


def run_with(changes: dict[str, Any]) -> dict[str, Any]:
    """VALID_RUN with changes at slash-separated paths below the object root; DELETE removes a key."""
    run = copy.deepcopy(VALID_RUN)
    for path, value in changes.items():
        *parents, leaf = path.split("/")
        node = run
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if value is DELETE:
            node.pop(leaf)
        else:
            node[leaf] = value
    return run


@dataclass(frozen=True)
class BadInput:
    """One invalid manifest and the text the refusal must contain (the field it names)."""

    case: str
    changes: dict[str, Any]
    must_name: str


SEGMENTATION = {"spec/task": "segmentation", "spec/model/outputFormat": "mask"}
MEDIA = {"persistentVolumeClaim": {"claimName": "media", "mountPath": "/media"}}

BAD_INPUTS: list[BadInput] = [
    BadInput("task-not-in-enum", {"spec/task": "tracking"}, "spec.task"),
    BadInput("threshold-above-one", {"spec/confidenceThreshold": 1.5}, "spec.confidenceThreshold"),
    BadInput("threshold-negative", {"spec/confidenceThreshold": -0.1}, "spec.confidenceThreshold"),
    BadInput(
        "two-target-selectors", {"spec/dataset/target": {"all": True, "view": "v"}}, "spec.dataset.target"
    ),
    BadInput("no-target-selector", {"spec/dataset/target": {}}, "spec.dataset.target"),
    BadInput("all-false", {"spec/dataset/target": {"all": False}}, "spec.dataset.target"),
    BadInput("no-dataset-name", {"spec/dataset/name": DELETE}, "spec.dataset.name"),
    BadInput("empty-dataset-name", {"spec/dataset/name": ""}, "spec.dataset.name"),
    BadInput(
        "bad-sample-id", {"spec/dataset/target": {"sampleIds": ["xyz"]}}, "spec.dataset.target.sampleIds"
    ),
    BadInput("duplicate-tags", {"spec/dataset/target": {"tags": ["a", "a"]}}, "spec.dataset.target.tags"),
    BadInput("no-secret-ref", {"spec/dataset/databaseSecretRef": DELETE}, "spec.dataset.databaseSecretRef"),
    BadInput("label-field-with-dot", {"spec/labelField": "predictions.detections"}, "spec.labelField"),
    BadInput("label-field-with-dollar", {"spec/labelField": "$preds"}, "spec.labelField"),
    BadInput("label-field-leading-digit", {"spec/labelField": "1preds"}, "spec.labelField"),
    BadInput("label-field-too-long", {"spec/labelField": "f" * 64}, "spec.labelField"),
    BadInput("label-field-reserved", {"spec/labelField": "filepath"}, "spec.labelField"),
    BadInput("no-label-field", {"spec/labelField": DELETE}, "spec.labelField"),
    BadInput("negative-parallelism", {"spec/execution": {"parallelism": -1}}, "spec.execution.parallelism"),
    BadInput(
        "parallelism-above-shards",
        {"spec/execution": {"parallelism": 4, "shards": 2}},
        "spec.execution.parallelism",
    ),
    BadInput("zero-batch-size", {"spec/execution": {"batchSize": 0}}, "spec.execution.batchSize"),
    BadInput("bad-queue-name", {"spec/execution": {"queueName": "GPU Queue"}}, "spec.execution.queueName"),
    BadInput("unknown-spec-field", {"spec/labelFeild": "typo"}, "labelFeild"),
    BadInput("unknown-nested-field", {"spec/model/gpu": 1}, "spec.model.gpu"),
    BadInput(
        "endpoint-and-sidecar",
        {"spec/model/sidecar": {"image": "tritonserver", "modelRepository": "/models"}},
        "spec.model",
    ),
    BadInput("neither-endpoint-nor-sidecar", {"spec/model/endpoint": DELETE}, "spec.model"),
    BadInput(
        "endpoint-without-port", {"spec/model/endpoint/address": "triton"}, "spec.model.endpoint.address"
    ),
    BadInput(
        "protocol-not-in-enum", {"spec/model/endpoint/protocol": "https"}, "spec.model.endpoint.protocol"
    ),
    BadInput("output-format-not-in-enum", {"spec/model/outputFormat": "ssd"}, "spec.model.outputFormat"),
    BadInput("output-format-wrong-task", {"spec/model/outputFormat": "logits"}, "spec.model.outputFormat"),
    BadInput("zero-shot-without-classes", {"spec/model/zeroShot": True}, "spec.model.classes"),
    BadInput(
        "confidence-range-inverted",
        {"spec/review": {"approve": [{"minConfidence": 0.8, "maxConfidence": 0.2}]}},
        "spec.review.approve[0].minConfidence",
    ),
    BadInput(
        "rule-confidence-above-one",
        {"spec/review": {"reject": [{"maxConfidence": 2.0}]}},
        "spec.review.reject[0].maxConfidence",
    ),
    BadInput(
        "ground-truth-is-label-field",
        {"spec/review": {"groundTruthField": "auto_faces"}},
        "spec.review.groundTruthField",
    ),
    BadInput("finalize-and-discard", {"spec/finalize": True, "spec/discard": True}, "spec.discard"),
    BadInput("mask-dir-for-detection", {"spec/maskDir": "/media/masks"}, "spec.maskDir"),
    BadInput(
        "mask-dir-on-read-only-media",
        {**SEGMENTATION, "spec/dataset/media": MEDIA, "spec/maskDir": "/media/masks"},
        "spec.maskDir",
    ),
    BadInput("mask-dir-relative", {**SEGMENTATION, "spec/maskDir": "masks"}, "spec.maskDir"),
    BadInput("store-logits-for-detection", {"spec/storeLogits": True}, "spec.storeLogits"),
    BadInput("negative-ttl", {"spec/ttlSecondsAfterFinished": -5}, "spec.ttlSecondsAfterFinished"),
    BadInput("deletion-policy-not-in-enum", {"spec/deletionPolicy": "orphan"}, "spec.deletionPolicy"),
    BadInput("threshold-as-string", {"spec/confidenceThreshold": "high"}, "spec.confidenceThreshold"),
    BadInput("run-name-too-long", {"metadata/name": "r" * 64}, "metadata.name"),
    BadInput(
        "auto-approve-for-segmentation",
        {**SEGMENTATION, "spec/review/autoApprove": {"targetPrecision": 0.9}},
        "spec.review.autoApprove",
    ),
    BadInput(
        "auto-approve-target-of-one",
        {"spec/review/autoApprove": {"targetPrecision": 1}},
        "spec.review.autoApprove.targetPrecision",
    ),
    BadInput(
        "auto-approve-without-target",
        {"spec/review/autoApprove": {"confidenceLevel": 0.9}},
        "spec.review.autoApprove.targetPrecision",
    ),
    BadInput(
        "auto-approve-level-too-low",
        {"spec/review/autoApprove": {"targetPrecision": 0.9, "confidenceLevel": 0.2}},
        "spec.review.autoApprove.confidenceLevel",
    ),
]

# Updates the server must refuse: (changes applied to VALID_RUN first, then changes of the update, field).
BAD_UPDATES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("label-field-changed", {}, {"spec/labelField": "other_field"}, "spec.labelField"),
    ("finalize-undone", {"spec/finalize": True}, {"spec/finalize": False}, "spec.finalize"),
    ("discard-undone", {"spec/discard": True}, {"spec/discard": False}, "spec.discard"),
]
