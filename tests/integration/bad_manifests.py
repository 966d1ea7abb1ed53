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
WRITABLE_MEDIA = {"persistentVolumeClaim": {"claimName": "media", "mountPath": "/media", "readOnly": False}}
MASKS = {**SEGMENTATION, "spec/dataset/media": WRITABLE_MEDIA}
S3_MEDIA = {
    "s3": {"endpoint": "http://minio.storage:9000", "credentialsSecretRef": {"name": "media-s3"}},
    "pathRewrites": [{"datasetPrefix": "/data", "mountPrefix": "s3://media-bucket/images"}],
}


def sidecar_repository(repository: str, mount_path: str = "/models") -> dict[str, Any]:
    """Changes giving the run a Triton sidecar whose repository is on a volume mounted at mount_path."""
    return {
        "spec/model/endpoint": DELETE,
        "spec/model/sidecar": {
            "image": "tritonserver",
            "modelRepository": repository,
            "volume": {"claimName": "models", "mountPath": mount_path},
        },
    }


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
        "segmenter-for-classification",
        {
            "spec/task": "classification",
            "spec/model/outputFormat": "logits",
            "spec/model/segmenter": {"name": "s"},
        },
        "spec.model.segmenter",
    ),
    BadInput(
        "segmenter-format-not-segmentation",
        {"spec/model/segmenter": {"name": "s", "outputFormat": "boxes"}},
        "spec.model.segmenter.outputFormat",
    ),
    BadInput(
        "masks-for-yolo",
        {"spec/model/outputFormat": "yolo", "spec/model/tensors": {"masks": "MASKS"}},
        "spec.model.tensors.masks",
    ),
    BadInput("count-for-boxes", {"spec/model/tensors": {"count": "num_dets"}}, "spec.model.tensors.count"),
    BadInput(
        "text-without-zero-shot", {"spec/model/tensors": {"text": "PROMPTS"}}, "spec.model.tensors.text"
    ),
    BadInput("model-and-source", {"spec/source": {"field": "ground_truth"}}, "exactly one of model"),
    BadInput("neither-model-nor-source", {"spec/model": DELETE}, "exactly one of model"),
    BadInput(
        "source-is-label-field",
        {"spec/model": DELETE, "spec/source": {"field": "auto_faces"}},
        "spec.source.field",
    ),
    BadInput(
        "source-field-pattern", {"spec/model": DELETE, "spec/source": {"field": "a.b"}}, "spec.source.field"
    ),
    BadInput(
        "zero-shot-with-class-names",
        {"spec/model/zeroShot": True, "spec/model/classes": ["a cat"], "spec/model/classNames": ["cat"]},
        "spec.model.classNames",
    ),
    BadInput(
        "width-without-height", {"spec/model/preprocess": {"width": 640}}, "spec.model.preprocess.width"
    ),
    BadInput(
        "mean-without-std", {"spec/model/preprocess": {"mean": [0.5, 0.5, 0.5]}}, "spec.model.preprocess.mean"
    ),
    BadInput(
        "std-zero",
        {"spec/model/preprocess": {"mean": [0, 0, 0], "std": [1, 0, 1]}},
        "spec.model.preprocess.std",
    ),
    BadInput("mean-two-channels", {"spec/model/preprocess": {"mean": [0.5, 0.5], "std": [1, 1]}}, "mean"),
    BadInput(
        "resize-not-in-enum", {"spec/model/preprocess": {"resize": "crop"}}, "spec.model.preprocess.resize"
    ),
    BadInput(
        "box-format-for-classification",
        {"spec/task": "classification", "spec/model/outputFormat": "logits", "spec/model/boxFormat": "xywh"},
        "spec.model.boxFormat",
    ),
    BadInput(
        "box-coordinates-not-in-enum", {"spec/model/boxCoordinates": "percent"}, "spec.model.boxCoordinates"
    ),
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
    BadInput(
        "mask-dir-bucket-without-s3",
        {**SEGMENTATION, "spec/dataset/media": WRITABLE_MEDIA, "spec/maskDir": "s3://masks-bucket/m"},
        "spec.maskDir",
    ),
    BadInput(
        "mask-dir-bucket-name-invalid",
        {**SEGMENTATION, "spec/dataset/media": S3_MEDIA, "spec/maskDir": "s3://Masks_Bucket/m"},
        "spec.maskDir",
    ),
    BadInput("media-empty", {"spec/dataset/media": {}}, "spec.dataset.media"),
    BadInput(
        "media-mount-prefix-relative",
        {"spec/dataset/media": {"pathRewrites": [{"datasetPrefix": "/data", "mountPrefix": "media"}]}},
        "spec.dataset.media.pathRewrites[0].mountPrefix",
    ),
    BadInput(
        "media-s3-endpoint-not-url",
        {"spec/dataset/media": {"s3": {"endpoint": "minio:9000"}}},
        "spec.dataset.media.s3.endpoint",
    ),
    BadInput(
        "media-s3-concurrency-zero",
        {"spec/dataset/media": {"s3": {"concurrency": 0}}},
        "spec.dataset.media.s3.concurrency",
    ),
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
    # Paths checked normalised and at a directory boundary (issue 12, item 7).
    BadInput("mask-dir-escapes-volume", {**MASKS, "spec/maskDir": "/media/../tmp/m"}, "spec.maskDir"),
    BadInput("mask-dir-sibling-prefix", {**MASKS, "spec/maskDir": "/mediaX/m"}, "spec.maskDir"),
    BadInput("mask-dir-dot-segment", {**MASKS, "spec/maskDir": "/media/./m"}, "spec.maskDir"),
    BadInput("mask-dir-empty-segment", {**MASKS, "spec/maskDir": "/media//m"}, "spec.maskDir"),
    BadInput(
        "model-repository-escapes-volume",
        sidecar_repository("/models/../tmp/repo"),
        "spec.model.sidecar.modelRepository",
    ),
    BadInput(
        "model-repository-sibling-prefix",
        sidecar_repository("/modelsX/repo"),
        "spec.model.sidecar.modelRepository",
    ),
    BadInput(
        "model-repository-uri-on-volume",
        sidecar_repository("s3://bucket/models"),
        "spec.model.sidecar.modelRepository",
    ),
    BadInput(
        "volume-mount-path-escapes",
        {"spec/dataset/media": {"persistentVolumeClaim": {"claimName": "media", "mountPath": "/media/.."}}},
        "spec.dataset.media.persistentVolumeClaim.mountPath",
    ),
    # Values the Pod and Job APIs would refuse later, refused at apply (issue 12, item 6).
    BadInput("shm-size-not-a-quantity", {"spec/execution": {"shmSize": "lots"}}, "spec.execution.shmSize"),
    BadInput("shm-size-negative", {"spec/execution": {"shmSize": "-1Gi"}}, "spec.execution.shmSize"),
    BadInput("shm-size-negative-int", {"spec/execution": {"shmSize": -5}}, "spec.execution.shmSize"),
    BadInput(
        "memory-limit-not-a-quantity",
        {"spec/execution": {"resources": {"limits": {"memory": "8 GB"}}}},
        "spec.execution.resources.limits.memory",
    ),
    BadInput(
        "cpu-request-not-a-quantity",
        {"spec/execution": {"resources": {"requests": {"cpu": "two"}}}},
        "spec.execution.resources.requests.cpu",
    ),
    BadInput(
        "sidecar-gpu-not-a-quantity",
        {
            "spec/model/endpoint": DELETE,
            "spec/model/sidecar": {
                "image": "tritonserver",
                "modelRepository": "/models",
                "resources": {"limits": {"nvidia.com/gpu": "one"}},
            },
        },
        "spec.model.sidecar.resources.limits.nvidia.com/gpu",
    ),
    BadInput(
        "sidecar-grpc-port-leaves-no-room",
        {
            "spec/model/endpoint": DELETE,
            "spec/model/sidecar": {"image": "tritonserver", "modelRepository": "/models", "grpcPort": 65534},
        },
        "spec.model.sidecar.grpcPort",
    ),
    BadInput(
        "endpoint-port-above-65535",
        {"spec/model/endpoint/address": "triton:99999"},
        "spec.model.endpoint.address",
    ),
    BadInput(
        "endpoint-port-65536", {"spec/model/endpoint/address": "triton:65536"}, "spec.model.endpoint.address"
    ),
    BadInput(
        "endpoint-port-zero", {"spec/model/endpoint/address": "triton:0"}, "spec.model.endpoint.address"
    ),
    BadInput(
        "node-selector-key-with-space",
        {"spec/execution": {"nodeSelector": {"gpu type": "a100"}}},
        "spec.execution.nodeSelector",
    ),
    BadInput(
        "node-selector-key-two-slashes",
        {"spec/execution": {"nodeSelector": {"a/b/c": "x"}}},
        "spec.execution.nodeSelector",
    ),
    BadInput(
        "node-selector-key-name-too-long",
        {"spec/execution": {"nodeSelector": {"example.com/" + "n" * 64: "x"}}},
        "spec.execution.nodeSelector",
    ),
    BadInput(
        "node-selector-key-prefix-too-long",
        {"spec/execution": {"nodeSelector": {"p" * 254 + "/gpu": "x"}}},
        "spec.execution.nodeSelector",
    ),
    BadInput(
        "node-selector-value-invalid",
        {"spec/execution": {"nodeSelector": {"gpu": "a100 80gb"}}},
        "spec.execution.nodeSelector",
    ),
    BadInput(
        "toleration-operator-not-in-enum",
        {"spec/execution": {"tolerations": [{"key": "gpu", "operator": "In"}]}},
        "spec.execution.tolerations[0].operator",
    ),
    BadInput(
        "toleration-effect-not-in-enum",
        {"spec/execution": {"tolerations": [{"key": "gpu", "effect": "NoRun"}]}},
        "spec.execution.tolerations[0].effect",
    ),
    BadInput(
        "toleration-key-invalid",
        {"spec/execution": {"tolerations": [{"key": "nvidia.com/gpu/x", "operator": "Exists"}]}},
        "spec.execution.tolerations[0].key",
    ),
    BadInput(
        "toleration-without-key-not-exists",
        {"spec/execution": {"tolerations": [{"operator": "Equal", "value": "x"}]}},
        "spec.execution.tolerations[0].operator",
    ),
    BadInput(
        "toleration-exists-with-value",
        {"spec/execution": {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "x"}]}},
        "spec.execution.tolerations[0].value",
    ),
    BadInput(
        "toleration-seconds-without-no-execute",
        {"spec/execution": {"tolerations": [{"key": "gpu", "effect": "NoSchedule", "tolerationSeconds": 5}]}},
        "spec.execution.tolerations[0].tolerationSeconds",
    ),
]
