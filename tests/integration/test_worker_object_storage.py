"""The worker's object-storage reads and writes against a real MinIO: s3:// and presigned http(s) URLs.

The worker runs as a Job pod runs it (credentials in its environment, as the pod spec
puts them), against the session's real Triton, mongod and MinIO; the reader's
concurrency and the mask objects' life cycle are checked in-process on the same server.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract.review import APPROVED_TAG
from contract.worker import InputLayout, ObjectStoreConfig, WorkerConfig
from inference.adapters import SegmentationPrediction
from inference.decode import DecodeBudget, Preprocessor
from inference.decode_stage import DecodeStage
from inference.model_spec import InputSpec
from inference.writer import PredictionWriter, SampleResult
from runtime.errors import DecodeError, FatalError
from runtime.storage import ObjectStore
from tests.integration.test_field_claims import SEG_MODEL, new_dataset, probe, run_config
from tests.integration.worker_helpers import (
    classifier_model,
    make_dataset,
    run_command,
    run_worker,
    worker_config,
    write_images,
)
from tools.services.minio import MinioServer

pytestmark = pytest.mark.integration


def uploaded(minio: MinioServer, tmp_path: Path, count: int) -> tuple[str, list[str]]:
    """A new bucket holding ``count`` JPEGs; their keys."""
    bucket = f"worker-{uuid.uuid4().hex[:8]}"
    client = minio.client()
    client.create_bucket(Bucket=bucket)
    keys = []
    for path in write_images(tmp_path / "images", count):
        client.upload_file(str(path), bucket, f"photos/{path.name}")
        keys.append(f"photos/{path.name}")
    return bucket, keys


def store_of(minio: MinioServer, **settings: Any) -> ObjectStore:
    return ObjectStore(ObjectStoreConfig(endpoint=minio.endpoint, **settings))


def test_the_worker_labels_s3_urls_and_presigned_http_urls_stored_in_the_dataset(
    mongo: Any, triton: Any, minio: MinioServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, keys = uploaded(minio, tmp_path, 6)
    client = minio.client()
    presigned = [
        client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
        for key in keys[3:]
    ]
    urls = [f"s3://{bucket}/{key}" for key in keys[:3]] + presigned
    dataset = make_dataset(write_images(tmp_path / "placeholders", 6))
    dataset.set_values("filepath", urls)  # as stored by tools that keep cloud paths (no normalisation)
    for key, value in minio.credentials_env().items():
        monkeypatch.setenv(key, value)
    config = worker_config(
        dataset.name,
        classifier_model(triton.grpc_url),
        "classification",
        objectStore={"endpoint": minio.endpoint},
    )
    code, output = run_worker(config, 0, tmp_path)
    assert code == 0, output
    assert "state=Succeeded processed=6/6 failed=0" in output, output
    dataset.reload()
    assert dataset.values("filepath") == urls
    assert all(uid == config["run"]["uid"] for uid in dataset.values("auto_in_review_run"))


def test_reads_keep_many_requests_in_flight_within_the_bound(
    mongo: Any, minio: MinioServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, keys = uploaded(minio, tmp_path, 24)
    dataset = make_dataset(write_images(tmp_path / "placeholders", 24))
    dataset.set_values("filepath", [f"s3://{bucket}/{key}" for key in keys])
    for key, value in minio.credentials_env().items():
        monkeypatch.setenv(key, value)
    config = WorkerConfig.model_validate(
        worker_config(
            dataset.name,
            classifier_model("127.0.0.1:1"),
            "classification",
            objectStore={"endpoint": minio.endpoint, "fetchConcurrency": 6},
        )
    )

    class SlowStore(ObjectStore):
        """The real store, each GET held 50 ms longer (network latency), counting GETs in flight."""

        def __init__(self) -> None:
            super().__init__(config.object_store)
            self.now = self.peak = 0
            self.lock = threading.Lock()

        def read(self, url: str) -> bytes:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                time.sleep(0.05)
                return super().read(url)
            finally:
                with self.lock:
                    self.now -= 1

    store = SlowStore()
    spec = InputSpec("input", "UINT8", InputLayout.NHWC, 32, 32, True)
    failures: list[str] = []
    stage = DecodeStage(
        config,
        dataset,
        Preprocessor(spec),
        DecodeBudget(batch_size=4, window=2, in_flight=1, fetch_window=6),
        lambda sample_id, error: failures.append(error.reason),
        store,
    )

    async def consume() -> list[str]:
        return [image.sample_id async for image in stage.images(dataset.values("id"))]

    done = asyncio.run(consume())
    assert done == dataset.values("id") and failures == []  # in order, every one
    assert 2 < store.peak <= 6  # many GETs at once: the fetch window bounds them, not the decode window (2)


def test_a_missing_object_or_bad_keys_name_the_bucket_and_key(minio: MinioServer, tmp_path: Path) -> None:
    bucket, keys = uploaded(minio, tmp_path, 1)
    good = store_of(minio)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in minio.credentials_env().items():
            patch.setenv(key, value)
        assert good.read(f"s3://{bucket}/{keys[0]}")[:2] == b"\xff\xd8"  # a JPEG
        with pytest.raises(DecodeError) as missing:
            good.read(f"s3://{bucket}/photos/nothing.jpg")
        assert (missing.value.reason, missing.value.detail) == (
            "object not found",
            f"s3://{bucket}/photos/nothing.jpg",
        )
        with pytest.raises(FatalError, match=f"bucket 'no-{bucket}' does not exist"):
            good.read(f"s3://no-{bucket}/{keys[0]}")
        url = minio.client().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "photos/nothing.jpg"}, ExpiresIn=60
        )
        with pytest.raises(DecodeError) as missing_http:
            good.read(url)
        assert missing_http.value.detail == f"{minio.endpoint}/{bucket}/photos/nothing.jpg"  # no signature
    wrong_secret = f"wrong-{uuid.uuid4().hex}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", minio.access_key)
        patch.setenv("AWS_SECRET_ACCESS_KEY", wrong_secret)
        bad = store_of(minio, credentials_secret="media-keys")
        with pytest.raises(FatalError) as denied:
            bad.read(f"s3://{bucket}/{keys[0]}")
    message = str(denied.value)
    assert f"access to bucket '{bucket}' denied (SignatureDoesNotMatch)" in message
    assert (
        "Secret 'media-keys'" in message and wrong_secret not in message and minio.secret_key not in message
    )


def test_masks_are_written_whole_listed_and_deleted_within_the_runs_prefix(
    minio: MinioServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in minio.credentials_env().items():
        monkeypatch.setenv(key, value)
    bucket, _ = uploaded(minio, tmp_path, 1)
    store = store_of(minio)
    for index in range(3):
        store.put(f"s3://{bucket}/masks/run-a/{index}.png", b"png", "image/png")
    store.put(f"s3://{bucket}/masks/run-ab/0.png", b"other run", "image/png")
    listed = sorted(store.list(f"s3://{bucket}/masks/run-a/"))
    assert listed == [f"s3://{bucket}/masks/run-a/{index}.png" for index in range(3)]
    store.delete(listed[:2])
    assert list(store.list(f"s3://{bucket}/masks/run-a/")) == listed[2:]
    assert list(store.list(f"s3://{bucket}/masks/run-ab/")) == [f"s3://{bucket}/masks/run-ab/0.png"]


def test_finalize_and_discard_remove_the_mask_objects_no_kept_label_references(
    mongo: Any, minio: MinioServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in minio.credentials_env().items():
        monkeypatch.setenv(key, value)  # the commands below inherit them, as step pods get them
    bucket, _ = uploaded(minio, tmp_path, 1)
    dataset = new_dataset(tmp_path, samples=3)
    ids = dataset.values("id")
    store = {"endpoint": minio.endpoint}
    masks = f"s3://{bucket}/masks"
    config = run_config(
        dataset, "seg", "seg", model=SEG_MODEL, task="segmentation", maskDir=masks, objectStore=store
    )
    assert probe(config)["ok"] is True
    worker = WorkerConfig.model_validate(config)
    mask = np.zeros((4, 4), dtype=np.uint8)
    PredictionWriter(dataset, worker).write(
        [SampleResult(sample_id, SegmentationPrediction(mask, 0.8, ("bg",))) for sample_id in ids]
    )
    objects = ObjectStore(worker.object_store)
    run_prefix = f"{masks}/{worker.run.uid}/"
    assert sorted(objects.list(run_prefix)) == sorted(f"{run_prefix}{sample_id}.png" for sample_id in ids)
    dataset.reload()
    assert sorted(dataset.values("seg_in_review.mask_path")) == sorted(objects.list(run_prefix))
    dataset.select(ids[0]).tag_labels(APPROVED_TAG, label_fields="seg_in_review")
    assert run_command(config, "finalize") == {"promoted": 1, "discarded": 2}
    dataset.reload()
    assert dataset.values("seg.mask_path")[0] == f"{run_prefix}{ids[0]}.png"
    assert list(objects.list(run_prefix)) == [f"{run_prefix}{ids[0]}.png"]
    assert run_command(config, "finalize") == {"promoted": 1, "discarded": 2}  # rerun: nothing else goes
    assert list(objects.list(run_prefix)) == [f"{run_prefix}{ids[0]}.png"]

    other = run_config(
        dataset, "seg2", "seg2", model=SEG_MODEL, task="segmentation", maskDir=masks, objectStore=store
    )
    assert probe(other)["ok"] is True
    PredictionWriter(dataset, WorkerConfig.model_validate(other)).write(
        [SampleResult(sample_id, SegmentationPrediction(mask, 0.8, ("bg",))) for sample_id in ids]
    )
    assert run_command(other, "discard") == {"removed": 3}
    assert not list(objects.list(f"{masks}/{other['run']['uid']}/"))
    assert list(objects.list(run_prefix)) == [f"{run_prefix}{ids[0]}.png"]  # the kept label's mask stays
