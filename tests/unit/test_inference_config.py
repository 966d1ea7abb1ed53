"""Worker config: camelCase JSON, defaults, and the checks pydantic does before any work."""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from contract.worker import Task, WorkerConfig


def _config(**overrides: Any) -> dict[str, Any]:
    base = {
        "run": {"namespace": "ns", "name": "r", "uid": "u-1"},
        "dataset": "d",
        "labelField": "auto",
        "task": "classification",
        "model": {"url": "triton:8001", "name": "m", "outputFormat": "logits"},
    }
    base.update(overrides)
    return base


def test_defaults_and_derived_fields():
    config = WorkerConfig.from_json(json.dumps(_config()))
    assert config.task == Task.CLASSIFICATION
    assert config.staging == "auto_in_review"
    assert config.marker_field == "auto_in_review_run"
    assert config.progress.kind == "none"
    assert config.target.view is None and config.shards == 1


def test_full_config_round_trip():
    raw = _config(
        target={"tags": ["todo"]},
        stagingField="auto_staging",
        mediaPathRewrite=[{"from": "s3://bucket/", "to": "/data/"}],
        progress={"kind": "configmap", "configMap": "run-progress"},
        model={
            "url": "t:8001",
            "protocol": "http",
            "name": "m",
            "outputFormat": "probabilities",
            "tensors": {"input": "IMAGE", "output": "PROBS"},
            "classes": ["a", "b"],
            "keepClasses": ["a"],
            "confidenceThreshold": 0.3,
            "embeddings": {"tensor": "EMB", "field": "emb", "model": "other"},
        },
    )
    config = WorkerConfig.model_validate(raw)
    assert config.staging == "auto_staging"
    assert config.media_path_rewrite[0].from_ == "s3://bucket/"
    assert config.embeddings is not None and config.embeddings.model == "other"
    assert WorkerConfig.model_validate(config.model_dump(by_alias=True)) == config


@pytest.mark.parametrize(
    "overrides",
    [
        {"target": {"view": "v", "tags": ["t"]}},
        {"task": "detection"},  # logits do not fit detection
        {"stagingField": "auto"},
        {"shards": 0},
        {"progress": {"kind": "configmap"}},
        {"unknownKey": 1},
    ],
)
def test_invalid_configs_are_rejected(overrides):
    with pytest.raises(ValidationError):
        WorkerConfig.model_validate(_config(**overrides))
