"""Edges of the API's input rules: valid values next to the refused ones, and updates it must refuse.

The refused manifests themselves are the table in `bad_manifests`.
"""

from __future__ import annotations

from typing import Any

from tests.integration.bad_manifests import DELETE, MASKS, MEDIA, S3_MEDIA, SEGMENTATION, sidecar_repository

# Valid edge values next to the refused ones of bad_manifests: what the Pod API takes is not refused.
GOOD_INPUTS: list[tuple[str, dict[str, Any]]] = [
    ("source-instead-of-model", {"spec/model": DELETE, "spec/source": {"field": "ground_truth"}}),
    (
        "float-letterbox-yolo",
        {
            "spec/model/outputFormat": "yolo",
            "spec/model/boxFormat": "cxcywh",
            "spec/model/boxCoordinates": "pixels",
            "spec/model/nmsIouThreshold": 0.6,
            "spec/model/preprocess": {
                "layout": "NCHW",
                "width": 640,
                "height": 640,
                "resize": "letterbox",
                "scale": True,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
            },
        },
    ),
    (
        "efficient-nms",
        {"spec/model/outputFormat": "efficient_nms", "spec/model/tensors": {"count": "num_dets"}},
    ),
    (
        "zero-shot-detector",
        {
            "spec/model/zeroShot": True,
            "spec/model/classes": ["a cat", "a dog"],
            "spec/model/tensors": {"text": "T"},
        },
    ),
    ("segmentation-logits", {**SEGMENTATION, "spec/model/outputFormat": "logits"}),
    ("mask-dir-below-volume", {**MASKS, "spec/maskDir": "/media/masks/run1"}),
    ("mask-dir-trailing-slash", {**MASKS, "spec/maskDir": "/media/masks/"}),
    ("mask-dir-dotted-name", {**MASKS, "spec/maskDir": "/media/.masks/..v2"}),
    ("media-in-bucket", {"spec/dataset/media": S3_MEDIA}),
    ("media-s3-workload-identity", {"spec/dataset/media": {"s3": {"region": "eu-west-1"}}}),
    (
        "media-https-prefix",
        {
            "spec/dataset/media": {
                "pathRewrites": [{"datasetPrefix": "/d", "mountPrefix": "https://cdn.example.com/d"}]
            }
        },
    ),
    (
        "media-bucket-to-volume",
        {
            "spec/dataset/media": {
                **MEDIA,
                "pathRewrites": [{"datasetPrefix": "s3://b1/x", "mountPrefix": "/media/x"}],
            }
        },
    ),
    (
        "mask-dir-in-bucket",
        {**SEGMENTATION, "spec/dataset/media": S3_MEDIA, "spec/maskDir": "s3://masks-bucket/runs"},
    ),
    ("model-repository-below-volume", sidecar_repository("/models/repo")),
    ("model-repository-volume-root", sidecar_repository("/models")),
    ("model-repository-mount-trailing-slash", sidecar_repository("/models/repo", "/models/")),
    (
        "quantities",
        {
            "spec/execution": {
                "shmSize": "1.5Gi",
                "resources": {"requests": {"cpu": "500m", "memory": 4294967296}, "limits": {"memory": "1e9"}},
            }
        },
    ),
    ("shm-size-int", {"spec/execution": {"shmSize": 67108864}}),
    ("endpoint-port-65535", {"spec/model/endpoint/address": "triton.inference.svc:65535"}),
    (
        "sidecar-grpc-port-65533",
        {
            "spec/model/endpoint": DELETE,
            "spec/model/sidecar": {"image": "tritonserver", "modelRepository": "/models", "grpcPort": 65533},
        },
    ),
    (
        "node-selector-keys",
        {
            "spec/execution": {
                "nodeSelector": {"kubernetes.io/arch": "amd64", "gpu": "", "a" * 253 + "/" + "b" * 63: "x"}
            }
        },
    ),
    (
        "tolerations",
        {
            "spec/execution": {
                "tolerations": [
                    {"operator": "Exists"},
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "dedicated", "value": "gpu", "effect": "NoExecute", "tolerationSeconds": 30},
                ]
            }
        },
    ),
]

# Updates the server must refuse: (changes applied to VALID_RUN first, then changes of the update, field).
BAD_UPDATES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("label-field-changed", {}, {"spec/labelField": "other_field"}, "spec.labelField"),
    ("finalize-undone", {"spec/finalize": True}, {"spec/finalize": False}, "spec.finalize"),
    ("discard-undone", {"spec/discard": True}, {"spec/discard": False}, "spec.discard"),
]
