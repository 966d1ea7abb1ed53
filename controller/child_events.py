"""Which watch events of a run's children can change what its reconcile decides.

A child changes far more often than anything a run shows: the Job controller
rewrites a Job's status for counters the run never reads, a kubelet (or kwok)
updates a pod's conditions and timestamps, and most writes to the result
ConfigMap are the controller's own (the review request, a verdict key removed
once taken in). Each child's last relevant content is remembered as a small
signature; an event whose signature equals the last one does not reconcile
the run. A child seen for the first time counts as changed only when it
already carries state (after a restart, the resume handler reconciles every
run anyway). Pure functions plus one dict per kind; no API calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from contract.review_agent import REQUEST_KEY  # the review request: written by the controller itself

Signature = tuple[Any, ...]


def job_signature(job: Mapping[str, Any]) -> Signature:
    """Conditions, the counts a shard or a step shows, and suspend."""
    status, spec = job.get("status") or {}, job.get("spec") or {}
    conditions = tuple(
        sorted((c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or [])
    )
    counts = tuple(
        status.get(key) for key in ("active", "succeeded", "failed", "completedIndexes", "failedIndexes")
    )
    return (
        conditions,
        counts,
        bool(spec.get("suspend")),
        bool((job.get("metadata") or {}).get("deletionTimestamp")),
    )


def pod_signature(pod: Mapping[str, Any]) -> Signature:
    """What of a worker pod the shard statuses read: phase, each container's state, scheduling."""
    status, metadata = pod.get("status") or {}, pod.get("metadata") or {}
    containers = tuple(
        (c.get("name"), tuple(sorted((c.get("state") or {}).keys())), c.get("restartCount"))
        for c in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    )
    scheduled = tuple(
        (c.get("status"), c.get("reason"))
        for c in status.get("conditions") or []
        if c.get("type") == "PodScheduled"
    )
    annotations = tuple(
        sorted(k for k in (metadata.get("annotations") or {}) if k.startswith("autolabel.dev/"))
    )
    return (status.get("phase"), bool(metadata.get("deletionTimestamp")), containers, scheduled, annotations)


def config_map_signature(config_map: Mapping[str, Any]) -> Signature:
    """Each key's content, except the controller's own review request."""
    data = config_map.get("data") or {}
    return tuple(
        sorted(
            (key, hashlib.sha256(str(value).encode()).hexdigest()[:16])
            for key, value in data.items()
            if key != REQUEST_KEY
        )
    )


def _empty(signature: Signature, kind: str) -> bool:
    if kind == "ConfigMap":
        return signature == ()
    if kind == "Job":
        return signature[0] == () and all(count in (None, 0, "") for count in signature[1])
    return False


def workload_signature(workload: Mapping[str, Any]) -> Signature:
    """What Kueue says of a queued run: its conditions (with Kueue's message), activation, admission."""
    status, spec = workload.get("status") or {}, workload.get("spec") or {}
    conditions = tuple(
        sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in status.get("conditions") or []
        )
    )
    admission = (status.get("admission") or {}).get("clusterQueue")
    return (conditions, bool(spec.get("active", True)), admission)


class ChildEvents:
    """Remembers each child's last signature; `changed` says whether an event is worth a reconcile."""

    SIGNATURES = {
        "Job": job_signature,
        "Pod": pod_signature,
        "ConfigMap": config_map_signature,
        "Workload": workload_signature,
    }

    def __init__(self) -> None:
        self._seen: dict[str, Signature] = {}  # child uid -> signature

    def changed(self, kind: str, event_type: str, uid: str, body: Mapping[str, Any]) -> bool:
        if event_type == "DELETED":
            self._seen.pop(uid, None)
            return kind != "ConfigMap"  # a Job or pod gone matters; ConfigMaps go with their run
        signature = self.SIGNATURES[kind](body)
        previous = self._seen.get(uid)
        self._seen[uid] = signature
        if previous is None:
            return not _empty(signature, kind)
        if kind == "ConfigMap":
            # Keys only removed (a verdict taken in, by the controller): nothing new to see.
            return not set(signature) <= set(previous)
        return signature != previous
