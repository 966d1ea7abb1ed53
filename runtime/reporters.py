"""Where a shard's progress snapshots go: the run's progress ConfigMap, or nowhere.

A snapshot is the contract's `ProgressReport`. The controller reads the ConfigMap
channel: the worker patches only its own key ``shard-<index>``
(`contract.progress.progress_key`) with the report's JSON, so the pod needs nothing
beyond ``patch`` on that one ConfigMap. ``NullReporter`` serves local runs and
tests without a cluster; every snapshot is also printed to stdout as one line (`line`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any, Protocol

from contract.progress import ProgressReport, ProgressState, progress_key
from runtime import kube

LOG = logging.getLogger(__name__)


def line(snapshot: ProgressReport, shard: int) -> str:
    """The snapshot as the one stdout line a worker prints for it."""
    return (
        f"progress shard={shard} state={snapshot.state} processed={snapshot.processed}/{snapshot.total} "
        f"failed={snapshot.failed} images_per_second={snapshot.images_per_second or 0.0:.1f} "
        f"{snapshot.message}"
    ).rstrip()


class ProgressReporter(Protocol):
    def report(self, snapshot: ProgressReport) -> None: ...


class NullReporter:
    """Publishes nowhere (stdout lines are printed by the caller)."""

    def report(self, snapshot: ProgressReport) -> None:
        return None


class ConfigMapReporter:
    """Merge-patches ``data["shard-<index>"]`` of one ConfigMap; other shards' keys are left alone.

    Reports come from several threads (the periodic tick and the final report), so each
    takes a sequence number when it is made and a patch is sent only if no later report
    was sent first: a slow early patch (the first one also builds the API client) can
    never land after, and overwrite, the shard's final state. A final state is tried
    a few times, since nothing follows it.
    """

    FINAL_ATTEMPTS = 3

    def __init__(self, namespace: str, config_map: str, shard: int, api: Any | None = None) -> None:
        self.namespace = namespace
        self.config_map = config_map
        self.key = progress_key(shard)
        self._api = api
        self._sequence = itertools.count(1)
        self._sent = 0
        self._lock = threading.Lock()

    def _core_api(self) -> Any:
        if self._api is None:
            self._api = kube.core_api()
        return self._api

    def report(self, snapshot: ProgressReport) -> None:
        """Best effort: a failed patch is logged, never fatal; the next tick tries again."""
        sequence = next(self._sequence)
        final = snapshot.state in (ProgressState.SUCCEEDED, ProgressState.FAILED)
        with self._lock:
            if sequence < self._sent:
                return  # a later report is already there
            for attempt in range(self.FINAL_ATTEMPTS if final else 1):
                try:
                    self._core_api().patch_namespaced_config_map(
                        self.config_map, self.namespace, {"data": {self.key: snapshot.to_json()}}
                    )
                except Exception as error:
                    LOG.warning(
                        "progress patch of configmap %s/%s failed (attempt %d): %s",
                        self.namespace,
                        self.config_map,
                        attempt + 1,
                        error,
                    )
                    time.sleep(1.0)
                else:
                    self._sent = sequence
                    return
