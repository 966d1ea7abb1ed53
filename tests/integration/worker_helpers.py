"""Helpers for the worker's integration tests: real images, FiftyOne datasets, worker configs and runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from PIL import Image

from tools.images import skimage_rgb
from tools.images import write_images as write_images  # re-exported: the tests import it from here

REPO_ROOT = Path(__file__).resolve().parents[2]


def named_image(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.jpg"
    Image.fromarray(skimage_rgb(name)).save(path, quality=95)
    return path


def make_dataset(paths: list[Path], name: str | None = None) -> Any:
    import fiftyone as fo

    dataset = fo.Dataset(name or f"worker-{uuid.uuid4().hex[:10]}")
    dataset.add_samples([fo.Sample(filepath=str(path)) for path in paths])
    return dataset


def worker_config(
    dataset: str,
    model: dict[str, Any],
    task: str,
    *,
    shards: int = 1,
    label_field: str = "auto",
    **overrides: Any,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "run": {"namespace": "default", "name": "test-run", "uid": f"uid-{uuid.uuid4().hex[:12]}"},
        "dataset": dataset,
        "shards": shards,
        "labelField": label_field,
        "task": task,
        "model": model,
        "batchSize": 1,
        "maxInFlight": 8,
        "writeBatchSize": 8,
        "progress": {"kind": "none", "intervalS": 1.0},
    }
    config.update(overrides)
    return config


def classifier_model(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": url,
        "name": "efficientnet_lite0",
        "outputFormat": "logits",
        "tensors": {"output": "LOGITS"},
    } | extra


def worker_environment(shard: int) -> dict[str, str]:
    env = dict(os.environ)
    env["JOB_COMPLETION_INDEX"] = str(shard)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def start_worker(config: dict[str, Any], shard: int, config_dir: Path) -> subprocess.Popen[str]:
    """``python -m inference run --config FILE`` as a Job pod would run it."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / f"worker-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen(
        [sys.executable, "-m", "inference", "run", "--config", str(path)],
        cwd=REPO_ROOT,
        env=worker_environment(shard),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_worker(
    config: dict[str, Any], shard: int, config_dir: Path, timeout_s: float = 300
) -> tuple[int, str]:
    process = start_worker(config, shard, config_dir)
    output, _ = process.communicate(timeout=timeout_s)
    return process.returncode, output
