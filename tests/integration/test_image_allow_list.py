"""The image allow-list the chart passes it to the controller; a run naming another image fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.images import DEFAULT_ALLOWED_IMAGES
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest
from tools.cluster.chart import CHART

pytestmark = pytest.mark.integration


def controller_env(cluster: ClusterHandle, *values: str) -> dict[str, str]:
    rendered = cluster.helm("template", "alr", str(CHART), "--kube-version", "1.34.0", *values).stdout
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_the_chart_passes_the_list_to_the_controller(cluster: ClusterHandle) -> None:
    assert controller_env(cluster)["AUTOLABEL_ALLOWED_IMAGES"] == ",".join(DEFAULT_ALLOWED_IMAGES)
    custom = controller_env(
        cluster, "--set", "allowedImages={registry.example/triton:*,registry.example/w:*}"
    )
    assert custom["AUTOLABEL_ALLOWED_IMAGES"] == "registry.example/triton:*,registry.example/w:*"


def test_a_run_naming_another_image_fails_naming_it(
    cluster: ClusterHandle, operator: Operator, mongo: Any, triton: Any, tmp_path: Path
) -> None:
    database_secret(cluster, operator.namespace, mongo)
    dataset = new_dataset(tmp_path, 2)
    manifest = run_manifest(
        "other-image", operator.namespace, dataset.name, triton, execution={"image": "evil.example/miner:1"}
    )
    apply(cluster, manifest)
    run = operator.wait_for_phase("other-image", {"Failed", "Review"}, timeout=120)
    failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "ImageNotAllowed"), failed
    assert "spec.execution.image 'evil.example/miner:1'" in failed["message"]
    jobs = cluster.kubectl("get", "jobs", "-n", operator.namespace, "-o", "json").stdout
    assert not any(
        item["metadata"]["labels"].get("autolabel.dev/run") == "other-image"
        for item in json.loads(jobs)["items"]
    )
