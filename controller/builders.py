"""Pure builders of a run's children: the worker configuration, its ConfigMaps, the Indexed Job.

Nothing here calls the API; the reconcile decides when to create what these
return. The worker configuration is the shared contract's typed `WorkerConfig`
(built in `controller/worker_contract.py`); the controller never imports the
worker's code. It travels as the file `worker.json` of the run's snapshot
ConfigMap, mounted into every pod of the run (an environment variable is
limited to 128 KiB by Linux).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contract.env import (
    CONFIG_DIR,
    DATABASE_ADMIN_ENV,
    DATABASE_NAME_ENV,
    DATABASE_URI_ENV,
    RUN_UID_ENV,
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
    S3_SESSION_TOKEN_ENV,
    WORKER_CONFIG_KEY,
    WORKER_CONFIG_PATH,
    Flag,
)
from contract.wire import RESULT_COMPONENT
from controller.api import KUEUE_QUEUE_LABEL, AutoLabelRunSpec
from controller.names import (
    child_labels,
    job_name,
    owner_reference,
    progress_config_map_name,
    result_config_map_name,
    snapshot_config_map_name,
)
from controller.worker_contract import worker_config

CONFIG_VOLUME = "autolabel-config"
SPEC_KEY = "spec.json"
GENERATION_ANNOTATION = "autolabel.dev/generation"
DATABASE_NAME_KEY = "database"
"""Optional key of the database Secret naming the FiftyOne database (default: FiftyOne's own)."""
TRITON_USER = 1000
"""The non-root user (`triton-server`) of NVIDIA's Triton images; the sidecar runs as it."""
SCRATCH_DIR = "/tmp"
"""The one writable path of a worker's read-only root filesystem (the image's HOME, too)."""


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
            WORKER_CONFIG_KEY: worker_config(metadata, spec).to_json(),
            SPEC_KEY: json.dumps(spec.dump(), sort_keys=True),
        },
    }


def result_config_map(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The ConfigMap dataset-step pods write their verdicts into (one key per step)."""
    manifest = progress_config_map(metadata)
    manifest["metadata"]["name"] = result_config_map_name(metadata)
    manifest["metadata"]["labels"] = child_labels(metadata, RESULT_COMPONENT)
    return manifest


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where the Kubernetes client looks for the pod's token, CA and namespace (in-cluster config)."""
TOKEN_SECONDS = 3607  # what the API server's own ServiceAccount admission gives a pod's token


def api_access_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, volumeMount): the pod's ServiceAccount token, CA and namespace, for one container.

    The same projected volume the API server would mount into every container; with the pod's
    ``automountServiceAccountToken: false`` only the container that mounts this gets a token (the
    worker, which reports progress), never the Triton sidecar, which runs model-repository code.
    """
    volume = {
        "name": "kube-api-access",
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }
    return volume, {"name": "kube-api-access", "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True}


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


def object_store_env(spec: AutoLabelRunSpec, optional: bool = False) -> list[dict[str, Any]]:
    """The S3 credentials from the Secret of ``dataset.media.s3`` (resolved by the kubelet, not here).

    Empty without a Secret: the pod's workload identity (or no S3 at all). `optional`: a dataset
    step starts without them, and names the Secret when it needs them (finalize removing masks).
    """
    media = spec.dataset.media
    secret = media.s3.credentials_secret_ref if media is not None and media.s3 is not None else None
    if secret is None:
        return []
    keys = ((S3_ACCESS_KEY_ENV, optional), (S3_SECRET_KEY_ENV, optional), (S3_SESSION_TOKEN_ENV, True))
    env = []
    for key, may_lack in keys:
        ref: dict[str, Any] = {"name": secret.name, "key": key}
        if may_lack:
            ref["optional"] = True
        env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    return env


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
    claim = media.persistent_volume_claim if media is not None else None
    if claim is not None:
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
    sidecar = spec.model.sidecar if spec.model is not None else None
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
    for volume, mount in (config_volume(metadata), api_access_volume()):
        volumes.append(volume)
        mounts.append(mount)
    worker: dict[str, Any] = {
        "name": "worker",
        "image": execution.image or default_image,
        "command": [*command, Flag.CONFIG.value, WORKER_CONFIG_PATH],
        "env": [
            *database_env(spec),
            *object_store_env(spec),
            {"name": RUN_UID_ENV, "value": metadata["uid"]},
        ],
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
        "automountServiceAccountToken": False,  # the worker container mounts its own (api_access_volume)
        "securityContext": restricted_pod_security_context(),
        "containers": [worker],
        "volumes": volumes,
    }
    if spec.model is not None and spec.model.sidecar is not None:
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
        # Queued in Kueue: created suspended, as Kueue asks; Kueue alone unsuspends it on admission.
        "suspend": spec.suspend or execution.queue_name is not None,
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
