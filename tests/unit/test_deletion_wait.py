"""The deletion waits for the run's worker pods on the watch of those pods, with a deadline, never on a clock.

`controller.deletion.wait_for_workers_to_stop` reads the pods, then again only
when `ChildSignals` (fed by the pod watch handler) reports a change of the run's
children; `controller.child_signals` keeps no change that arrives between a read
and the wait from being lost.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from controller.child_signals import ChildSignals
from controller.deletion import wait_for_workers_to_stop


class Pods:
    """A stand-in for `Kube.list_run_pods` over a set of pods the test removes; `read` is set on each list."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)
        self.lists = 0
        self.read: asyncio.Event | None = None

    async def list_run_pods(self, namespace: str, run_uid: str) -> list[dict[str, Any]]:
        self.lists += 1
        if self.read is not None:
            self.read.set()
        return [{"metadata": {"name": name}} for name in sorted(self.names)]


async def wait(pods: Pods, signals: ChildSignals, timeout: float) -> bool:
    with signals.watching("run") as changes:
        return await wait_for_workers_to_stop(pods, changes, "ns", "run", timeout)  # type: ignore[arg-type]


def test_no_pods_needs_one_read_and_no_wait() -> None:
    pods = Pods()
    assert asyncio.run(wait(pods, ChildSignals(), 5)) and pods.lists == 1


def test_each_pod_deletion_reported_by_the_watch_reads_again_until_none_is_left() -> None:
    pods, signals = Pods("w-0", "w-1"), ChildSignals()

    async def scenario() -> bool:
        pods.read = asyncio.Event()
        waiting = asyncio.create_task(wait(pods, signals, 30))
        for name in ("w-0", "w-1"):
            await pods.read.wait()  # the waiter has read the pods (its next read follows a change)
            pods.read.clear()
            pods.names.discard(name)
            signals.changed("other-run")  # another run's child: wakes nothing
            signals.changed("run")
        return await waiting

    started = time.monotonic()
    assert asyncio.run(scenario())
    assert pods.lists == 3  # the first read, then one per reported change
    assert time.monotonic() - started < 5
    assert not signals._waiters  # nothing is kept once nobody waits


def test_pods_that_never_go_end_the_wait_at_the_deadline() -> None:
    pods = Pods("w-0")
    started = time.monotonic()
    assert not asyncio.run(wait(pods, ChildSignals(), 0.3))
    assert 0.3 <= time.monotonic() - started < 2
    assert pods.lists == 1  # nothing changed, so nothing was read again


def test_a_change_between_the_read_and_the_wait_is_not_lost() -> None:
    signals = ChildSignals()

    async def scenario() -> tuple[bool, bool]:
        with signals.watching("run") as changes:
            signals.changed("run")  # arrives before the waiter awaits
            first = await changes.next_change(0.01)
            second = await changes.next_change(0.01)  # nothing new since it woke
        return first, second

    assert asyncio.run(scenario()) == (True, False)
