"""``make bench-calibration``: does calibrated auto-approval keep its promise on real labelled data?

Real model, real labelled data, real stack: `models/digits_classifier` (logistic
regression trained, when Triton loads it, on one half of scikit-learn's bundled
``load_digits``) is served by a real ``tritonserver``; the real worker
(``python -m worker run``) auto-labels the *other* half (899 images it never
saw, each also shifted by one pixel in the 8 directions: 8,091 images, so every
class has some 800 labels and shifted digits give the model real errors) into a
FiftyOne dataset on a real mongod, with confidences.

Then, for each target precision and for many seeds, it does what a run with
``spec.review.autoApprove`` does: draw the verification sample
(`review.calibration.verification_sample`), let an honest reviewer decide it
(here the ground truth decides), find each class's certified threshold
(`calibrate_class`), approve the unsampled labels at or above it, and measure
the TRUE precision of those auto-approved labels against the ground truth.
It prints, per target: the mean estimated precision and lower bound, the true
precision of the auto-approved labels, the share of all labels approved without a
person, how often a class that got a threshold truly met the target, and the rate of
broken promises: class-draws whose accepted threshold let through labels below the
target, over all class-draws. The promise (fixed-sequence testing at the exact
bound) is that this rate stays at most ``1 - confidenceLevel``; the rate among
certified classes alone may be higher when certification is rare.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.models import BenchModel, Setting
from bench.worker_run import run_worker
from review.calibration import Reviewed, calibrate_class, verification_sample

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DIGITS = BenchModel(
    name="digits_classifier",
    kind="calibration",
    output="PROBABILITIES",
    output_format="probabilities",
    raw_settings=(),
    raw_images=0,
    samples=0,
    apply_model_settings=(),
)


@dataclass(frozen=True)
class Prediction:
    """One auto-label with what the ground truth says of it."""

    label_id: str
    label: str
    confidence: float
    correct: bool


def _shifted(image: np.ndarray[Any, Any], dy: int, dx: int) -> np.ndarray[Any, Any]:
    """`image` moved by (dy, dx) pixels, blank where it moved from (no wrap-around)."""
    out = np.zeros_like(image)
    height, width = image.shape
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def held_out_digits() -> tuple[list[np.ndarray[Any, Any]], list[int]]:
    """The half of load_digits the model did not train on (the split of models/digits_classifier),
    each image as it is and shifted by one pixel in each of the 8 directions."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    held_out = np.sort(order[len(digits.target) // 2 :])
    images, targets = [], []
    for index in held_out:
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                images.append(_shifted(digits.images[index], dy, dx))
                targets.append(int(digits.target[index]))
    return images, targets


def label_held_out(url: str, work: Path) -> list[Prediction]:
    """Writes the held-out digits as PNGs, builds a dataset, runs the real worker, reads the labels back."""
    import fiftyone as fo

    images, targets = held_out_digits()
    image_dir = work / "digits"
    image_dir.mkdir(parents=True, exist_ok=True)
    samples = []
    for index, (image, target) in enumerate(zip(images, targets, strict=True)):
        path = image_dir / f"{index:04d}.png"
        Image.fromarray(np.round(image * 255.0 / 16.0).astype(np.uint8), mode="L").save(path)
        samples.append(fo.Sample(filepath=str(path), ground_truth=fo.Classification(label=str(int(target)))))
    dataset = fo.Dataset(f"bench-calibration-{uuid.uuid4().hex[:8]}")
    dataset.add_samples(samples, progress=False)
    try:
        result = run_worker(dataset.name, len(samples), url, DIGITS, Setting(64, 2), work)
        if result.failed:
            raise RuntimeError(f"the worker failed {result.failed} of {len(samples)} images")
        dataset.reload()  # the worker declared its fields in another process
        field = next(name for name in dataset.get_field_schema() if name.endswith("_in_review"))
        predictions = []
        for sample_id, truth, label in zip(*dataset.values(["id", "ground_truth.label", field]), strict=True):
            if label is None:
                continue
            predictions.append(
                Prediction(sample_id, label.label, float(label.confidence), label.label == truth)
            )
        return predictions
    finally:
        dataset.delete()


def simulate(
    predictions: list[Prediction],
    target: float,
    confidence_level: float,
    per_class: int,
    bands: int,
    min_reviewed: int,
    seeds: int,
) -> dict[str, Any]:
    """Repeated verification draws at one target: estimates against the truth, per draw and class."""
    by_id = {p.label_id: p for p in predictions}
    by_class: dict[str, list[Prediction]] = defaultdict(list)
    for prediction in predictions:
        by_class[prediction.label].append(prediction)
    certified = met = class_draws = 0
    estimates, lower, true_precisions, shares = [], [], [], []
    for seed in range(seeds):
        sample = verification_sample(
            [(p.label_id, p.label, p.confidence) for p in predictions], per_class, bands, seed
        )
        sampled = set(sample)
        reviewed: dict[str, list[Reviewed]] = defaultdict(list)
        for label_id in sample:
            item = by_id[label_id]
            reviewed[item.label].append(Reviewed(item.confidence, item.correct))
        auto_approved = 0
        for label, members in by_class.items():
            class_draws += 1
            result = calibrate_class(label, reviewed[label], target, confidence_level, min_reviewed)
            if result.threshold is None:
                continue
            approved = [p for p in members if p.confidence >= result.threshold and p.label_id not in sampled]
            if not approved:
                continue
            certified += 1
            auto_approved += len(approved)
            precision = sum(p.correct for p in approved) / len(approved)
            true_precisions.append(precision)
            met += precision >= target
            assert result.precision is not None and result.lower is not None
            estimates.append(result.precision)
            lower.append(result.lower)
        shares.append(auto_approved / len(predictions))
    return {
        "targetPrecision": target,
        "confidenceLevel": confidence_level,
        "seeds": seeds,
        "classDraws": class_draws,
        "classDrawsCertified": certified,
        "brokenPromises": certified - met,
        "brokenPromiseRate": (certified - met) / class_draws if class_draws else None,
        "allowedRate": 1 - confidence_level,
        "estimatedPrecisionMean": statistics.fmean(estimates) if estimates else None,
        "lowerBoundMean": statistics.fmean(lower) if lower else None,
        "truePrecisionMean": statistics.fmean(true_precisions) if true_precisions else None,
        "truePrecisionMin": min(true_precisions) if true_precisions else None,
        "shareAutoApprovedMean": statistics.fmean(shares),
        "metTargetFraction": met / certified if certified else None,
    }


def _format(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="0.8,0.9,0.95", help="target precisions, comma-separated")
    parser.add_argument("--confidence-level", type=float, default=0.95)
    parser.add_argument("--per-class", type=int, default=100, help="verification sample per class")
    parser.add_argument("--bands", type=int, default=5, help="confidence bands of the stratified sample")
    parser.add_argument("--min-reviewed", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    from tools.services.mongo import start_mongo
    from tools.services.triton import start_triton

    work = Path(tempfile.mkdtemp(prefix="autolabel-bench-calibration-"))
    mongo = start_mongo(work / "mongo")
    os.environ.update(mongo.fiftyone_environment(database_name="autolabel-bench-calibration"))
    repository = work / "models"
    repository.mkdir()
    (repository / DIGITS.name).symlink_to(REPO_ROOT / "models" / DIGITS.name)
    triton = start_triton(repository, work / "triton")
    try:
        predictions = label_held_out(triton.grpc_url, work)
    finally:
        triton.stop()
        mongo.stop(remove_data=True)
    accuracy = sum(p.correct for p in predictions) / len(predictions)
    print(
        f"digits_classifier on {len(predictions)} held-out (and shifted) digits: "
        f"top-1 accuracy {accuracy:.3f} "
        f"(what 'approve everything' would give)",
        flush=True,
    )
    rows = [
        simulate(
            predictions,
            float(target),
            args.confidence_level,
            args.per_class,
            args.bands,
            args.min_reviewed,
            args.seeds,
        )
        for target in args.targets.split(",")
    ]
    print(
        f"\nverification sample {args.per_class} per class in {args.bands} bands, "
        f"confidence level {args.confidence_level}, {args.seeds} draws each\n"
    )
    print(
        "| target | est. precision | one-sided lower bound | true precision (mean / min) "
        "| auto-approved share | certified class-draws meeting target "
        "| broken promises (allowed) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['targetPrecision']} | {_format(row['estimatedPrecisionMean'])} "
            f"| {_format(row['lowerBoundMean'])} "
            f"| {_format(row['truePrecisionMean'])} / {_format(row['truePrecisionMin'])} "
            f"| {_format(row['shareAutoApprovedMean'])} "
            f"| {_format(row['metTargetFraction'])} of {row['classDrawsCertified']} "
            f"| {row['brokenPromises']} of {row['classDraws']} = {_format(row['brokenPromiseRate'])} "
            f"(<= {_format(row['allowedRate'], 2)}) |"
        )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.results_dir / f"calibration-{stamp}.json"
    document = {
        "model": DIGITS.name,
        "labels": len(predictions),
        "accuracy": accuracy,
        "perClass": args.per_class,
        "bands": args.bands,
        "minReviewed": args.min_reviewed,
        "targets": rows,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


if __name__ == "__main__":
    main()
