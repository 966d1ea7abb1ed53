"""Calibrated auto-approval end to end, on real labelled data through Kubernetes.

The real controller runs a `spec.review.autoApprove` run of the real digits
classifier (`models/digits_classifier`, served by the real Triton) over the
899 held-out `load_digits` images it never trained on; the run's review agent
draws the verification sample; a person reviews that sample (the ground truth
decides, as an honest reviewer would); the agent certifies thresholds and
approves what they cover; `autolabel status` prints the table; the CLI
finalizes, every kept label says who approved it, and the verification view is gone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bench.calibration import held_out_digits
from contract.review import APPROVED_BY_ATTRIBUTE, APPROVED_TAG, REJECTED_TAG
from review.auto_approve import AUTO_APPROVED_ATTRIBUTE, VERIFICATION_ATTRIBUTE
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, run_manifest
from tests.integration.test_review_flow import autolabel, review_of, wait_for

pytestmark = pytest.mark.integration
AUTO_APPROVE = {
    "targetPrecision": 0.85,  # the first threshold tested needs 30 reviewed labels above it
    "confidenceLevel": 0.95,
    "minReviewedPerClass": 20,
    "samplePerClass": 60,  # of some 90 labels per class
    "confidenceBands": 4,
}


def digits_dataset(directory: Path) -> Any:
    """The held-out digits as PNG files, each with its true digit in ``ground_truth``."""
    import uuid

    import fiftyone as fo

    images, targets = held_out_digits()
    directory.mkdir(parents=True)
    samples = []
    for index in range(4, len(images), 9):  # the unshifted image of each held-out digit
        path = directory / f"{index:04d}.png"
        Image.fromarray(np.round(images[index] * 255.0 / 16.0).astype(np.uint8), mode="L").save(path)
        samples.append(
            fo.Sample(filepath=str(path), ground_truth=fo.Classification(label=str(targets[index])))
        )
    dataset = fo.Dataset(f"e2e-digits-{uuid.uuid4().hex[:8]}")
    dataset.add_samples(samples, progress=False)
    return dataset


def staged(dataset: Any, field: str) -> list[dict[str, Any]]:
    dataset.reload()
    rows = []
    for sample in dataset.select_fields(["ground_truth", field]):
        label = sample[field]
        if label is None:
            continue
        rows.append(
            {
                "id": label.id,
                "label": label.label,
                "confidence": label.confidence,
                "right": label.label == sample.ground_truth.label,
                "rank": label[VERIFICATION_ATTRIBUTE] if label.has_field(VERIFICATION_ATTRIBUTE) else None,
                "auto": label[AUTO_APPROVED_ATTRIBUTE] if label.has_field(AUTO_APPROVED_ATTRIBUTE) else None,
                "tags": list(label.tags),
            }
        )
    return rows


def test_reviewed_sample_certifies_and_finalize_records_who_approved(
    cluster: ClusterHandle, operator: Operator, triton: Any, mongo: Any, tmp_path: Path
) -> None:
    database_secret(cluster, operator.namespace, mongo)
    dataset = digits_dataset(tmp_path / "digits")
    name, namespace = "calibrated", operator.namespace
    manifest = run_manifest(
        name,
        namespace,
        dataset.name,
        triton,
        model={
            "name": "digits_classifier",
            "outputFormat": "probabilities",
            "tensors": {"output": "PROBABILITIES"},
        },
        review={"refreshIntervalSeconds": 5, "autoApprove": AUTO_APPROVE},
    )
    staging = f"{manifest['spec']['labelField']}_in_review"
    apply(cluster, manifest)
    run = operator.wait_for_phase(name, {"Review", "Failed"}, timeout=420)
    assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)
    run = wait_for(operator, name, lambda s: (review_of(s).get("calibration") or {}).get("sampleSize", 0) > 0)
    uid = run["metadata"]["uid"]
    calibration = run["status"]["review"]["calibration"]
    labels = staged(dataset, staging)
    sample = [row for row in labels if row["rank"] is not None]
    assert calibration["sampleSize"] == len(sample) and calibration["reviewed"] == 0
    assert len({row["label"] for row in sample}) == 10  # every digit is in the sample
    assert calibration["autoApproved"] == 0
    assert dataset.has_saved_view(calibration["savedView"])

    # The person reviews the verification sample honestly, from its saved view.
    shown = dataset.load_saved_view(calibration["savedView"]).values(f"{staging}.id")
    assert sorted(shown) == sorted(row["id"] for row in sample)
    right = [row["id"] for row in sample if row["right"]]
    wrong = [row["id"] for row in sample if not row["right"]]
    dataset.select_labels(ids=right, fields=staging).tag_labels(APPROVED_TAG, staging)
    if wrong:
        dataset.select_labels(ids=wrong, fields=staging).tag_labels(REJECTED_TAG, staging)

    run = wait_for(
        operator,
        name,
        lambda s: (
            (review_of(s).get("calibration") or {}).get("reviewed") == len(sample)
            and (review_of(s).get("calibration") or {}).get("autoApproved", 0) > 0
        ),
        timeout=180,
    )
    calibration = run["status"]["review"]["calibration"]
    thresholds = {row["name"]: row.get("threshold") for row in calibration["classes"]}
    certified = {name for name, threshold in thresholds.items() if threshold is not None}
    assert certified, calibration
    for row in calibration["classes"]:
        if row["name"] in certified:
            assert row["lowerBound"] >= AUTO_APPROVE["targetPrecision"]
    labels = staged(dataset, staging)
    auto = [row for row in labels if row["auto"] is not None]
    assert len(auto) == calibration["autoApproved"]
    for row in auto:
        assert row["rank"] is None and APPROVED_TAG in row["tags"]
        assert row["label"] in certified and row["confidence"] >= thresholds[row["label"]]
    true_precision = sum(row["right"] for row in auto) / len(auto)
    print(f"auto-approved {len(auto)} of {len(labels)} labels, true precision {true_precision:.3f}")

    table = autolabel(cluster, namespace, "status", name)
    assert table.returncode == 0, table.stderr
    assert "Calibrated auto-approval: target precision 0.850" in table.stdout
    assert f"{calibration['autoApproved']} labels auto-approved" in table.stdout
    first = sorted(certified)[0]
    lines = table.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("CLASS") and "THRESHOLD" in line)
    line = next(line for line in lines[header + 1 :] if line.split()[:1] == [first])
    assert f"{thresholds[first]:.3f}" in line

    done = autolabel(cluster, namespace, "finalize", name)
    assert done.returncode == 0, done.stderr
    run = operator.wait_for_phase(name, {"Finalized", "Failed"}, timeout=180)
    assert run["status"]["phase"] == "Finalized", json.dumps(run["status"], indent=1)
    assert run["status"]["finalized"]["promoted"] == len(right) + len(auto)
    dataset.reload()
    kept = [label for label in dataset.values(manifest["spec"]["labelField"]) if label is not None]
    by = [label[APPROVED_BY_ATTRIBUTE] for label in kept]
    assert by.count("calibration") == len(auto) and by.count("person") == len(right)
    assert {label["autolabel_run"] for label in kept} == {uid}
    assert not dataset.has_saved_view(calibration["savedView"])  # finalize removes the run's review aids
