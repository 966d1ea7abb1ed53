"""Polling helper for integration tests: wait for a condition, fail with what was awaited.

Poll only where nothing announces the condition (a watch, a change stream, a
process's output, `kubectl wait`); then at most twice a second
(tests/unit/test_suite_waits.py holds the suite to that).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

POLL_INTERVAL_S = 0.5
"""The shortest pause between two checks of a condition (2 Hz)."""


def wait_until(
    what: str, predicate: Callable[[], Any], timeout: float = 60, interval: float = POLL_INTERVAL_S
) -> Any:
    """Polls `predicate` every `interval` seconds until it returns something truthy, which is returned."""
    if interval < POLL_INTERVAL_S:
        raise ValueError(f"polling every {interval}s is faster than {1 / POLL_INTERVAL_S:.0f} Hz")
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(min(interval, left))
