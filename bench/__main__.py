"""``python -m bench`` (``make bench``): worker vs raw Triton vs FiftyOne ``apply_model``, side by side.

One mongod and one Triton server (python backend, ``models/``) serve the whole
run. For each model (efficientnet_lite0, compute-heavy; light_classifier,
cheap next to decoding and writing) it measures, one after the other on the
same images:

(a) raw Triton with preloaded uint8 tensors over ``tritonclient.grpc.aio``,
    the best of a few (batch, in-flight) patterns: the ceiling;
(b) the worker end to end (read, decode, infer, write back) on 500+ JPEGs of
    640x480, with the best raw pattern and with the default one;
(c) FiftyOne's ``apply_model`` in-process with the same weights and
    preprocessing, the best of a few ``batch_size``/``num_workers``;
(d) the worker's decode stage alone, (e) the worker with encoded input, and
(f) the worker reading the same JPEGs from a real MinIO (``s3://``) at (b)'s
    best setting, printed beside the local-file figure (``--no-object-store``
    skips it);

then write-back samples/s (our writer vs raw ``bulk_write``) and the worker's
peak RSS at two shard sizes. The machine is shared, so absolute numbers drift;
the ratios come from measurements taken minutes apart in one run. Results go
to ``bench/results/<timestamp>.json`` and a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from bench import scale
from bench.images import write_bench_images
from bench.models import LIGHT, MODELS, BenchModel, Setting
from bench.object_store import BucketMedia, bucket_media
from bench.raw_triton import sweep
from bench.worker_run import WorkerResult, run_decode_only, run_worker

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
IMAGE_CACHE = Path.home() / ".cache" / "autolabel-operator" / "bench-images"
DEFAULT_SETTING = Setting(1, 16)  # the worker's defaults: batchSize 1, maxInFlight 16
TARGETS = {
    "heavy": {"worker_over_triton": 0.8, "worker_over_apply_model": 1.0},
    "light": {"worker_over_decode": 0.8, "worker_over_apply_model": 1.5},
}
RATIO_NAMES = {"worker_over_triton": "b/a", "worker_over_apply_model": "b/c", "worker_over_decode": "b/d"}
RSS_LIMIT_MIB = 1024.0
WRITER_TARGET = 0.8


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="distinct 640x480 JPEGs (default 512)")
    parser.add_argument(
        "--rss-sizes",
        default="2000,10000",
        help="shard sizes for the worker's peak RSS, comma-separated ('' to skip; default 2000,10000)",
    )
    parser.add_argument(
        "--scale-sizes",
        default="10000,1000000",
        help="dataset sizes for shard start-up and peak RSS at scale ('' to skip; default 10000,1000000)",
    )
    parser.add_argument(
        "--scale-stop", type=int, default=5000, help="samples a 1-shard scale run labels before SIGTERM"
    )
    parser.add_argument("--models", default=",".join(m.name for m in MODELS), help="models to measure")
    parser.add_argument(
        "--no-object-store",
        dest="object_store",
        action="store_false",
        help="skip (f), the worker reading the images from MinIO",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="the GPU settings (bench/gpu.sh sets the device): larger batches tried, the machine noted",
    )
    return parser.parse_args(argv)


def _preloaded(paths: list[Path], count: int = 64) -> npt.NDArray[np.uint8]:
    """The first ``count`` images decoded and resized to 224x224 uint8, for raw Triton."""
    rows = []
    for path in paths[:count]:
        with Image.open(path) as image:
            rows.append(np.asarray(image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)))
    stacked: npt.NDArray[np.uint8] = np.stack(rows).astype(np.uint8)
    return stacked


def _dataset(paths: list[Path], size: int) -> Any:
    """A FiftyOne dataset of ``size`` samples over ``paths`` (cycled when ``size`` is larger)."""
    import fiftyone as fo

    dataset = fo.Dataset(f"bench-{size}-{uuid.uuid4().hex[:8]}")
    dataset.add_samples(
        [fo.Sample(filepath=str(paths[index % len(paths)])) for index in range(size)], progress=False
    )
    return dataset


def _apply_model(dataset: str, model: BenchModel) -> list[dict[str, Any]]:
    """(c) in a child process: a clean torch/DataLoader state, no gRPC threads to fork."""
    settings = [f"{batch}:{workers}" for batch, workers in model.apply_model_settings]
    output = subprocess.run(
        [sys.executable, "-m", "bench.fo_models", dataset, model.name, *settings],
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise RuntimeError(f"apply_model run failed:\n{output.stdout[-3000:]}\n{output.stderr[-3000:]}")
    rows: list[dict[str, Any]] = json.loads(output.stdout.strip().splitlines()[-1])
    for row in rows:
        print(
            f"  apply_model {model.name}: batch_size {row['batchSize']}, num_workers {row['numWorkers']}: "
            f"{row['imagesPerSecond']:.1f} img/s",
            flush=True,
        )
    return rows


def _worker(
    dataset: str,
    size: int,
    url: str,
    model: BenchModel,
    setting: Setting,
    work: Path,
    bucket: BucketMedia | None = None,
) -> WorkerResult:
    media = (bucket.config(), bucket.environment()) if bucket is not None else None
    result = run_worker(dataset, size, url, model, setting, work, media=media)
    where = ", media in MinIO" if bucket is not None else ""
    print(
        f"  worker {model.name}: {setting}{where}: {result.images_per_second:.1f} img/s "
        f"({result.processed} done, {result.failed} failed, {result.seconds:.1f} s + "
        f"{result.wall_seconds - result.seconds:.1f} s start-up, peak RSS {result.peak_rss_mib:.0f} MiB)",
        flush=True,
    )
    return result


def gpu_model(model: BenchModel) -> BenchModel:
    """``model`` with the larger batches a GPU wants added to its raw sweep (both take batches of 32)."""
    wider = (Setting(32, 4), Setting(32, 8))
    return replace(model, raw_settings=tuple(dict.fromkeys((*model.raw_settings, *wider))))


def _machine(gpu: bool) -> dict[str, Any]:
    machine: dict[str, Any] = {"cpus": os.cpu_count(), "gpu": False, "note": "shared with other developers"}
    if gpu:
        device = os.environ.get("AUTOLABEL_TORCH_DEVICE", "cpu")
        query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
        found = (
            subprocess.run(query, capture_output=True, text=True, check=False) if device == "cuda" else None
        )
        machine.update(
            gpu=device == "cuda",
            device=device,
            gpus=found.stdout.strip().splitlines() if found and found.returncode == 0 else [],
        )
    return machine


def _measure_model(
    model: BenchModel,
    dataset: Any,
    images: npt.NDArray[np.uint8],
    url: str,
    work: Path,
    bucket: BucketMedia | None = None,
) -> dict[str, Any]:
    print(f"{model.name} ({model.kind}):", flush=True)
    raw = sweep(url, model, images)
    best_raw = max(raw, key=lambda row: row["imagesPerSecond"])
    best = Setting(best_raw["batch"], best_raw["inFlight"])
    # As many tries as apply_model gets: the raw optimum, the defaults, and the two config levers.
    settings = list(
        dict.fromkeys(
            [
                best,
                DEFAULT_SETTING,
                replace(best, decode_threads=3),
                replace(best, write_batch=512),
            ]
        )
    )
    workers = [_worker(dataset.name, len(dataset), url, model, s, work) for s in settings]
    best_worker = max(workers, key=lambda result: result.images_per_second)
    encoded = _worker(
        dataset.name, len(dataset), url, model, replace(best_worker.setting, encoded=True), work
    )
    decode = run_decode_only(dataset.name, url, model, best_worker.setting, work)
    print(
        f"  decode only {model.name}: {best_worker.setting}: {decode['imagesPerSecond']:.1f} img/s",
        flush=True,
    )
    from_bucket = None
    if bucket is not None:
        from_bucket = _worker(dataset.name, len(dataset), url, model, best_worker.setting, work, bucket)
    apply_rows = _apply_model(dataset.name, model)
    best_apply = max(apply_rows, key=lambda row: row["imagesPerSecond"])
    b = best_worker.images_per_second
    object_store: dict[str, Any] = {}
    if from_bucket is not None:
        object_store = {
            "workerObjectStore": from_bucket.as_dict(),
            "object_store_over_worker": from_bucket.images_per_second / b,
        }
    return object_store | {
        "kind": model.kind,
        "samples": len(dataset),
        "rawTriton": {"best": best_raw, "sweep": raw},
        "worker": {"best": best_worker.as_dict(), "runs": [w.as_dict() for w in workers]},
        "applyModel": {"best": best_apply, "runs": apply_rows},
        "decodeOnly": decode,
        "workerEncoded": encoded.as_dict(),
        "encoded_over_worker": encoded.images_per_second / b,
        "worker_over_triton": b / best_raw["imagesPerSecond"],
        "worker_over_decode": b / decode["imagesPerSecond"],
        "worker_over_apply_model": b / best_apply["imagesPerSecond"],
    }


def _table(results: dict[str, Any]) -> str:
    lines = [
        "| model | (a) raw Triton img/s | (b) worker img/s | (c) apply_model img/s | (d) decode only img/s "
        "| (e) worker, encoded input img/s | (f) worker, media in MinIO img/s | b/a | b/c | b/d | targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results["models"].items():
        raw, worker, apply = row["rawTriton"]["best"], row["worker"]["best"], row["applyModel"]["best"]
        targets = ", ".join(
            f"{RATIO_NAMES[key]} >= {value} {'met' if row[key] >= value else 'MISSED'}"
            for key, value in TARGETS[row["kind"]].items()
        )
        lines.append(
            f"| {name} ({row['kind']}) | {raw['imagesPerSecond']:.1f} (batch {raw['batch']} x "
            f"{raw['inFlight']}) | {worker['imagesPerSecond']:.1f} ({worker['setting']}) | "
            f"{apply['imagesPerSecond']:.1f} (batch_size {apply['batchSize']}, "
            f"num_workers {apply['numWorkers']}) | {row['decodeOnly']['imagesPerSecond']:.1f} | "
            f"{row['workerEncoded']['imagesPerSecond']:.1f} | {_object_store_cell(row)} | "
            f"{row['worker_over_triton']:.2f} | {row['worker_over_apply_model']:.2f} | "
            f"{row['worker_over_decode']:.2f} | {targets} |"
        )
    if "writeBack" in results:
        wb = results["writeBack"]
        lines.append("")
        lines.append(
            f"Write-back ({wb['samples']} classifications, 128 per batch): worker's writer "
            f"{wb['writerSamplesPerSecond']:.0f} samples/s, raw pymongo bulk_write "
            f"{wb['bulkWriteSamplesPerSecond']:.0f} samples/s at the same write concern "
            f"({results['writer_over_bulk_write']:.2f}x, target >= {WRITER_TARGET} "
            f"{'met' if results['writer_over_bulk_write'] >= WRITER_TARGET else 'MISSED'}), "
            f"{wb['bulkWriteDefaultConcernSamplesPerSecond']:.0f} at the server's default concern "
            f"({wb['writerSamplesPerSecond'] / wb['bulkWriteDefaultConcernSamplesPerSecond']:.2f}x)."
        )
    for row in results.get("rss", []):
        verdict = "under" if row["peakRssMiB"] < RSS_LIMIT_MIB else "OVER"
        lines.append(
            f"Worker peak RSS, {row['samples']} samples ({LIGHT.name}, {row['setting']}): "
            f"{row['peakRssMiB']:.0f} MiB "
            f"({verdict} 1 GiB), {row['imagesPerSecond']:.1f} img/s."
        )
    lines.extend(scale.table_lines(results.get("scale", [])) if results.get("scale") else [])
    return "\n".join(lines)


def _object_store_cell(row: dict[str, Any]) -> str:
    """(f) and its ratio to (b), the local-file figure; "not run" with --no-object-store."""
    if "workerObjectStore" not in row:
        return "not run"
    return f"{row['workerObjectStore']['imagesPerSecond']:.1f} ({row['object_store_over_worker']:.2f} x b)"


def _light_setting(results: dict[str, Any]) -> Setting:
    """The light model's best worker setting of this run (the defaults when it was not measured)."""
    best = results["models"].get(LIGHT.name, {}).get("worker", {}).get("best")
    if not best:
        return DEFAULT_SETTING
    return Setting(best["batch"], best["inFlight"], best["decodeThreads"], best["writeBatchSize"])


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    # SIGTERM (a timeout, Ctrl-C in a wrapper) still runs the finally below: no mongod or Triton left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from tools.services.mongo import start_mongo
    from tools.services.triton import DEFAULT_MODEL_REPOSITORY, start_triton

    work = Path(tempfile.mkdtemp(prefix="autolabel-bench-"))
    started = time.perf_counter()
    mongo = start_mongo(work / "mongo")
    os.environ.update(mongo.fiftyone_environment(database_name="autolabel-bench"))
    triton = None
    try:
        triton = start_triton(DEFAULT_MODEL_REPOSITORY, work / "triton")
        print(f"mongod {mongo.uri}, tritonserver {triton.grpc_url}; work dir {work}", flush=True)
        paths = write_bench_images(IMAGE_CACHE, args.images)
        images = _preloaded(paths)
        wanted = args.models.split(",")
        results: dict[str, Any] = {
            "startedAt": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": _machine(args.gpu),
            "images": {"count": len(paths), "size": "640x480", "source": "skimage photos, JPEG q90"},
            "models": {},
        }
        with ExitStack() as stack:
            bucket = stack.enter_context(bucket_media(paths, work)) if args.object_store else None
            for model in (gpu_model(m) for m in MODELS) if args.gpu else MODELS:
                if model.name in wanted:
                    dataset = _dataset(paths, max(model.samples, len(paths)))
                    results["models"][model.name] = _measure_model(
                        model, dataset, images, triton.grpc_url, work, bucket
                    )
        from bench import writeback

        print("write-back:", flush=True)
        results["writeBack"] = writeback.measure(_dataset(paths, 2000))
        results["writer_over_bulk_write"] = (
            results["writeBack"]["writerSamplesPerSecond"] / results["writeBack"]["bulkWriteSamplesPerSecond"]
        )
        results["rss"] = []
        sizes = [int(size) for size in args.rss_sizes.split(",") if size.strip()]
        for size in sizes:
            print(f"worker peak RSS, {size} samples:", flush=True)
            shard = _dataset(paths, size)
            results["rss"].append(
                _worker(shard.name, size, triton.grpc_url, LIGHT, _light_setting(results), work).as_dict()
            )
        scale_sizes = [int(size) for size in args.scale_sizes.split(",") if size.strip()]
        if scale_sizes:
            print("shards at scale:", flush=True)
            results["scale"] = scale.measure(
                paths, scale_sizes, triton.grpc_url, _light_setting(results), args.scale_stop, work
            )
        results["seconds"] = time.perf_counter() - started
        table = _table(results)
        results["table"] = table
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = args.results_dir / f"{stamp}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print()
        print(table)
        print(f"\nresults: {out} ({results['seconds']:.0f} s)")
    finally:
        if triton is not None:
            triton.stop()
        mongo.stop(remove_data=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
