"""Waking code that waits for a run's children to change, from the kopf watches of those children.

The handlers of the children's watch events (worker pods, Jobs, the progress
and result ConfigMaps, Workloads) call `ChildSignals.changed` with the run's
uid for each event that can change what the run shows, a child's deletion
included. Code that waits for the cluster to reach a state (the deletion
waiting for the run's worker pods to go) opens `watching(run_uid)` before it
reads, reads, and if the state is not there yet awaits `next_change` with a
deadline; a change that arrived between the read and the wait is not lost. Only
runs someone is waiting for are kept. No API calls, no polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class ChildChanges:
    """One waiter's view of a run's children: set by every change since it last woke."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def notify(self) -> None:
        self._changed.set()

    async def next_change(self, timeout: float) -> bool:
        """True once a child changed since the last wake-up (at once if one did); False at the timeout."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout=max(timeout, 0.0))
        except TimeoutError:
            return False
        self._changed.clear()
        return True


class ChildSignals:
    """Run uid -> its current waiters; fed by the child watch handlers."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[ChildChanges]] = {}

    def changed(self, run_uid: str) -> None:
        for waiter in self._waiters.get(run_uid, ()):
            waiter.notify()

    @contextmanager
    def watching(self, run_uid: str) -> Iterator[ChildChanges]:
        waiter = ChildChanges()
        self._waiters.setdefault(run_uid, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(run_uid, set())
            waiters.discard(waiter)
            if not waiters:
                self._waiters.pop(run_uid, None)
