"""Helpers for end-to-end runs: a dataset of real images, its database Secret, AutoLabelRun manifests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.fixtures.cluster import ClusterHandle
from tests.integration.worker_helpers import REPO_ROOT, make_dataset, write_images
from tests.waiting import wait_until


def new_dataset(tmp_path: Path, count: int) -> Any:
    return make_dataset(write_images(tmp_path / "images", count), f"e2e-{uuid.uuid4().hex[:8]}")


def database_secret(cluster: ClusterHandle, namespace: str, mongo: Any, name: str = "fiftyone-db") -> str:
    """The Secret a run names in dataset.databaseSecretRef (uri, and the database name used by tests)."""
    env = mongo.fiftyone_environment(database_name="autolabel-tests")
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"uri": env["FIFTYONE_DATABASE_URI"], "database": env["FIFTYONE_DATABASE_NAME"]},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    return name


def grpc_address(triton: Any) -> str:
    return str(triton.grpc_url).removeprefix("grpc://").removeprefix("http://")


def run_manifest(
    name: str,
    namespace: str,
    dataset: str,
    triton: Any,
    *,
    task: str = "classification",
    label_field: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {
        "classification": {
            "name": "efficientnet_lite0",
            "outputFormat": "logits",
            "tensors": {"output": "LOGITS"},
        },
        "detection": {"name": "face_detector", "outputFormat": "boxes", "classNames": ["face"]},
        "segmentation": {"name": "selfie_segmentation", "outputFormat": "mask"},
    }
    body: dict[str, Any] = {
        "task": task,
        "dataset": {"name": dataset, "target": {"all": True}, "databaseSecretRef": {"name": "fiftyone-db"}},
        "model": {"endpoint": {"address": grpc_address(triton)}, **models[task]},
        "labelField": label_field or f"{task[:5]}_{uuid.uuid4().hex[:6]}",
        "execution": {"parallelism": 2, "maxInFlight": 4, "backoffLimitPerIndex": 1},
    }
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return {
        "apiVersion": "autolabel.dev/v1alpha1",
        "kind": "AutoLabelRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def apply(cluster: ClusterHandle, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def runs_by_name(cluster: ClusterHandle, namespace: str) -> dict[str, dict[str, Any]]:
    """Every AutoLabelRun of the namespace, by name, in one request."""
    listed = json.loads(cluster.kubectl("get", "autolabelruns", "-n", namespace, "-o", "json").stdout)
    return {str(run["metadata"]["name"]): run for run in listed["items"]}


def install_crd(cluster: ClusterHandle) -> None:
    """Applies the AutoLabelRun CRD (without the chart) and waits until the API server serves it."""
    crd = REPO_ROOT / "crds" / "autolabelrun.yaml"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    wait_for_crd(cluster, "autolabelruns.autolabel.dev")


def wait_for_crd(cluster: ClusterHandle, name: str) -> None:
    """Until the CRD is Established and its resource is discovered. `kubectl wait` alone fails at once
    on a CRD just created, whose status has no conditions yet (seen on a loaded machine)."""

    def established() -> bool:
        done = cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{name}", "--timeout=5s", check=False
        )
        return done.returncode == 0

    wait_until(f"the CRD {name} established", established)
    wait_until(f"{name} discovered", lambda: cluster.kubectl("get", name, "-A", check=False).returncode == 0)
