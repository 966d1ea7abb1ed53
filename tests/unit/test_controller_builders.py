"""Pure builders: child names, the worker configuration, the snapshot ConfigMap, the Indexed Job."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.worker import WorkerConfig
from controller.api import parse_spec
from controller.builders import SERVICE_ACCOUNT_DIR, snapshot_config_map, worker_job
from controller.names import child_name, job_name, progress_config_map_name, snapshot_config_map_name
from controller.worker_contract import staging_field, worker_config

METADATA = {"name": "faces", "namespace": "labeling", "uid": "0b7c-11ee", "generation": 1}


def spec(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "detection",
        "dataset": {
            "name": "people",
            "target": {"tags": ["new"]},
            "databaseSecretRef": {"name": "db"},
            "media": {
                "persistentVolumeClaim": {"claimName": "media", "mountPath": "/media"},
                "pathRewrites": [{"datasetPrefix": "/data", "mountPrefix": "/media"}],
            },
        },
        "model": {
            "endpoint": {"address": "triton.svc:8001"},
            "name": "face_detector",
            "outputFormat": "boxes",
        },
        "labelField": "faces",
        "confidenceThreshold": 0.4,
        "execution": {
            "parallelism": 2,
            "shards": 4,
            "queueName": "gpu",
            "priorityClassName": "low",
            "nodeSelector": {"gpu": "yes"},
            "backoffLimitPerIndex": 3,
            "activeDeadlineSeconds": 600,
            "resources": {"limits": {"nvidia.com/gpu": "1"}},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        },
        "ttlSecondsAfterFinished": 3600,
    }
    body.update(changes)
    return body


def build_job(**changes: Any) -> dict[str, Any]:
    return worker_job(
        METADATA,
        parse_spec(spec(**changes)),
        default_image="img:1",
        service_account="worker",
        command=["autolabel-worker", "run"],
    )


@pytest.mark.parametrize("name", ["a", "x" * 253, "run.with.dots-and-dashes-" + "y" * 60])
def test_child_names_are_deterministic_dns_labels_within_63(name: str) -> None:
    first = child_name(name, "uid-1", "progress")
    assert first == child_name(name, "uid-1", "progress")
    assert len(first) <= 63 and first.startswith("alr-") and first[-1].isalnum()
    assert child_name(name, "uid-2", "progress") != first  # a re-created run never adopts old children


def test_job_carries_every_execution_setting() -> None:
    job = build_job()
    job_spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert job["metadata"]["name"] == job_name(METADATA)
    assert job["metadata"]["ownerReferences"][0] == {
        "apiVersion": "autolabel.dev/v1alpha1",
        "kind": "AutoLabelRun",
        "name": "faces",
        "uid": "0b7c-11ee",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    assert (job_spec["completionMode"], job_spec["completions"], job_spec["parallelism"]) == ("Indexed", 4, 2)
    assert job_spec["backoffLimitPerIndex"] == 3 and job_spec["maxFailedIndexes"] == 0
    assert job_spec["activeDeadlineSeconds"] == 600 and job_spec["ttlSecondsAfterFinished"] == 3600
    assert job_spec["suspend"] is True  # queueName: created suspended, Kueue admits it
    assert pod["nodeSelector"] == {"gpu": "yes"} and pod["priorityClassName"] == "low"
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    assert pod["serviceAccountName"] == "worker" and pod["restartPolicy"] == "Never"
    [worker] = pod["containers"]
    assert worker["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert worker["image"] == "img:1"
    assert worker["command"] == ["autolabel-worker", "run", "--config", "/etc/autolabel/worker.json"]
    env = {e["name"]: e for e in worker["env"]}
    assert env["FIFTYONE_DATABASE_URI"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "uri"}
    assert "value" not in env["FIFTYONE_DATABASE_URI"]  # never the URI itself
    assert env["FIFTYONE_DATABASE_ADMIN"]["value"] == "false"  # never migrate the user's database
    assert "AUTOLABEL_WORKER_CONFIG" not in env  # the configuration is a mounted file
    mounts = {m["mountPath"] for m in worker["volumeMounts"]}
    assert mounts == {"/dev/shm", "/tmp", "/media", "/etc/autolabel", SERVICE_ACCOUNT_DIR}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["autolabel-config"]["configMap"] == {"name": snapshot_config_map_name(METADATA)}


def test_worker_config_is_what_the_worker_accepts() -> None:
    snapshot = snapshot_config_map(METADATA, parse_spec(spec()))
    assert snapshot["metadata"]["ownerReferences"][0]["uid"] == "0b7c-11ee"
    assert snapshot["metadata"]["annotations"]["autolabel.dev/generation"] == "1"
    assert json.loads(snapshot["data"]["spec.json"])["labelField"] == "faces"
    config = WorkerConfig.from_json(snapshot["data"]["worker.json"])
    assert config.shards == 4 and config.target.tags == ["new"]
    assert config.staging == staging_field(parse_spec(spec())) == "faces_in_review"
    assert config.triton_model().url == "triton.svc:8001" and config.triton_model().output_format == "boxes"
    assert config.triton_model().confidence_threshold == 0.4
    assert config.progress.config_map == progress_config_map_name(METADATA)
    assert [(r.from_, r.to) for r in config.media_path_rewrite] == [("/data", "/media")]
    assert config.database.write_concern == "majority"  # durable unless the run asks otherwise
    body = spec()
    body["dataset"]["writeConcern"] = "journaled"
    assert worker_config(METADATA, parse_spec(body)).database.write_concern == "journaled"


@pytest.mark.parametrize(
    ("task", "model"),
    [
        (
            "classification",
            {
                "name": "efficientnet_lite0",
                "outputFormat": "logits",
                "embeddings": {"output": "EMBEDDINGS"},
                "classes": ["tabby"],
            },
        ),
        ("segmentation", {"name": "selfie_segmentation", "outputFormat": "mask"}),
    ],
)
def test_worker_config_for_other_tasks_validates(task: str, model: dict[str, Any]) -> None:
    body = spec(task=task, model={"endpoint": {"address": "t:8001"}, **model})
    config = worker_config(METADATA, parse_spec(body))
    assert config.task == task
    if "embeddings" in model:
        assert config.embeddings is not None and config.embeddings.field == "faces_embeddings"
        assert config.triton_model().keep_classes == ["tabby"]


def test_encoded_input_reaches_the_worker() -> None:
    body = spec(
        task="classification",
        model={
            "endpoint": {"address": "t:8001"},
            "name": "m_encoded",
            "outputFormat": "logits",
            "input": "encoded",
        },
    )
    assert (
        WorkerConfig.model_validate(worker_config(METADATA, parse_spec(body))).triton_model().input
        == "encoded"
    )
    default = spec(
        task="classification",
        model={"endpoint": {"address": "t:8001"}, "name": "m", "outputFormat": "logits"},
    )
    assert (
        WorkerConfig.model_validate(worker_config(METADATA, parse_spec(default))).triton_model().input
        == "decoded"
    )


def test_sidecar_mode_adds_a_native_sidecar_holding_the_gpu() -> None:
    sidecar = {
        "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
        "modelRepository": "/models",
        "volume": {"claimName": "models", "mountPath": "/models"},
        "grpcPort": 9001,
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    job = build_job(model={"sidecar": sidecar, "name": "face_detector", "outputFormat": "boxes"})
    pod = job["spec"]["template"]["spec"]
    [triton] = pod["initContainers"]
    assert triton["restartPolicy"] == "Always"
    assert "--model-repository=/models" in triton["args"] and "--grpc-port=9001" in triton["args"]
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == "1"
    model = {"sidecar": sidecar, "name": "face_detector", "outputFormat": "boxes"}
    sidecar_spec = parse_spec(spec(model=model))
    config = json.loads(snapshot_config_map(METADATA, sidecar_spec)["data"]["worker.json"])
    assert config["model"]["url"] == "127.0.0.1:9001"
    assert {v["name"] for v in pod["volumes"]} == {
        "dshm",
        "scratch",
        "media",
        "models",
        "autolabel-config",
        "kube-api-access",
    }
    # Only the worker, which reports progress, holds a Kubernetes token; the sidecar runs model code.
    assert pod["automountServiceAccountToken"] is False
    [worker] = pod["containers"]
    assert SERVICE_ACCOUNT_DIR in {m["mountPath"] for m in worker["volumeMounts"]}
    assert all(m["mountPath"] != SERVICE_ACCOUNT_DIR for m in triton.get("volumeMounts", []))
    [access] = [v for v in pod["volumes"] if v["name"] == "kube-api-access"]
    assert {next(iter(source)) for source in access["projected"]["sources"]} == {
        "serviceAccountToken",
        "configMap",
        "downwardAPI",
    }


def test_suspend_is_carried_to_the_job() -> None:
    assert build_job(suspend=True)["spec"]["suspend"] is True


RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_every_container_meets_the_restricted_pod_security_standard() -> None:
    sidecar = {"image": "nvcr.io/nvidia/tritonserver:24.08-py3", "modelRepository": "/models"}
    pod = build_job(model={"sidecar": sidecar, "name": "face_detector", "outputFormat": "boxes"})["spec"][
        "template"
    ]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    [worker], [triton] = pod["containers"], pod["initContainers"]
    for container in (worker, triton):
        assert RESTRICTED.items() <= container["securityContext"].items(), container["name"]
    assert triton["securityContext"]["runAsUser"] != 0
    # The worker's root filesystem is read-only; /tmp (the image's HOME) is an emptyDir.
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    scratch = next(m for m in worker["volumeMounts"] if m["mountPath"] == "/tmp")
    assert {"name": scratch["name"], "emptyDir": {}} in pod["volumes"]


def test_integer_quantities_reach_the_pod_as_strings() -> None:
    """`nvidia.com/gpu: 1` is valid YAML for a quantity; the Kubernetes client takes only strings."""
    from kubernetes import client

    execution = {
        **spec()["execution"],
        "resources": {"requests": {"cpu": 2}, "limits": {"nvidia.com/gpu": 1}},
    }
    job = build_job(execution=execution)
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "2"}, "limits": {"nvidia.com/gpu": "1"}}
    assert client.ApiClient().sanitize_for_serialization(job) == job
