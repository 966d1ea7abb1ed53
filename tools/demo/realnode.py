"""The demo on the real node (`--real-node`): the operator's own pods in containers.

The runs' pods then all go to the real kubelet `real-node-0` (tools/cluster/realnode.py;
the kwok nodes are tainted); mongod (a replica set), Triton and MinIO listen on
the pod bridge's address, where the pods reach them; the project's image is
built from the Dockerfile (cached), imported into the node's containerd, and the
chart is installed with it, so the controller is the chart's Deployment and
every pod of a run (validation, workers, review agent, finalize) is a container,
in namespaces that enforce the restricted Pod Security level.

The containers cannot see this machine's files, so the photos are uploaded to a
MinIO bucket and each run's `dataset.media` maps the dataset's local filepaths
(which the FiftyOne App, a local process, still reads) to that bucket, read with
the keys of a Secret. Segmentation masks stay inline in the database (the runs
set no `maskDir`), so nothing is written outside mongod.

Container processes do not inherit the demo's marker variable, so the check that
nothing survives also looks for any process in the cgroup of one of the demo's
pods (`pod_processes`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tools.cluster.chart import SYSTEM_NAMESPACE
from tools.cluster.harness import LocalCluster
from tools.services.minio import MinioServer

MEDIA_BUCKET = "autolabel-demo-media"
MEDIA_PREFIX = "images/"
MEDIA_SECRET = "demo-media-keys"
CONTROLLER_SELECTOR = "app.kubernetes.io/name=autolabel-operator"
Say = Callable[[str], None]


def media_spec(local_dir: Path, minio_endpoint: str, credentials: str) -> dict[str, Any]:
    """A run's `dataset.media`: the dataset's local filepaths under `local_dir` read from the bucket."""
    return {
        "s3": {"endpoint": minio_endpoint, "credentialsSecretRef": {"name": credentials}, "concurrency": 8},
        "pathRewrites": [
            {"datasetPrefix": f"{local_dir}/", "mountPrefix": f"s3://{MEDIA_BUCKET}/{MEDIA_PREFIX}"}
        ],
    }


def upload_media(minio: MinioServer, paths: Sequence[Path]) -> None:
    """The photos into the media bucket, under the names `media_spec`'s rewrite maps them to."""
    client = minio.client()
    client.create_bucket(Bucket=MEDIA_BUCKET)
    for path in paths:
        client.upload_file(str(path), MEDIA_BUCKET, f"{MEDIA_PREFIX}{path.name}")


def media_secret(namespace: str, keys: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": MEDIA_SECRET, "namespace": namespace},
        "stringData": keys,
    }


def controller_log_tail(cluster: LocalCluster, lines: int = 40) -> str:
    done = cluster.kubectl(
        "logs", "-n", SYSTEM_NAMESPACE, "-l", CONTROLLER_SELECTOR, "-c", "controller", f"--tail={lines}",
        check=False,
    )  # fmt: skip
    return str(done.stdout or done.stderr)


def pod_uids(cluster: LocalCluster) -> set[str]:
    """The UIDs of every pod in the cluster now (all of them the demo's: the cluster is its own)."""
    pods = json.loads(cluster.kubectl("get", "pods", "-A", "-o", "json").stdout)["items"]
    return {str(pod["metadata"]["uid"]) for pod in pods}


def in_pod_cgroup(cgroup: str, uids: Iterable[str]) -> bool:
    """Whether a /proc/<pid>/cgroup text puts the process under one of the pods' cgroups.

    The kubelet names a pod's cgroup `pod<uid>` with the cgroupfs driver (the real node's) and
    `kubepods-<qos>-pod<uid with _ for ->.slice` with the systemd driver.
    """
    components = {part for line in cgroup.splitlines() for part in line.split(":", 2)[-1].split("/")}
    return any(
        f"pod{uid}" in components or any(c.endswith(f"pod{uid.replace('-', '_')}.slice") for c in components)
        for uid in uids
    )


def pod_processes(uids: set[str]) -> list[tuple[int, str]]:
    """Processes in the cgroup of one of the pods `uids`: (pid, command line)."""
    if not uids:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not in_pod_cgroup((entry / "cgroup").read_text(), uids):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline:
            found.append((int(entry.name), cmdline.strip()))
    return found
