"""Progress of one shard: counters and a rate, published as snapshots through a reporter.

`ProgressTracker` counts what the shard processed and failed; `publish` prints the
snapshot as one stdout line and hands it to the shard's `runtime.reporters` reporter.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contract.progress import ProgressReport, ProgressState
from runtime.redact import scrub
from runtime.reporters import ProgressReporter, line


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


def publish(reporter: ProgressReporter, tracker: ProgressTracker, shard: int) -> None:
    snapshot = tracker.snapshot()
    print(line(snapshot, shard), flush=True)
    reporter.report(snapshot)
