"""Media and masks in object storage, end to end against a real MinIO (built from its Go module).

Real control plane, controller, worker pods (local pod runner), Triton and mongod; the
images live only in a MinIO bucket, the worker reads them through a path rewrite with the
keys of a Secret named in ``dataset.media.s3``, and a segmentation run PUTs its masks there.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, run_manifest
from tests.integration.worker_helpers import make_dataset, write_images
from tools.services.minio import MinioServer

pytestmark = pytest.mark.integration

LOCAL_ROOT = "/autolabel-not-mounted"
"""The dataset's stored prefix: nothing is there, the rewrite sends every read to the bucket."""


@pytest.fixture
def secret(cluster: ClusterHandle, operator: Operator, mongo: Any) -> str:
    return database_secret(cluster, operator.namespace, mongo)


def s3_secret(cluster: ClusterHandle, namespace: str, keys: dict[str, str], name: str) -> str:
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": keys,
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    return name


def bucket_dataset(minio: MinioServer, tmp_path: Path, count: int, *, missing: int = 0) -> tuple[Any, str]:
    """A dataset whose ``count`` images lie only in a new bucket (the last ``missing`` never uploaded)."""
    bucket = f"media-{uuid.uuid4().hex[:8]}"
    client = minio.client()
    client.create_bucket(Bucket=bucket)
    paths = write_images(tmp_path / "images", count)
    for path in paths[: count - missing]:
        client.upload_file(str(path), bucket, f"images/{path.name}")
    dataset = make_dataset([Path(LOCAL_ROOT) / bucket / path.name for path in paths])
    return dataset, bucket


def media(minio: MinioServer, bucket: str, credentials: str) -> dict[str, Any]:
    return {
        "s3": {"endpoint": minio.endpoint, "credentialsSecretRef": {"name": credentials}, "concurrency": 8},
        "pathRewrites": [
            {"datasetPrefix": f"{LOCAL_ROOT}/{bucket}/", "mountPrefix": f"s3://{bucket}/images/"}
        ],
    }


@dataclass
class BucketRun:
    run: dict[str, Any]
    dataset: Any
    bucket: str
    credentials: str


@dataclass
class BucketRuns:
    """Starts runs whose images lie only in a new bucket, read with the keys of a Secret."""

    cluster: ClusterHandle
    operator: Operator
    triton: Any
    minio: MinioServer
    tmp_path: Path

    def finished(
        self, name: str, count: int, *, missing: int = 0, keys: dict[str, str] | None = None, **spec: Any
    ) -> BucketRun:
        """The run once in Review or Failed; ``keys``: the Secret's (default MinIO's own)."""
        dataset, bucket = bucket_dataset(self.minio, self.tmp_path, count, missing=missing)
        namespace = self.operator.namespace
        credentials = s3_secret(self.cluster, namespace, keys or self.minio.credentials_env(), f"{name}-s3")
        if "maskDir" in spec:
            spec["maskDir"] = spec["maskDir"].format(bucket=bucket)
        manifest = run_manifest(name, namespace, dataset.name, self.triton, **spec)
        manifest["spec"]["dataset"]["media"] = media(self.minio, bucket, credentials)
        apply(self.cluster, manifest)
        return BucketRun(
            self.operator.wait_for_phase(name, {"Review", "Failed"}), dataset, bucket, credentials
        )


@pytest.fixture
def bucket_runs(
    cluster: ClusterHandle, operator: Operator, triton: Any, minio: MinioServer, secret: str, tmp_path: Path
) -> BucketRuns:
    return BucketRuns(cluster, operator, triton, minio, tmp_path)


def pod_logs(cluster: ClusterHandle, run_name: str) -> str:
    assert cluster.cluster is not None
    logs = sorted((cluster.cluster.state_dir / "pod-logs").glob(f"*{run_name}*.log"))
    return "\n".join(path.read_text(errors="replace") for path in logs)


def test_a_run_reads_its_media_from_a_bucket(bucket_runs: BucketRuns) -> None:
    started = bucket_runs.finished("from-bucket", 6)
    run, dataset = started.run, started.dataset
    assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)
    assert run["status"]["progress"]["processed"] == 6 and run["status"]["progress"]["failed"] == 0
    dataset.reload()
    labels = dataset.values(run["status"]["reviewField"])
    assert len(labels) == 6 and all(label is not None and 0 <= label.confidence <= 1 for label in labels)
    # The keys travel only through the Secret: neither the snapshot nor the Job holds them.
    uid, minio = run["metadata"]["uid"], bucket_runs.minio
    children = bucket_runs.cluster.kubectl(
        "get", "configmap,job", "-n", bucket_runs.operator.namespace, "-o", "json"
    ).stdout
    assert minio.secret_key not in children and uid in children
    config = next(
        json.loads(item["data"]["worker.json"])
        for item in json.loads(children)["items"]
        if uid in (item.get("data") or {}).get("worker.json", "")
    )
    assert config["objectStore"] == {
        "credentialsSecret": started.credentials,
        "endpoint": minio.endpoint,
        "fetchConcurrency": 8,
        "pathStyle": True,
    }


def test_a_segmentation_run_writes_its_masks_to_a_bucket_and_discard_removes_them(
    bucket_runs: BucketRuns,
) -> None:
    name = "masks-to-bucket"
    started = bucket_runs.finished(name, 4, task="segmentation", maskDir="s3://{bucket}/masks")
    run, dataset, bucket = started.run, started.dataset, started.bucket
    assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)
    uid = run["metadata"]["uid"]
    client = bucket_runs.minio.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"masks/{uid}/").get("Contents") or []
    keys = sorted(item["Key"] for item in listed)
    assert keys == sorted(f"masks/{uid}/{sample_id}.png" for sample_id in dataset.values("id"))
    dataset.reload()
    labels = dataset.values(run["status"]["reviewField"])
    assert sorted(label.mask_path for label in labels) == [f"s3://{bucket}/{key}" for key in keys]
    assert all(label.mask is None for label in labels)
    body = client.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    mask = np.asarray(Image.open(io.BytesIO(body)))
    assert mask.ndim == 2 and mask.size > 0

    namespace = bucket_runs.operator.namespace
    patch = '{"spec": {"discard": true}}'
    bucket_runs.cluster.kubectl("patch", "alr", name, "-n", namespace, "--type=merge", "-p", patch)
    run = bucket_runs.operator.wait_for_phase(name, {"Discarded", "Failed"}, timeout=180)
    assert run["status"]["phase"] == "Discarded", json.dumps(run["status"], indent=1)
    assert not client.list_objects_v2(Bucket=bucket, Prefix=f"masks/{uid}/").get("Contents")
    assert client.list_objects_v2(Bucket=bucket, Prefix="images/")["KeyCount"] == 4  # the media stay


def test_a_missing_object_is_a_failed_sample_naming_bucket_and_key(bucket_runs: BucketRuns) -> None:
    name = "missing-object"
    started = bucket_runs.finished(name, 4, missing=1)
    run = started.run
    assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)
    progress = run["status"]["progress"]
    assert (progress["processed"], progress["failed"], progress["total"]) == (3, 1, 4)  # labeled, failed
    missing = Path(started.dataset.values("filepath")[-1]).name
    logs = pod_logs(bucket_runs.cluster, name)
    expected = f"reason='object not found' detail='s3://{started.bucket}/images/{missing}'"
    assert expected in logs, logs[-3000:]


def test_wrong_credentials_fail_the_run_naming_the_bucket_never_the_secret(bucket_runs: BucketRuns) -> None:
    minio, name = bucket_runs.minio, "wrong-keys"
    wrong = {"AWS_ACCESS_KEY_ID": minio.access_key, "AWS_SECRET_ACCESS_KEY": f"wrong-{uuid.uuid4().hex}"}
    started = bucket_runs.finished(
        name, 2, keys=wrong, execution={"parallelism": 1, "backoffLimitPerIndex": 0}
    )
    run = started.run
    assert run["status"]["phase"] == "Failed", json.dumps(run["status"], indent=1)
    failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    status = json.dumps(run["status"])
    assert f"access to bucket '{started.bucket}' denied (SignatureDoesNotMatch)" in failed["message"], status
    assert f"Secret '{started.credentials}'" in failed["message"]  # the Secret is named, its keys never shown
    assert wrong["AWS_SECRET_ACCESS_KEY"] not in status and minio.secret_key not in status
    assert wrong["AWS_SECRET_ACCESS_KEY"] not in pod_logs(bucket_runs.cluster, name)
