"""What the engine remembers of a run's validations between passes, so checks are spaced out.

A verdict stands for its spec generation; one with a transient reason (an
unreachable database or Triton server) is checked again, but not before
`REVALIDATE_SECONDS` have passed, so a timer tick does not start a validation
step each time. A validation step that gave no verdict (it crashed) is not
started again for the same interval. Kept in memory only: after a restart the
run is validated again. No API calls.
"""

from __future__ import annotations

import time

from controller.api import AutoLabelRun
from controller.reconcile_types import Validation

REVALIDATE_SECONDS = 30.0  # how often an unreachable database or Triton server is checked again


class ValidationCache:
    """The last verdict of each run's validation step, and when one last gave none."""

    def __init__(self) -> None:
        self._validations: dict[str, tuple[float, Validation]] = {}
        self._errors: dict[str, float] = {}

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

    def may_validate(self, uid: str) -> bool:
        """False for a while after a validation step that gave no verdict (it crashed)."""
        failed_at = self._errors.get(uid)
        return failed_at is None or time.monotonic() - failed_at >= REVALIDATE_SECONDS

    def remember(self, uid: str, validation: Validation) -> None:
        self._validations[uid] = (time.monotonic(), validation)

    def gave_verdict(self, uid: str) -> None:
        """A crash of an earlier step no longer holds the next validation back."""
        self._errors.pop(uid, None)

    def gave_no_verdict(self, uid: str) -> None:
        self._errors[uid] = time.monotonic()

    def forget(self, uid: str) -> None:
        self._validations.pop(uid, None)
        self._errors.pop(uid, None)
