"""Unit tests of media in object storage: the spec, the pods' credentials, the worker's settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from contract.worker import InputLayout, ObjectStoreConfig, PathRewrite
from controller.api import parse_spec
from controller.builders import snapshot_config_map, worker_job
from controller.steps import Step, step_job
from controller.worker_contract import worker_config
from inference.decode import decode_budget, rewrite_path
from inference.model_spec import InputSpec
from runtime.storage import split_s3_url

METADATA = {"name": "bucket-run", "namespace": "team-a", "uid": "uid-1", "generation": 1}


def spec(media: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    dataset: dict[str, Any] = {"name": "d", "target": {"all": True}, "databaseSecretRef": {"name": "db"}}
    if media is not None:
        dataset["media"] = media
    return {
        "task": "segmentation",
        "dataset": dataset,
        "model": {"endpoint": {"address": "t:8001"}, "name": "seg", "outputFormat": "mask"},
        "labelField": "masks",
        **changes,
    }


S3 = {
    "s3": {
        "endpoint": "http://minio.storage:9000/",
        "region": "eu-west-1",
        "credentialsSecretRef": {"name": "keys"},
    },
    "pathRewrites": [{"datasetPrefix": "/data/", "mountPrefix": "s3://photos/raw/"}],
}


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container["env"]}


def test_credentials_reach_worker_and_step_pods_only_as_secret_references() -> None:
    run = parse_spec(spec(S3, maskDir="s3://photos/masks"))
    job = worker_job(METADATA, run, default_image="img", service_account="w", command=["w", "run"])
    step = Step("finalize", "finalize-g1-0", ("finalize",), 1)
    step_pod = step_job(METADATA, run, step, image="img", service_account="w", command=["w"])
    for pod, optional in ((job, False), (step_pod, True)):
        spec_of_pod = pod["spec"]["template"]["spec"]
        env = env_of(spec_of_pod["containers"][0])
        may_lack = {"optional": True} if optional else {}  # a step names a missing Secret itself
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "keys", "key": key} | may_lack
        assert env["AWS_SESSION_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
        assert all("value" not in entry for name, entry in env.items() if name.startswith("AWS_"))
        assert not any(volume.get("persistentVolumeClaim") for volume in spec_of_pod["volumes"])


def test_the_worker_gets_endpoint_region_and_addressing_never_keys() -> None:
    run = parse_spec(spec(S3, maskDir="s3://photos/masks"))
    config = worker_config(METADATA, run)
    assert config.object_store == ObjectStoreConfig(
        endpoint="http://minio.storage:9000",
        region="eu-west-1",
        path_style=True,
        credentials_secret="keys",
        fetch_concurrency=32,
    )
    assert config.mask_dir == "s3://photos/masks"
    assert config.media_path_rewrite == [PathRewrite(**{"from": "/data/", "to": "s3://photos/raw/"})]
    assert "AWS_" not in snapshot_config_map(METADATA, run)["data"]["worker.json"]


def test_workload_identity_on_aws_uses_virtual_hosted_buckets_and_no_secret() -> None:
    run = parse_spec(spec({"s3": {"region": "us-west-2"}}))
    job = worker_job(METADATA, run, default_image="img", service_account="w", command=["w", "run"])
    assert not any(
        name.startswith("AWS_") for name in env_of(job["spec"]["template"]["spec"]["containers"][0])
    )
    assert worker_config(METADATA, run).object_store == ObjectStoreConfig(
        region="us-west-2", path_style=False
    )


@pytest.mark.parametrize(
    ("media", "mask_dir", "message"),
    [
        (
            {"persistentVolumeClaim": {"claimName": "m", "mountPath": "/m", "readOnly": False}},
            "s3://b1/x",
            "s3",
        ),
        (S3, "/media/masks", "writable dataset.media volume"),
        (S3, "s3://B_1/x", "maskDir"),
        ({}, None, "media needs persistentVolumeClaim, s3 or pathRewrites"),
        ({"pathRewrites": [{"datasetPrefix": "/d", "mountPrefix": "ftp://host/d"}]}, None, "mountPrefix"),
    ],
)
def test_bad_object_storage_specs_are_refused(
    media: dict[str, Any], mask_dir: str | None, message: str
) -> None:
    changes = {"maskDir": mask_dir} if mask_dir else {}
    with pytest.raises(ValidationError, match=message):
        parse_spec(spec(media, **changes))


def test_rewrites_map_a_local_prefix_to_a_bucket_and_back() -> None:
    rules = [
        PathRewrite(**{"from": "/data/", "to": "s3://photos/raw/"}),
        PathRewrite(**{"from": "s3://archive/", "to": "/mnt/archive/"}),
    ]
    assert rewrite_path("/data/a/1.jpg", rules) == "s3://photos/raw/a/1.jpg"
    assert rewrite_path("s3://archive/2.jpg", rules) == "/mnt/archive/2.jpg"
    assert split_s3_url("s3://photos/raw/a/1.jpg") == ("photos", "raw/a/1.jpg")


def test_objects_get_a_wider_window_within_the_same_pixel_budget() -> None:
    small = InputSpec("input", "UINT8", InputLayout.NHWC, 224, 224, True)
    budget = decode_budget(small, 1, 4, 2, fetch_concurrency=64)
    assert (budget.window, budget.fetch_window) == (8, 64)
    huge = InputSpec("input", "FP32", InputLayout.NCHW, 4096, 4096, True)
    capped = decode_budget(huge, 1, 4, 2, fetch_concurrency=64)
    assert capped.fetch_window == capped.window < 64  # decoded pixels still bound what is fetched ahead


def test_step_kinds_all_get_the_credentials() -> None:
    run = parse_spec(spec(S3))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for kind in ("validate", "discard", "cleanup"):
        step = Step(kind, f"{kind}-g1-{int(now.timestamp())}", (kind,), 1)
        pod = step_job(METADATA, run, step, image="img", service_account="w", command=["w"])
        assert "AWS_SECRET_ACCESS_KEY" in env_of(pod["spec"]["template"]["spec"]["containers"][0])
