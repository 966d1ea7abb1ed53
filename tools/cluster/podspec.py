"""Turning a Pod's spec into what a local process needs: argv, environment, volumes.

Pure functions over the pod dict (as returned by the API) plus lookups of the
Secrets and ConfigMaps it references, so they can be unit-tested without a
cluster. Kubernetes' `$(VAR)` expansion rules are followed for env values,
command and args.

ConfigMap volumes become files under a per-pod directory (`volume_root`): the
caller writes `LocalContainer.files`, and the mount path is rewritten to that
directory wherever it appears in the container's argv and environment values
(no mount namespaces here, so the process cannot see `/etc/...` itself).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# (kind "Secret" | "ConfigMap", namespace, name) -> data (decoded strings) or None if absent.
ObjectLookup = Callable[[str, str, str], Mapping[str, str] | None]

SERVICE_ACCOUNT_VOLUME_PREFIX = "kube-api-access-"
_VAR_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_PATH = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class PodSpecError(Exception):
    """The pod asks for something the local pod runner cannot provide."""


@dataclass(frozen=True)
class LocalContainer:
    """One container reduced to what a local process needs."""

    name: str
    argv: list[str]
    env: dict[str, str]
    working_dir: str | None
    role: str = "main"  # "init" (runs to completion first), "sidecar" (background) or "main"
    files: dict[str, str] = field(default_factory=dict)  # local path -> content (ConfigMap volumes)
    api_access: bool = True  # holds the pod's ServiceAccount token (as a kubeconfig, locally)


# emptyDir mounts a local process can take from the host as they are.
LOCAL_SCRATCH_DIRS = ("/dev/shm", "/tmp")


def expand_references(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known names are replaced, `$$` escapes, unknown stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REFERENCE.sub(replace, text)


def _field_value(pod: Mapping[str, Any], field_path: str) -> str:
    metadata = pod.get("metadata") or {}
    simple = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
        "status.podIP": (pod.get("status") or {}).get("podIP"),
        "status.hostIP": (pod.get("status") or {}).get("hostIP"),
    }
    if field_path in simple:
        return str(simple[field_path] or "")
    match = _FIELD_PATH.match(field_path)
    if match:
        return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
    raise PodSpecError(f"fieldRef {field_path!r} is not supported by the local pod runner")


def _key_ref(lookup: ObjectLookup, kind: str, namespace: str, ref: Mapping[str, Any]) -> str | None:
    data = lookup(kind, namespace, ref["name"])
    optional = bool(ref.get("optional", False))
    if data is None:
        if optional:
            return None
        raise PodSpecError(f"{kind} {namespace}/{ref['name']} not found")
    if ref["key"] not in data:
        if optional:
            return None
        raise PodSpecError(f"key {ref['key']!r} not found in {kind} {namespace}/{ref['name']}")
    return data[ref["key"]]


def container_env(
    pod: Mapping[str, Any], container: Mapping[str, Any], lookup: ObjectLookup
) -> dict[str, str]:
    """The environment Kubernetes would give `container`: envFrom first, then env in order."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                data = lookup(kind, namespace, source[key]["name"])
                if data is None and not source[key].get("optional", False):
                    raise PodSpecError(f"{kind} {namespace}/{source[key]['name']} not found")
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for variable in container.get("env") or []:
        name = variable["name"]
        if "valueFrom" not in variable:
            env[name] = expand_references(variable.get("value") or "", env)
            continue
        source = variable["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            value = _field_value(pod, source["fieldRef"]["fieldPath"])
        elif "secretKeyRef" in source:
            value = _key_ref(lookup, "Secret", namespace, source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _key_ref(lookup, "ConfigMap", namespace, source["configMapKeyRef"])
        else:
            raise PodSpecError(f"env {name}: valueFrom {sorted(source)} is not supported locally")
        if value is not None:
            env[name] = value
    return env


def config_map_mounts(
    pod: Mapping[str, Any], container: Mapping[str, Any], lookup: ObjectLookup, volume_root: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(files to write, mount path -> local path) for the container's ConfigMap volumes."""
    namespace = pod["metadata"]["namespace"]
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    files: dict[str, str] = {}
    paths: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        source = (volumes.get(mount["name"]) or {}).get("configMap")
        if source is None:
            continue
        if volume_root is None:
            raise PodSpecError(f"volume {mount['name']!r}: ConfigMap volumes need a volume directory")
        data = lookup("ConfigMap", namespace, source["name"])
        if data is None:
            if source.get("optional"):
                data = {}
            else:
                raise PodSpecError(f"ConfigMap {namespace}/{source['name']} not found")
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        local_dir = f"{volume_root.rstrip('/')}/{container['name']}/{mount['name']}"
        for item in items:
            if item["key"] not in data:
                raise PodSpecError(f"key {item['key']!r} not found in ConfigMap {namespace}/{source['name']}")
            files[f"{local_dir}/{item['path']}"] = data[item["key"]]
        target = f"{local_dir}/{mount['subPath']}" if mount.get("subPath") else local_dir
        paths[mount["mountPath"].rstrip("/")] = target
    return files, paths


def _rewrite_paths(text: str, paths: Mapping[str, str]) -> str:
    for mount_path in sorted(paths, key=len, reverse=True):
        text = text.replace(mount_path, paths[mount_path])
    return text


def _is_token_volume(volume: Mapping[str, Any]) -> bool:
    """A projected volume carrying the pod's ServiceAccount token (as the API server's own)."""
    sources = (volume.get("projected") or {}).get("sources") or []
    return any("serviceAccountToken" in source for source in sources)


def has_api_access(pod: Mapping[str, Any], container: Mapping[str, Any]) -> bool:
    """Whether the container gets the pod's token: every container unless the pod turns automounting
    off, and then only one that mounts a token volume itself."""
    spec = pod.get("spec") or {}
    if spec.get("automountServiceAccountToken") is not False:
        return True
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    return any(_is_token_volume(volumes.get(m["name"]) or {}) for m in container.get("volumeMounts") or [])


def check_volumes(pod: Mapping[str, Any], container: Mapping[str, Any], pvc_dirs: Mapping[str, str]) -> None:
    """Volumes work only as local directories mounted at their own path, or ConfigMaps; else the pod fails."""
    volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise PodSpecError(f"volumeMount {mount['name']!r} has no volume")
        if mount["name"].startswith(SERVICE_ACCOUNT_VOLUME_PREFIX) or _is_token_volume(volume):
            continue  # replaced by a kubeconfig holding the ServiceAccount's token
        if "configMap" in volume:
            continue  # files under the pod's volume directory (config_map_mounts)
        if "emptyDir" in volume and mount["mountPath"] in LOCAL_SCRATCH_DIRS:
            continue  # the pod's shared memory or scratch space: the host's own serves
        if "hostPath" in volume:
            host_dir = volume["hostPath"]["path"]
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim not in pvc_dirs:
                raise PodSpecError(
                    f"PVC {claim!r} is not mapped to a local directory (pod runner --pvc-dir {claim}=DIR)"
                )
            host_dir = pvc_dirs[claim]
        else:
            kinds = sorted(set(volume) - {"name"})
            raise PodSpecError(f"volume {mount['name']!r} of kind {kinds} is not supported locally")
        if mount["mountPath"].rstrip("/") != host_dir.rstrip("/"):
            raise PodSpecError(
                f"volume {mount['name']!r} is mounted at {mount['mountPath']!r} but is "
                f"the local directory {host_dir!r}; the local pod runner needs them equal"
            )


def local_containers(
    pod: Mapping[str, Any],
    lookup: ObjectLookup,
    pvc_dirs: Mapping[str, str],
    volume_root: str | None = None,
) -> list[LocalContainer]:
    """Init containers (sidecars flagged) then main containers, in the order they start."""
    spec = pod["spec"]
    result: list[LocalContainer] = []
    for is_init, container in [(True, c) for c in spec.get("initContainers") or []] + [
        (False, c) for c in spec.get("containers") or []
    ]:
        command = list(container.get("command") or [])
        if not command:
            raise PodSpecError(
                f"container {container['name']!r} has no command: the local pod runner "
                "runs no images, so it needs an explicit command"
            )
        check_volumes(pod, container, pvc_dirs)
        files, paths = config_map_mounts(pod, container, lookup, volume_root)
        env = {k: _rewrite_paths(v, paths) for k, v in container_env(pod, container, lookup).items()}
        argv = [
            _rewrite_paths(expand_references(part, env), paths)
            for part in command + list(container.get("args") or [])
        ]
        result.append(
            LocalContainer(
                name=container["name"],
                argv=argv,
                env=env,
                working_dir=container.get("workingDir"),
                files=files,
                api_access=has_api_access(pod, container),
                role=("sidecar" if container.get("restartPolicy") == "Always" else "init")
                if is_init
                else "main",
            )
        )
    return result


def decode_secret_data(data: Mapping[str, str] | None) -> dict[str, str]:
    """Secret data arrives base64-encoded."""
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}
