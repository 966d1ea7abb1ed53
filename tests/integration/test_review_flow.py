"""Review end to end: a run reaches Review, decisions arrive through the App (label tags in FiftyOne),
GitOps (spec rules) and the `autolabel` CLI, a per-class undo, then the CLI finalizes it.

Real control plane, the real controller with the chart's RBAC, real worker pods, Triton and FiftyOne.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest
from tests.integration.worker_helpers import REPO_ROOT

pytestmark = pytest.mark.integration
APPROVED = "autolabel:approved"


@pytest.fixture
def secret(cluster: ClusterHandle, operator: Operator, mongo: Any) -> str:
    return database_secret(cluster, operator.namespace, mongo)


def autolabel(cluster: ClusterHandle, namespace: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, with the admin kubeconfig."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "-n",
            namespace,
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )


def wait_for(
    operator: Operator, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 120
) -> Any:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = operator.get_run(name)
        if check(run.get("status") or {}):
            return run
        time.sleep(1)
    raise AssertionError(
        f"{name}: condition not met in {timeout}s; status {json.dumps(run.get('status'), indent=1)}\n"
        f"{operator.log_tail()}"
    )


def review_of(status: dict[str, Any]) -> dict[str, Any]:
    return dict(status.get("review") or {})


def test_review_with_app_gitops_and_cli_then_finalize(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 6)
    name, namespace = "review-flow", operator.namespace
    manifest = run_manifest(
        name,
        namespace,
        dataset.name,
        triton,
        review={"refreshIntervalSeconds": 5},
        model={"embeddings": {"output": "EMBEDDINGS"}},
    )
    label_field = manifest["spec"]["labelField"]
    staging = f"{label_field}_in_review"
    apply(cluster, manifest)
    operator.wait_for_phase(name, {"Review", "Failed"}, timeout=300)
    run = wait_for(
        operator, name, lambda s: review_of(s).get("total") == 6 and bool(review_of(s).get("savedViews"))
    )
    review = run["status"]["review"]
    uid8 = run["metadata"]["uid"].replace("-", "")[:8]
    brain_key = f"autolabel_review_flow_{uid8}"
    assert review["brainKey"] == brain_key and review["unreviewed"] == 6
    assert review["rulesAppliedGeneration"] == run["metadata"]["generation"]
    dataset.reload()
    assert f"autolabel-review-flow-{uid8}-predictions" in dataset.list_saved_views()
    assert review["savedViews"][0] == f"autolabel-review-flow-{uid8}-predictions"
    assert dataset.has_brain_run(brain_key)

    # App: a reviewer approves the first sample's label and flags it for correction.
    first = dataset.first()
    first_class = first[staging].label
    tagged = time.monotonic()
    dataset.select(first.id).tag_labels(APPROVED, label_fields=staging)
    dataset.select(first.id).tag_labels("needs_correction", label_fields=staging)
    wait_for(operator, name, lambda s: review_of(s).get("approved") == 1)
    # The review agent sees the App's tag within refreshIntervalSeconds (5) + 10 s.
    assert time.monotonic() - tagged <= 5 + 10
    assert review_of(operator.get_run(name)["status"])["problemTags"]["needs_correction"] == 1

    # CLI: approve another class, look at the table, then undo that class.
    counts = {c["name"]: c["count"] for c in review_of(operator.get_run(name)["status"])["classes"]}
    other = next(c for c in sorted(counts) if c != first_class)
    done = autolabel(cluster, namespace, "approve", name, "--class", other)
    assert done.returncode == 0, done.stderr
    wait_for(operator, name, lambda s: review_of(s).get("approved") == 1 + counts[other])
    table = autolabel(cluster, namespace, "status", name).stdout
    assert "CLASS" in table and other in table and "needs_correction=1" in table
    listed = autolabel(cluster, namespace, "list").stdout
    assert name in listed and "Review" in listed
    assert autolabel(cluster, namespace, "undo", name, "--class", other).returncode == 0
    wait_for(operator, name, lambda s: review_of(s).get("approved") == 1)
    assert operator.get_run(name)["spec"]["review"]["approve"] == []

    # GitOps: the same decision as a rule in the manifest, applied with kubectl.
    manifest["spec"]["review"] = {"refreshIntervalSeconds": 5, "approve": [{"classes": [other]}]}
    apply(cluster, manifest)
    wait_for(operator, name, lambda s: review_of(s).get("approved") == 1 + counts[other])

    # CLI: finalize.
    done = autolabel(cluster, namespace, "finalize", name)
    assert done.returncode == 0, done.stderr
    run = operator.wait_for_phase(name, {"Finalized", "Failed"}, timeout=180)
    assert run["status"]["phase"] == "Finalized", json.dumps(run["status"], indent=1)
    kept = 1 + counts[other]
    assert run["status"]["finalized"] == {"promoted": kept, "discarded": 6 - kept}
    events = cluster.kubectl(
        "get", "events", "-n", namespace, f"--field-selector=involvedObject.name={name}", "-o", "json"
    ).stdout
    # Finalizing was written (and announced) before the finalize work started, not only after.
    assert {"PhaseFinalizing", "PhaseFinalized"} <= {e["reason"] for e in json.loads(events)["items"]}
    dataset.reload()
    assert not dataset.has_sample_field(staging) and not dataset.has_sample_field(f"{staging}_run")
    labels = [label for label in dataset.values(label_field) if label is not None]
    assert sorted(label.label for label in labels) == sorted([first_class] + [other] * counts[other])
    assert dataset.count_label_tags(label_field) == {APPROVED: kept, "needs_correction": 1}
    assert dataset.list_saved_views() == [] and not dataset.has_brain_run(brain_key)
    again = autolabel(cluster, namespace, "approve", name, "--class", other)
    assert again.returncode == 4 and "phase Finalized" in again.stderr


def test_cli_refuses_bad_input_and_discards_a_failed_run(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    namespace = operator.namespace
    missing = autolabel(cluster, namespace, "status", "no-such-run")
    assert missing.returncode == 3 and "autolabelrun 'no-such-run' not found" in missing.stderr
    dataset = new_dataset(tmp_path, 2)
    manifest = run_manifest("review-broken", namespace, dataset.name, triton)
    manifest["spec"]["dataset"]["name"] = "no-such-dataset"
    apply(cluster, manifest)
    operator.wait_for_phase("review-broken", {"Failed"}, timeout=120)
    early = autolabel(cluster, namespace, "finalize", "review-broken")
    assert early.returncode == 4 and "cannot finalize run 'review-broken' in phase Failed" in early.stderr
    bad = autolabel(cluster, namespace, "approve", "review-broken", "--min-confidence", "2.0")
    assert bad.returncode == 2 and "2.0 is outside 0..1" in bad.stderr
    assert operator.get_run("review-broken")["spec"].get("finalize") is False
    assert autolabel(cluster, namespace, "discard", "review-broken").returncode == 0
    run = operator.wait_for_phase("review-broken", {"Discarded"}, timeout=120)
    assert run["status"]["discarded"] == {"removed": 0}
