"""Helpers for the worker's integration tests: real images, FiftyOne datasets, worker configs and runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from PIL import Image

from tests.waiting import POLL_INTERVAL_S
from tools.images import skimage_rgb
from tools.images import write_images as write_images  # re-exported: the tests import it from here

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_CHANGE_STREAMS = 40573  # mongod's answer to a change stream on a standalone server


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
    """``python -m worker run --config FILE`` as a Job pod would run it."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / f"worker-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "run", "--config", str(path)],
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
    """``python -m worker <argv>`` (probe, finalize, discard, ...) with the config in its environment."""
    environment = {**worker_environment(0), "AUTOLABEL_WORKER_CONFIG": json.dumps(config), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "worker", *argv],
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


class Output:
    """A process's output, read as it comes: wait for a line, then take the whole text.

    A thread reads the stream (the process's stdout unless given) from the start, so
    use this instead of `communicate()`.
    """

    def __init__(self, process: subprocess.Popen[str], stream: IO[str] | None = None) -> None:
        self.process = process
        self.stream = stream if stream is not None else process.stdout
        assert self.stream is not None, "start the process with stdout=subprocess.PIPE"
        self.lines: list[str] = []
        self.ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.stream is not None
        for line in self.stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def wait_for(self, what: str, matches: Callable[[str], bool], timeout_s: float) -> str | None:
        """The first line so far or to come that `matches`; None if the output ends without one."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if matches(line):
                        return line
                seen = len(self.lines)
                if self.ended:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "".join(self.lines[-20:])
                    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; output:\n{tail}")
                self._changed.wait(left)

    def text(self, timeout_s: float = 300) -> str:
        """Everything the process wrote, once it has exited."""
        self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=timeout_s)
        return "".join(self.lines)


def marked_count(dataset: Any, marker: str, uid: str) -> int:
    """Samples whose `marker` field holds `uid` (one query on the sample collection)."""
    count: int = dataset._sample_collection.count_documents({marker: uid})
    return count


def wait_for_marked(
    dataset: Any,
    uid: str,
    at_least: int,
    process: subprocess.Popen[str] | None,
    timeout_s: float = 180,
    marker: str = "auto_in_review_run",
) -> int:
    """How many samples carry `uid` in `marker`, once at least `at_least` or once the worker `process`
    exited (a worker run as a pod has no process here: None).

    Counts again on each write the replica set's change stream reports on the sample
    collection (a kill can then land right after a given batch); on a standalone server,
    which has no change streams, every 0.5 s.
    """
    from pymongo.errors import OperationFailure

    deadline = time.monotonic() + timeout_s

    def done() -> int | None:
        count = marked_count(dataset, marker, uid)
        if count >= at_least or (process is not None and process.poll() is not None):
            return count
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {at_least} samples marked after {timeout_s}s ({count})")
        return None

    try:
        with dataset._sample_collection.watch(max_await_time_ms=int(POLL_INTERVAL_S * 1000)) as writes:
            while (count := done()) is None:
                writes.try_next()  # returns at the next write, or after 0.5 s to look at the process
            return count
    except OperationFailure as error:
        if error.code != NO_CHANGE_STREAMS:
            raise
    while (count := done()) is None:
        time.sleep(POLL_INTERVAL_S)
    return count
