"""Pure builders of a run's children: the worker configuration, its ConfigMaps, the Indexed Job.

Nothing here calls the API; the reconcile decides when to create what these
return. The worker configuration is a JSON contract with `inference/config.py`
(camelCase keys); the controller never imports the worker's code. It travels
as the file `worker.json` of the run's snapshot ConfigMap, mounted into every
pod of the run (an environment variable is limited to 128 KiB by Linux).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from controller.api import KUEUE_QUEUE_LABEL, AutoLabelRunSpec, OutputFormat
from controller.names import (
    child_labels,
    job_name,
    owner_reference,
    progress_config_map_name,
    result_config_map_name,
    snapshot_config_map_name,
)

CONFIG_VOLUME = "autolabel-config"
CONFIG_DIR = "/etc/autolabel"
WORKER_CONFIG_KEY = "worker.json"
SPEC_KEY = "spec.json"
WORKER_CONFIG_PATH = f"{CONFIG_DIR}/{WORKER_CONFIG_KEY}"
GENERATION_ANNOTATION = "autolabel.dev/generation"
DATABASE_ADMIN_ENV = "FIFTYONE_DATABASE_ADMIN"
RUN_UID_ENV = "AUTOLABEL_RUN_UID"  # for logs and for finding a run's processes; the config has it too
DATABASE_URI_ENV = "FIFTYONE_DATABASE_URI"
DATABASE_NAME_ENV = "FIFTYONE_DATABASE_NAME"
DATABASE_NAME_KEY = "database"
"""Optional key of the database Secret naming the FiftyOne database (default: FiftyOne's own)."""
STAGING_SUFFIX = "_in_review"
TRITON_USER = 1000
"""The non-root user (`triton-server`) of NVIDIA's Triton images; the sidecar runs as it."""
SCRATCH_DIR = "/tmp"
"""The one writable path of a worker's read-only root filesystem (the image's HOME, too)."""

# The CRD's adapter names -> the worker's. A mask of class scores covers both
# one-channel probabilities and per-class scores.
_WORKER_OUTPUT_FORMAT = {
    OutputFormat.BOXES: "boxes_scores_labels",
    OutputFormat.YOLO: "yolo",
    OutputFormat.LOGITS: "logits",
    OutputFormat.PROBABILITIES: "probabilities",
    OutputFormat.MASK: "probabilities",
}


def staging_field(spec: AutoLabelRunSpec) -> str:
    """Where the run's predictions live until finalize."""
    return f"{spec.label_field}{STAGING_SUFFIX}"


def embeddings_field(spec: AutoLabelRunSpec) -> str | None:
    embeddings = spec.model.embeddings
    if embeddings is None:
        return None
    return embeddings.field or f"{spec.label_field}_embeddings"


def triton_url(spec: AutoLabelRunSpec) -> tuple[str, str]:
    """(host:port, protocol) the worker calls: the endpoint, or the sidecar on localhost."""
    if spec.model.endpoint is not None:
        return spec.model.endpoint.address, spec.model.endpoint.protocol
    assert spec.model.sidecar is not None
    return f"127.0.0.1:{spec.model.sidecar.grpc_port}", "grpc"


def worker_config(metadata: Mapping[str, Any], spec: AutoLabelRunSpec) -> dict[str, Any]:
    """The worker's JSON configuration document for this run."""
    model = spec.model
    url, protocol = triton_url(spec)
    target = spec.dataset.target
    model_doc: dict[str, Any] = {
        "url": url,
        "protocol": protocol,
        "name": model.name,
        "version": model.version or "",
        "outputFormat": _WORKER_OUTPUT_FORMAT[model.output_format],
        "confidenceThreshold": spec.confidence_threshold or 0.0,
        "storeLogits": spec.store_logits,
        "timeoutS": spec.execution.request_timeout_seconds,
    }
    if model.tensors is not None:
        model_doc["tensors"] = model.tensors.dump()
    if model.preprocess.width and model.preprocess.height:
        model_doc["inputSize"] = [model.preprocess.height, model.preprocess.width]
    if model.preprocess.layout:
        model_doc["inputLayout"] = model.preprocess.layout
    if model.input == "encoded":
        model_doc["input"] = model.input
    if model.class_names:
        model_doc["classes"] = list(model.class_names)
    if model.classes:
        model_doc["keepClasses"] = list(model.classes)
    if model.embeddings is not None:
        model_doc["embeddings"] = {
            "tensor": model.embeddings.output,
            "field": embeddings_field(spec),
            "model": model.embeddings.model,
            "version": model.embeddings.version or "",
        }
    document: dict[str, Any] = {
        "run": {"namespace": metadata["namespace"], "name": metadata["name"], "uid": metadata["uid"]},
        "dataset": spec.dataset.name,
        "target": {
            key: value
            for key, value in (("view", target.view), ("tags", target.tags), ("sampleIds", target.sample_ids))
            if value is not None
        },
        "shards": spec.execution.effective_shards,
        "labelField": spec.label_field,
        "stagingField": staging_field(spec),
        "task": spec.task.value,
        "model": model_doc,
        "batchSize": spec.execution.batch_size,
        "maxInFlight": spec.execution.max_in_flight,
        "writeBatchSize": spec.execution.write_batch_size,
        "progress": {
            "kind": "configmap",
            "configMap": progress_config_map_name(metadata),
            "namespace": metadata["namespace"],
        },
    }
    if spec.execution.decode_workers:
        document["decodeThreads"] = spec.execution.decode_workers
    if spec.dataset.media is not None:
        document["mediaPathRewrite"] = [
            {"from": rewrite.dataset_prefix, "to": rewrite.mount_prefix}
            for rewrite in spec.dataset.media.path_rewrites
        ]
    if spec.mask_dir:
        document["maskDir"] = spec.mask_dir
    return document


def progress_config_map(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The ConfigMap workers write their progress into (one key per shard)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": progress_config_map_name(metadata),
            "namespace": metadata["namespace"],
            "labels": child_labels(metadata, "progress"),
            "ownerReferences": [owner_reference(metadata)],
        },
        "data": {},
    }


def snapshot_config_map(metadata: Mapping[str, Any], spec: AutoLabelRunSpec) -> dict[str, Any]:
    """The run's snapshot: the spec of the generation validated and the worker configuration from it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": snapshot_config_map_name(metadata),
            "namespace": metadata["namespace"],
            "labels": child_labels(metadata, "snapshot"),
            "annotations": {GENERATION_ANNOTATION: str(int(metadata.get("generation") or 0))},
            "ownerReferences": [owner_reference(metadata)],
        },
        "data": {
            WORKER_CONFIG_KEY: json.dumps(worker_config(metadata, spec), sort_keys=True),
            SPEC_KEY: json.dumps(spec.dump(), sort_keys=True),
        },
    }


def result_config_map(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The ConfigMap dataset-step pods write their verdicts into (one key per step)."""
    manifest = progress_config_map(metadata)
    manifest["metadata"]["name"] = result_config_map_name(metadata)
    manifest["metadata"]["labels"] = child_labels(metadata, "result")
    return manifest


def config_volume(metadata: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, volumeMount): the snapshot ConfigMap as files under CONFIG_DIR, read-only."""
    volume = {"name": CONFIG_VOLUME, "configMap": {"name": snapshot_config_map_name(metadata)}}
    return volume, {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True}


def database_env(spec: AutoLabelRunSpec, optional: bool = False) -> list[dict[str, Any]]:
    """The database URI from the run's Secret (resolved by the kubelet, never by the controller).

    `optional`: a dataset step starts without it and reports the missing Secret as its verdict.
    FiftyOne is told never to migrate the database (it belongs to the user).
    """
    secret = spec.dataset.database_secret_ref
    uri_ref: dict[str, Any] = {"name": secret.name, "key": secret.key}
    if optional:
        uri_ref["optional"] = True
    return [
        {"name": DATABASE_URI_ENV, "valueFrom": {"secretKeyRef": uri_ref}},
        {
            "name": DATABASE_NAME_ENV,
            "valueFrom": {"secretKeyRef": {"name": secret.name, "key": DATABASE_NAME_KEY, "optional": True}},
        },
        {"name": DATABASE_ADMIN_ENV, "value": "false"},
    ]


def restricted_security_context(*, read_only_root: bool, run_as_user: int | None = None) -> dict[str, Any]:
    """A container securityContext meeting the `restricted` Pod Security Standard.

    Shared by every pod the operator builds; `read_only_root` needs a writable
    emptyDir for scratch space (SCRATCH_DIR) in the pod.
    """
    context: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    if run_as_user is not None:
        context["runAsUser"] = run_as_user
        context["runAsGroup"] = run_as_user
    return context


def restricted_pod_security_context() -> dict[str, Any]:
    """The pod-level half of the `restricted` standard (also covers containers added later)."""
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def scratch_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of the writable scratch space a read-only root filesystem needs (HOME is there)."""
    return {"name": "scratch", "emptyDir": {}}, {"name": "scratch", "mountPath": SCRATCH_DIR}


def _volumes(spec: AutoLabelRunSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, worker volumeMounts): /dev/shm in memory, scratch space, the media volume when given."""
    scratch, scratch_mount = scratch_volume()
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.execution.shm_size}},
        scratch,
    ]
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"}, scratch_mount]
    media = spec.dataset.media
    if media is not None:
        claim = media.persistent_volume_claim
        volumes.append(
            {
                "name": "media",
                "persistentVolumeClaim": {"claimName": claim.claim_name, "readOnly": claim.read_only},
            }
        )
        mount: dict[str, Any] = {"name": "media", "mountPath": claim.mount_path, "readOnly": claim.read_only}
        if claim.sub_path:
            mount["subPath"] = claim.sub_path
        mounts.append(mount)
    return volumes, mounts


def _triton_sidecar(spec: AutoLabelRunSpec, volumes: list[dict[str, Any]]) -> dict[str, Any]:
    """A native sidecar (init container, restartPolicy Always) holding the GPU and serving the model."""
    sidecar = spec.model.sidecar
    assert sidecar is not None
    port = sidecar.grpc_port
    container: dict[str, Any] = {
        "name": "triton",
        "image": sidecar.image,
        "restartPolicy": "Always",
        "command": ["tritonserver"],
        "args": [
            f"--model-repository={sidecar.model_repository}",
            f"--grpc-port={port}",
            f"--http-port={port + 1}",
            f"--metrics-port={port + 2}",
            *sidecar.args,
        ],
        "startupProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": port + 1},
            "periodSeconds": 5,
            "failureThreshold": max(1, sidecar.startup_timeout_seconds // 5),
        },
        "securityContext": restricted_security_context(read_only_root=False, run_as_user=TRITON_USER),
    }
    if sidecar.resources is not None:
        container["resources"] = sidecar.resources.dump()
    if sidecar.volume is not None:
        volumes.append(
            {
                "name": "models",
                "persistentVolumeClaim": {"claimName": sidecar.volume.claim_name, "readOnly": True},
            }
        )
        container["volumeMounts"] = [
            {"name": "models", "mountPath": sidecar.volume.mount_path, "readOnly": True}
        ]
    return container


def worker_job(
    metadata: Mapping[str, Any],
    spec: AutoLabelRunSpec,
    *,
    default_image: str,
    service_account: str,
    command: list[str],
) -> dict[str, Any]:
    """The run's Indexed Job: one completion per shard, each index retried per backoffLimitPerIndex."""
    execution = spec.execution
    labels = child_labels(metadata, "worker")
    if execution.queue_name:
        labels[KUEUE_QUEUE_LABEL] = execution.queue_name
    volumes, mounts = _volumes(spec)
    config_vol, config_mount = config_volume(metadata)
    volumes.append(config_vol)
    mounts.append(config_mount)
    worker: dict[str, Any] = {
        "name": "worker",
        "image": execution.image or default_image,
        "command": [*command, "--config", WORKER_CONFIG_PATH],
        "env": [*database_env(spec), {"name": RUN_UID_ENV, "value": metadata["uid"]}],
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": restricted_security_context(read_only_root=True),
    }
    if execution.image_pull_policy:
        worker["imagePullPolicy"] = execution.image_pull_policy
    if execution.resources is not None:
        worker["resources"] = execution.resources.dump()
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": service_account,
        "securityContext": restricted_pod_security_context(),
        "containers": [worker],
        "volumes": volumes,
    }
    if spec.model.sidecar is not None:
        pod_spec["initContainers"] = [_triton_sidecar(spec, volumes)]
    if execution.node_selector:
        pod_spec["nodeSelector"] = dict(execution.node_selector)
    if execution.tolerations:
        pod_spec["tolerations"] = [t.dump() for t in execution.tolerations]
    if execution.priority_class_name:
        pod_spec["priorityClassName"] = execution.priority_class_name
    shards = execution.effective_shards
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": shards,
        "parallelism": min(execution.parallelism, shards),
        "backoffLimitPerIndex": execution.backoff_limit_per_index,
        "maxFailedIndexes": 0,
        "suspend": spec.suspend,
        "podReplacementPolicy": "Failed",
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if execution.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = execution.active_deadline_seconds
    if spec.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(metadata),
            "namespace": metadata["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(metadata)],
        },
        "spec": job_spec,
    }
