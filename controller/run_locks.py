"""One pass at a time per run: its lock, the pass waiting for it, retry of a failed pass, the runs gone.

kopf runs a run's handlers, its timer and its children's events side by side,
so every pass over a run and its deletion take the run's lock. Changes of
children that arrive while a pass waits for the lock are folded into that pass
(`nudge` returns when one is already waiting). kopf never retries an event
handler, so a pass started by a child's change that fails is tried again here
with back-off (`CHILD_RETRY_SECONDS`). A run marked gone (being deleted, or
deleted) is never reconciled again. No API calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

log = logging.getLogger("autolabel.controller")
CHILD_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # a failed pass after a child's change, again

Pass = Callable[[Mapping[str, Any]], Awaitable[None]]


class RunLocks:
    """The per-run locks of one engine, with the bookkeeping of waiting, retried and gone runs."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._queued: set[str] = set()  # runs with a pass waiting for the lock (coalesces nudges)
        self._gone: set[str] = set()  # runs being deleted or deleted: never reconciled again
        self._retries: dict[str, int] = {}  # run uid -> failed passes after a child's change in a row
        self._retrying: set[asyncio.Future[None]] = set()

    def lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def drop(self, uid: str) -> None:
        """Lets go of a deleted run's lock (after its deletion released it)."""
        self._locks.pop(uid, None)

    def is_gone(self, uid: str) -> bool:
        return uid in self._gone

    def mark_gone(self, uid: str) -> None:
        self._gone.add(uid)

    def taken(self, uid: str) -> None:
        """A pass holds the lock: a child's change from now on is seen by its reads."""
        self._queued.discard(uid)

    def forget(self, uid: str) -> None:
        """Marks a deleted run gone for good and drops its waiting pass and retry count."""
        self._gone.add(uid)
        self._queued.discard(uid)
        self._retries.pop(uid, None)

    async def nudge(self, body: Mapping[str, Any], reconcile: Pass) -> None:
        """Runs `reconcile` after one of the run's children changed; one waiting pass per run is enough."""
        uid = body["metadata"]["uid"]
        if uid in self._queued or uid in self._gone or body["metadata"].get("deletionTimestamp"):
            return
        self._queued.add(uid)
        try:
            await reconcile(body)
        except Exception as error:  # kopf never retries an event handler: this does, with back-off
            self._queued.discard(uid)
            attempt = self._retries.get(uid, 0)
            self._retries[uid] = attempt + 1
            delay = CHILD_RETRY_SECONDS[min(attempt, len(CHILD_RETRY_SECONDS) - 1)]
            log.warning(
                "run %s: the pass after a child's change failed (%s: %s); again in %.0fs",
                body["metadata"].get("name"),
                type(error).__name__,
                error,
                delay,
            )
            asyncio.get_running_loop().call_later(delay, self._retry, body, reconcile)
        else:
            self._retries.pop(uid, None)

    def _retry(self, body: Mapping[str, Any], reconcile: Pass) -> None:
        task = asyncio.ensure_future(self.nudge(body, reconcile))
        self._retrying.add(task)  # a reference, or the task could be collected before it runs
        task.add_done_callback(self._retrying.discard)
