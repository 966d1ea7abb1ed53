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


def start_command(config: dict[str, Any], *argv: str, **env: str) -> subprocess.Popen[str]:
    """``python -m inference <argv>`` (probe, finalize, discard, ...) with the config in its environment."""
    environment = {**worker_environment(0), "AUTOLABEL_WORKER_CONFIG": json.dumps(config), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "inference", *argv],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_command(config: dict[str, Any], *argv: str, timeout_s: float = 180) -> dict[str, Any]:
    """Runs a one-shot command; its JSON verdict (the last line), or AssertionError with its stderr."""
    process = start_command(config, *argv)
    stdout, stderr = process.communicate(timeout=timeout_s)
    assert process.returncode == 0, stderr[-3000:]
    verdict: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return verdict


def fresh_schema(dataset_name: str) -> dict[str, str]:
    """The dataset's sample fields as a fresh process sees them: ``{name: type}``."""
    script = (
        "import json, sys, fiftyone as fo\n"
        "schema = fo.load_dataset(sys.argv[1]).get_field_schema()\n"
        "print(json.dumps({name: type(field).__name__ for name, field in schema.items()}))\n"
        "import atexit, fiftyone.core.odm.database as d\n"
        "atexit.unregister(d._delete_non_persistent_datasets_if_allowed)  # keep the tests' datasets\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, dataset_name],
        env=worker_environment(0),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    schema: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return schema
