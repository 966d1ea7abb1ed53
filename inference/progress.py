"""Progress of one shard: counters, a rate, and reporters that publish a snapshot.

A snapshot is the contract's `ProgressReport`. The controller reads the ConfigMap
channel: the worker patches only its own key ``shard-<index>``
(`contract.progress.progress_key`) with the report's JSON, so the pod needs nothing
beyond ``patch`` on that one ConfigMap. ``NullReporter`` serves local runs and
tests without a cluster; every snapshot is also printed to stdout as one line.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from contract.progress import ProgressReport, ProgressState, progress_key
from inference.redact import scrub

LOG = logging.getLogger(__name__)


def line(snapshot: ProgressReport, shard: int) -> str:
    """The snapshot as the one stdout line a worker prints for it."""
    return (
        f"progress shard={shard} state={snapshot.state} processed={snapshot.processed}/{snapshot.total} "
        f"failed={snapshot.failed} images_per_second={snapshot.images_per_second or 0.0:.1f} "
        f"{snapshot.message}"
    ).rstrip()


@dataclass
class ProgressTracker:
    """Counts for one shard; ``processed`` includes samples a previous attempt already finished."""

    total: int = 0
    processed: int = 0
    failed: int = 0
    state: ProgressState = ProgressState.STARTING
    message: str = ""
    failure_reasons: Counter[str] = field(default_factory=Counter)
    _started: float = field(default_factory=time.monotonic)
    _processed_at_start: int = 0

    def start(self, total: int, already_done: int) -> None:
        self.total, self.processed, self._processed_at_start = total, already_done, already_done
        self._started = time.monotonic()
        self.state = ProgressState.RUNNING

    def add_processed(self, count: int) -> None:
        self.processed += count

    def add_failure(self, reason: str) -> None:
        self.failed += 1
        self.failure_reasons[reason] += 1

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return (self.processed - self._processed_at_start) / elapsed if elapsed > 0 else 0.0

    def failures_summary(self) -> str:
        if not self.failed:
            return ""
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.failure_reasons.most_common(5))
        return f"{self.failed} failed ({reasons})"

    def snapshot(self) -> ProgressReport:
        message = self.message or self.failures_summary()
        return ProgressReport(
            processed=self.processed,
            failed=self.failed,
            total=self.total,
            images_per_second=self.rate(),
            state=self.state,
            message=scrub(message)[:500],
            updated_at=datetime.now(UTC),
        )


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
            from inference.result import core_api

            self._api = core_api()
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


def publish(reporter: ProgressReporter, tracker: ProgressTracker, shard: int) -> None:
    snapshot = tracker.snapshot()
    print(line(snapshot, shard), flush=True)
    reporter.report(snapshot)
