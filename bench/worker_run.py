"""(b) Our worker end to end: ``python -m worker run --config FILE`` as a Job pod runs it.

Throughput counts from the moment the worker has loaded the dataset and passed
preflight (its ``shard i/n:`` line) to its final ``state=Succeeded`` progress
line: reading pages of filepaths, decoding, inference and write-back, all of
it. Process start (importing FiftyOne, ~4 s here) is reported separately.
Peak RSS is the worker's own high-water mark, ``VmHWM`` of ``/proc/<pid>/status``, polled
while it runs (``ru_maxrss`` from ``wait4`` would not do: Linux carries the RSS of the forking
bench process, ~460 MiB, over the exec into the child's figure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.models import BenchModel, Setting

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WorkerResult:
    samples: int
    processed: int
    failed: int
    seconds: float  # after preflight until done
    wall_seconds: float  # process start to exit
    peak_rss_mib: float
    setting: Setting
    startup_seconds: float = 0.0  # process start to the shard's first line (its IDs read, resume counted)
    shards: int = 1
    stopped: bool = False  # stopped with SIGTERM after `processed` samples (a scale run)

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "processed": self.processed,
            "failed": self.failed,
            "seconds": self.seconds,
            "wallSeconds": self.wall_seconds,
            "imagesPerSecond": self.images_per_second,
            "peakRssMiB": self.peak_rss_mib,
            "batch": self.setting.batch,
            "inFlight": self.setting.in_flight,
            "decodeThreads": self.setting.decode_threads,
            "writeBatchSize": self.setting.write_batch,
            "setting": str(self.setting),
            "encodedInput": self.setting.encoded,
            "startupSeconds": self.startup_seconds,
            "shards": self.shards,
            "stoppedAfterProcessed": self.stopped,
        }


def worker_config(
    dataset: str,
    url: str,
    model: BenchModel,
    setting: Setting,
    shards: int = 1,
    media: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The worker's config for ``setting``; ``media``: extra keys (object-storage rewrite and endpoint)."""
    tag = uuid.uuid4().hex[:8]
    return (media or {}) | {
        "run": {"namespace": "bench", "name": f"bench-{tag}", "uid": f"uid-{tag}"},
        "dataset": dataset,
        "shards": shards,
        "labelField": f"bench_{model.kind}_{tag}",
        "task": "classification",
        "model": {
            "url": url,
            "name": f"{model.name}_encoded" if setting.encoded else model.name,
            "outputFormat": model.output_format,
            "tensors": {"output": model.output},
            "input": "encoded" if setting.encoded else "decoded",
        },
        "batchSize": setting.batch,
        "maxInFlight": setting.in_flight,
        "decodeThreads": setting.decode_threads,
        "writeBatchSize": setting.write_batch,
        "progress": {"kind": "none", "intervalS": 5.0},
    }


def _config_file(config: dict[str, Any], work_dir: Path) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"worker-{config['run']['uid']}.json"
    path.write_text(json.dumps(config))
    return path


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) | (extra or {})
    env.update({"JOB_COMPLETION_INDEX": "0", "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"})
    return env


def run_decode_only(
    dataset: str, url: str, model: BenchModel, setting: Setting, work_dir: Path
) -> dict[str, Any]:
    """(d): `bench.decode_only` in a child process, at the worker's `setting`; images/s and the rest."""
    path = _config_file(worker_config(dataset, url, model, setting), work_dir)
    output = subprocess.run(
        [sys.executable, "-m", "bench.decode_only", str(path)],
        cwd=REPO_ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise RuntimeError(f"decode-only run failed:\n{output.stdout[-3000:]}\n{output.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    row["imagesPerSecond"] = row["images"] / row["seconds"] if row["seconds"] > 0 else 0.0
    row["setting"] = str(setting)
    return row


def _counts(progress_line: str) -> tuple[int, int]:
    """(processed, failed) of a worker's progress line."""
    processed = int(progress_line.split("processed=")[1].split("/")[0])
    return processed, int(progress_line.split("failed=")[1].split()[0])


def run_worker(
    dataset: str,
    samples: int,
    url: str,
    model: BenchModel,
    setting: Setting,
    work_dir: Path,
    shards: int = 1,
    stop_after: int | None = None,
    media: tuple[dict[str, Any], dict[str, str]] | None = None,
) -> WorkerResult:
    """Run shard 0 of ``dataset`` in ``shards`` and time it; raises if the worker fails.

    With ``stop_after`` the worker gets SIGTERM once a progress line shows that many
    processed samples (it writes what it inferred and exits 143): a scale run that
    measures start-up and the RSS plateau without labelling a million samples.
    ``media``: (config keys, environment) reading the images from object storage.
    """
    config_keys, extra_env = media or ({}, {})
    path = _config_file(worker_config(dataset, url, model, setting, shards, config_keys), work_dir)
    env = _environment(extra_env)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "run", "--config", str(path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    marks: dict[str, float] = {}
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            now = time.perf_counter()
            lines.append(line.rstrip())
            if line.startswith("shard ") and "start" not in marks:
                marks["start"] = now
            if not line.startswith("progress ") or "stop" in marks:
                continue
            processed, failed = _counts(line)
            if "state=Succeeded" in line or (stop_after is not None and processed >= stop_after):
                marks["end" if "state=Succeeded" in line else "stop"] = now
                marks["processed"], marks["failed"] = processed, failed
                if "stop" in marks:
                    process.terminate()

    peak_kib = [0]
    finished = threading.Event()

    def poll_rss() -> None:
        status_path = Path(f"/proc/{process.pid}/status")
        while not finished.is_set():
            try:
                for entry in status_path.read_text().splitlines():
                    if entry.startswith("VmHWM:"):
                        peak_kib[0] = max(peak_kib[0], int(entry.split()[1]))
            except (OSError, ValueError):
                pass
            finished.wait(0.2)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    poller = threading.Thread(target=poll_rss, daemon=True)
    poller.start()
    _, status, _usage = os.wait4(process.pid, 0)
    finished.set()
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    reader.join(timeout=10)
    stopped = "stop" in marks and process.returncode == 143
    if not stopped and (process.returncode != 0 or "start" not in marks or "end" not in marks):
        tail = "\n".join(lines[-20:])
        raise RuntimeError(f"worker exited {process.returncode}:\n{tail}")
    return WorkerResult(
        samples=samples,
        processed=int(marks["processed"]),
        failed=int(marks["failed"]),
        seconds=marks["stop" if stopped else "end"] - marks["start"],
        wall_seconds=wall,
        peak_rss_mib=peak_kib[0] / 1024.0,
        setting=setting,
        startup_seconds=marks["start"] - started,
        shards=shards,
        stopped=stopped,
    )
