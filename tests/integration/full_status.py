"""A status with every field of the CRD's status set: what the API server must store unpruned."""

from __future__ import annotations

from typing import Any


def full_status() -> dict[str, Any]:
    """A status using every part of the schema, as the controller would write it."""
    now = "2026-01-01T00:00:00Z"
    return {
        "phase": "Review",
        "message": "2 of 2 shards succeeded",
        "observedGeneration": 1,
        "jobName": "autolabelrun-bad-input-1a2b3c",
        "reviewField": "auto_faces_review",
        "conditions": [
            {
                "type": "Validated",
                "status": "True",
                "reason": "ValidationPassed",
                "message": "",
                "lastTransitionTime": now,
                "observedGeneration": 1,
            },
            {
                "type": "InferenceComplete",
                "status": "True",
                "reason": "AllShardsSucceeded",
                "message": "done",
                "lastTransitionTime": now,
                "observedGeneration": 1,
            },
        ],
        "progress": {
            "processed": 90,
            "failed": 2,
            "total": 100,
            "summary": "90/100",
            "imagesPerSecond": 31.5,
            "updatedAt": now,
        },
        "shards": [
            {
                "index": 0,
                "state": "Succeeded",
                "processed": 50,
                "failed": 1,
                "total": 50,
                "attempts": 2,
                "imagesPerSecond": 15.0,
                "message": "retried once",
                "updatedAt": now,
            }
        ],
        "review": {
            "total": 120,
            "approved": 40,
            "rejected": 5,
            "unreviewed": 75,
            "classes": [{"name": "face", "count": 120, "meanConfidence": 0.8, "approved": 40, "rejected": 5}],
            "problemTags": {"false_positive": 3},
            "quality": {
                "groundTruthField": "ground_truth",
                "overall": {"precision": 0.9, "recall": 0.8, "mAP": 0.7, "labels": 120},
                "approved": {"precision": 0.95, "recall": 0.4, "labels": 40},
            },
            "brainKey": "bad_input_embeddings",
            "savedViews": ["bad-input-all"],
            "rulesAppliedGeneration": 1,
            "updatedAt": now,
        },
        "finalized": {"promoted": 0, "discarded": 0},
        "discarded": {"removed": 0},
        "startTime": now,
        "completionTime": now,
    }
