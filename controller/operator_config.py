"""How kopf is set up for this operator: where it keeps its bookkeeping, its executor, its retries.

kopf keeps its own bookkeeping in annotations under `autolabel.dev`, so `status`
holds only ours, with the finalizer `autolabel.dev/cleanup`; its copy of the
last handled spec carries a digest of `sampleIds`, not the ids (10,000 of them
would pass the 256 KiB that all annotations of an object may hold together).
Every API call of the engine runs in a thread of a pool of `KUBE_THREADS`.
Called once from the startup handler.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

FINALIZER = "autolabel.dev/cleanup"
ANNOTATION_PREFIX = "autolabel.dev"
KUBE_THREADS = 32


class CompactDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled configuration, with `spec.dataset.target.sampleIds` reduced to a digest."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        target = ((essence.get("spec") or {}).get("dataset") or {}).get("target") or {}
        ids = target.get("sampleIds")
        if isinstance(ids, list) and ids:
            digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()
            target["sampleIds"] = [f"sha256:{digest} ({len(ids)} ids)"]
        return essence


def configure(settings: kopf.OperatorSettings) -> None:
    # Every API call of the engine runs in a thread; the default pool (CPUs + 4) would queue
    # the calls of hundreds of runs reconciling at once behind a handful of slow ones.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=KUBE_THREADS))
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = CompactDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events say what happened; kopf's only errors
    settings.watching.server_timeout = 300
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
