"""What the engine remembers of a run's validations between passes, so checks are spaced out.

A verdict stands for its spec generation; one with a transient reason (an
unreachable database or Triton server) is checked again, but not before
`REVALIDATE_SECONDS` have passed, so a timer tick does not start a validation
step each time. Kept in memory only: after a restart the run is validated
again. No API calls.
"""

from __future__ import annotations

import time

from controller.api import AutoLabelRun
from controller.reconcile_types import Validation

REVALIDATE_SECONDS = 30.0  # how often an unreachable database or Triton server is checked again


class ValidationCache:
    """The last verdict of each run's validation step."""

    def __init__(self) -> None:
        self._validations: dict[str, tuple[float, Validation]] = {}

    def recent(self, run: AutoLabelRun) -> Validation | None:
        """The last verdict for this generation if younger than the re-check interval (transient failures)."""
        cached = self._validations.get(run.metadata["uid"])
        if cached is None:
            return None
        checked_at, validation = cached
        fresh = time.monotonic() - checked_at < REVALIDATE_SECONDS
        return (
            validation
            if fresh and validation.generation == int(run.metadata.get("generation") or 0)
            else None
        )

    def remember(self, uid: str, validation: Validation) -> None:
        self._validations[uid] = (time.monotonic(), validation)

    def forget(self, uid: str) -> None:
        self._validations.pop(uid, None)
