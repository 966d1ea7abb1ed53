"""Many runs in Review at once: idle, they cost the controller nothing; a change still shows in time.

20 runs reach Review (at most five on their way at a time, so this 2-core machine is not asked to
start 20 FiftyOne processes at once), one review agent serves them all, and the controller's peak
resident memory (VmHWM of its process, read from /proc: measured, not limited) stays under 256 MiB
while a label tagged in the App still reaches status.review within refreshIntervalSeconds + 10 s.
Idle, over two refresh intervals and a margin, the 20 runs cause fewer reconcile passes than there
are runs, and no run is recomputed (its verdict keeps its time), only checked for changes.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest, runs_by_name
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
RUNS, IN_FLIGHT, INTERVAL = 20, 5, 5
IDLE_WINDOW = 2 * INTERVAL + 2  # a recompute (or a poll) once per refresh interval would show in it
POLL_SECONDS = 1.0
RSS_LIMIT_KIB = 256 * 1024


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def reconciles(operator: Operator) -> float:
    match = re.search(r"^autolabel_reconcile_duration_seconds_count (\S+)$", operator.metrics(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def phase(run: dict[str, Any] | None) -> str | None:
    return ((run or {}).get("status") or {}).get("phase")


def verdict_times(cluster: ClusterHandle, namespace: str, runs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """When the review agent last recomputed each of `runs` (its verdict in the run's result ConfigMap),
    read in one request."""
    names = {run["metadata"]["uid"]: name for name, run in runs.items()}
    maps = json.loads(
        cluster.kubectl(
            "get", "configmaps", "-n", namespace, "-l", "app.kubernetes.io/component=result", "-o", "json"
        ).stdout
    )["items"]
    found = {}
    for config_map in maps:
        name = names.get(config_map["metadata"]["labels"].get("autolabel.dev/run-uid"))
        verdict = (config_map.get("data") or {}).get("review")
        if name is not None and verdict:
            found[name] = str(json.loads(verdict)["computedAt"])
    return found


def holds_throughout(what: str, check: Callable[[], None], seconds: float) -> None:
    """Runs `check` (which asserts) about once a second for `seconds`: the claim is about a span of time."""
    start = time.monotonic()
    end = start + seconds
    while True:
        try:
            check()
        except AssertionError as error:
            raise AssertionError(f"{what}: broken after {time.monotonic() - start:.1f}s: {error}") from None
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(POLL_SECONDS, left))


def approved_one(operator: Operator, name: str) -> bool:
    return (operator.get_run(name)["status"].get("review") or {}).get("approved") == 1


def bring_to_review(
    cluster: ClusterHandle, namespace: str, names: list[str], manifest: Callable[[str], dict[str, Any]]
) -> None:
    """Applies `manifest(name)` of each run, keeping at most IN_FLIGHT of them short of Review; returns
    when all are in Review."""
    waiting, created = list(names), list[str]()
    deadline = time.monotonic() + 900
    while True:
        runs = runs_by_name(cluster, namespace)
        failed = [name for name in created if phase(runs.get(name)) == "Failed"]
        assert not failed, json.dumps(runs[failed[0]]["status"], indent=1)
        on_the_way = [name for name in created if phase(runs.get(name)) != "Review"]
        while waiting and len(on_the_way) < IN_FLIGHT:
            name = waiting.pop(0)
            apply(cluster, manifest(name))
            created.append(name)
            on_the_way.append(name)
        if not waiting and not on_the_way:
            return
        assert time.monotonic() < deadline, f"not in Review after 900 s: {on_the_way}"
        time.sleep(POLL_SECONDS)


def test_twenty_idle_runs_in_review_cost_nothing_and_a_tag_still_shows_in_time(
    cluster: ClusterHandle, operator: Operator, triton: Any, mongo: Any, tmp_path: Path
) -> None:
    namespace = operator.namespace
    database_secret(cluster, namespace, mongo)
    names = [f"many-{index:02d}" for index in range(RUNS)]
    datasets: dict[str, Any] = {}

    def manifest(name: str) -> dict[str, Any]:
        datasets[name] = new_dataset(tmp_path / name, 2)
        review, execution = {"refreshIntervalSeconds": INTERVAL}, {"parallelism": 1, "maxInFlight": 2}
        return run_manifest(name, namespace, datasets[name].name, triton, review=review, execution=execution)

    bring_to_review(cluster, namespace, names, manifest)

    def all_counted() -> dict[str, dict[str, Any]] | None:
        runs = runs_by_name(cluster, namespace)
        counted = all((runs[n]["status"].get("review") or {}).get("total") == 2 for n in names)
        return {name: runs[name] for name in names} if counted else None

    runs = wait_until("status.review of all 20 runs", all_counted, 240)
    assert operator.process is not None
    pid = operator.process.pid

    # Idle: an idle run in Review has no timer, so 20 of them cause (almost) no pass, where a poll of
    # each every 2 s (the test's reconcile interval) would be ~100; and the agent recomputes none of
    # them: each verdict stays the one it wrote last.
    before = reconciles(operator)
    verdicts = verdict_times(cluster, namespace, runs)
    assert set(verdicts) == set(names)

    def idle() -> None:
        assert reconciles(operator) - before < RUNS
        assert verdict_times(cluster, namespace, runs) == verdicts

    holds_throughout("the runs idle", idle, IDLE_WINDOW)

    # The App: a reviewer approves a label of the first and of the last run; both show in time.
    for name in (names[0], names[-1]):
        dataset = datasets[name]
        staging = runs[name]["status"]["reviewField"]
        started = time.monotonic()
        dataset.select(dataset.first().id).tag_labels("autolabel:approved", label_fields=staging)
        shown = functools.partial(approved_one, operator, name)
        wait_until(f"{name}: the tag in status.review", shown, INTERVAL + 10)
        assert time.monotonic() - started <= INTERVAL + 10
    untouched = {name: verdicts[name] for name in names[1:-1]}
    latest = verdict_times(cluster, namespace, runs)
    assert {name: latest[name] for name in untouched} == untouched  # still not recomputed
    agents = json.loads(
        cluster.kubectl(
            "get", "deployments", "-n", namespace, "-l", "app.kubernetes.io/component=review-agent",
            "-o", "json",
        ).stdout
    )["items"]  # fmt: skip
    assert len(agents) == 1  # one agent for the namespace's database, however many runs
    peak = peak_rss_kib(pid)
    assert peak < RSS_LIMIT_KIB, f"controller peak RSS {peak / 1024:.0f} MiB"
    for name in names:
        cluster.kubectl("delete", "alr", name, "-n", namespace, "--wait=false")
