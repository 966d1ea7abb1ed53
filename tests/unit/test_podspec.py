"""The local pod runner's translation of a pod spec into argv, env and volume checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tools.cluster.podspec import PodSpecError, expand_references, local_containers

OBJECTS: dict[tuple[str, str, str], Mapping[str, str]] = {
    ("Secret", "ns", "db"): {"uri": "mongodb://db:27017"},
    ("ConfigMap", "ns", "cfg"): {"MODE": "fast", "LEVEL": "2"},
}


def lookup(kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
    return OBJECTS.get((kind, namespace, name))


def pod(
    containers: list[dict[str, Any]],
    init: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p-0",
            "namespace": "ns",
            "uid": "u1",
            "annotations": {"batch.kubernetes.io/job-completion-index": "3"},
        },
        "spec": {
            "containers": containers,
            "initContainers": init or [],
            "volumes": volumes or [],
            "nodeName": "gpu-node-0",
        },
    }


def test_env_sources_and_reference_expansion() -> None:
    container = {
        "name": "worker",
        "command": ["run", "$(INDEX)"],
        "args": ["--uri=$(URI)", "$$(INDEX)"],
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [
            {
                "name": "INDEX",
                "valueFrom": {
                    "fieldRef": {
                        "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                    }
                },
            },
            {"name": "URI", "valueFrom": {"secretKeyRef": {"name": "db", "key": "uri"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "LABEL", "value": "shard-$(INDEX)-$(UNKNOWN)"},
            {
                "name": "OPTIONAL",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}},
            },
        ],
    }
    [local] = local_containers(pod([container]), lookup, {})
    assert local.argv == ["run", "3", "--uri=mongodb://db:27017", "$(INDEX)"]
    assert local.env == {
        "CFG_MODE": "fast",
        "CFG_LEVEL": "2",
        "INDEX": "3",
        "URI": "mongodb://db:27017",
        "POD": "p-0",
        "LABEL": "shard-3-$(UNKNOWN)",
    }


def test_missing_secret_key_fails_with_its_name() -> None:
    container = {
        "name": "w",
        "command": ["x"],
        "env": [{"name": "U", "valueFrom": {"secretKeyRef": {"name": "db", "key": "missing"}}}],
    }
    with pytest.raises(PodSpecError, match="key 'missing' not found in Secret ns/db"):
        local_containers(pod([container]), lookup, {})


def test_a_container_without_command_is_refused() -> None:
    with pytest.raises(PodSpecError, match="needs an explicit command"):
        local_containers(pod([{"name": "w", "image": "x"}]), lookup, {})


def test_roles_of_init_sidecar_and_main_containers() -> None:
    init = [
        {"name": "prep", "command": ["prep"]},
        {"name": "triton", "command": ["tritonserver"], "restartPolicy": "Always"},
    ]
    roles = [
        (c.name, c.role) for c in local_containers(pod([{"name": "w", "command": ["w"]}], init), lookup, {})
    ]
    assert roles == [("prep", "init"), ("triton", "sidecar"), ("w", "main")]


@pytest.mark.parametrize(
    ("volume", "mount_path", "pvc_dirs", "error"),
    [
        ({"hostPath": {"path": "/data"}}, "/data", {}, None),
        ({"hostPath": {"path": "/data"}}, "/mnt", {}, "needs them equal"),
        ({"persistentVolumeClaim": {"claimName": "media"}}, "/srv/media", {"media": "/srv/media"}, None),
        ({"persistentVolumeClaim": {"claimName": "media"}}, "/srv/media", {}, "not mapped"),
        ({"emptyDir": {}}, "/tmp/x", {}, "not supported locally"),
        ({"emptyDir": {}}, "/tmp", {}, None),
        ({"projected": {"sources": []}}, "/var/run/secrets/kubernetes.io/serviceaccount", {}, None),
    ],
)
def test_volumes_are_local_directories_at_their_own_path(
    volume: dict[str, Any], mount_path: str, pvc_dirs: dict[str, str], error: str | None
) -> None:
    name = "kube-api-access-abcde" if "projected" in volume else "v"
    container = {"name": "w", "command": ["w"], "volumeMounts": [{"name": name, "mountPath": mount_path}]}
    spec = pod([container], volumes=[{"name": name, **volume}])
    if error is None:
        local_containers(spec, lookup, pvc_dirs)
    else:
        with pytest.raises(PodSpecError, match=error):
            local_containers(spec, lookup, pvc_dirs)


def test_expand_references_leaves_unknown_names() -> None:
    assert expand_references("$(A)/$(B)/$$", {"A": "1"}) == "1/$(B)/$"


def test_config_map_volume_becomes_files_and_the_mount_path_is_rewritten() -> None:
    container = {
        "name": "worker",
        "command": ["run", "--config", "/etc/autolabel/MODE"],
        "env": [{"name": "CONFIG", "value": "/etc/autolabel/LEVEL"}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/autolabel", "readOnly": True}],
    }
    volumes = [{"name": "config", "configMap": {"name": "cfg"}}]
    [local] = local_containers(pod([container], volumes=volumes), lookup, {}, "/tmp/pod-1/volumes")
    assert local.files == {
        "/tmp/pod-1/volumes/worker/config/MODE": "fast",
        "/tmp/pod-1/volumes/worker/config/LEVEL": "2",
    }
    assert local.argv == ["run", "--config", "/tmp/pod-1/volumes/worker/config/MODE"]
    assert local.env["CONFIG"] == "/tmp/pod-1/volumes/worker/config/LEVEL"


def test_config_map_volume_items_and_a_missing_config_map() -> None:
    container = {
        "name": "c",
        "command": ["cat", "/cfg/mode.txt"],
        "volumeMounts": [{"name": "config", "mountPath": "/cfg"}],
    }
    items = [{"name": "config", "configMap": {"name": "cfg", "items": [{"key": "MODE", "path": "mode.txt"}]}}]
    [local] = local_containers(pod([container], volumes=items), lookup, {}, "/v")
    assert local.files == {"/v/c/config/mode.txt": "fast"} and local.argv == ["cat", "/v/c/config/mode.txt"]
    missing = [{"name": "config", "configMap": {"name": "nope"}}]
    with pytest.raises(PodSpecError, match="ConfigMap ns/nope not found"):
        local_containers(pod([container], volumes=missing), lookup, {}, "/v")


def test_only_a_container_that_mounts_the_token_volume_gets_the_token() -> None:
    from controller.builders import api_access_volume

    volume, mount = api_access_volume()
    worker = {"name": "worker", "command": ["w"], "volumeMounts": [mount]}
    sidecar = {"name": "triton", "command": ["t"], "restartPolicy": "Always"}
    spec = pod([worker], init=[sidecar], volumes=[volume])
    by_name = {c.name: c for c in local_containers(spec, lookup, {})}
    assert by_name["worker"].api_access and by_name["triton"].api_access  # automounting is on
    spec["spec"]["automountServiceAccountToken"] = False
    by_name = {c.name: c for c in local_containers(spec, lookup, {})}
    assert by_name["worker"].api_access and not by_name["triton"].api_access
