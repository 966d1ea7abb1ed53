"""Many runs in Review at once: idle, they cost the controller nothing; a change still shows in time.

20 runs reach Review (created five at a time, so this 2-core machine is not asked to start 20
FiftyOne processes at once), one review agent serves them all, and the controller's peak resident
memory (VmHWM of its process, read from /proc: measured, not limited) stays under 256 MiB while a
label tagged in the App still reaches status.review within refreshIntervalSeconds + 10 s. An idle run
is not recomputed (its verdict keeps its time), only checked for changes.
"""

from __future__ import annotations

import functools
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
RUNS, BATCH, INTERVAL = 20, 5, 5
RSS_LIMIT_KIB = 256 * 1024


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def reconciles(operator: Operator) -> float:
    match = re.search(r"^autolabel_reconcile_duration_seconds_count (\S+)$", operator.metrics(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def verdict_time(cluster: ClusterHandle, operator: Operator, name: str) -> str:
    """When the review agent last recomputed the run (its verdict in the result ConfigMap)."""
    result_map = operator.get_run(name)["status"]["jobName"] + "-result"
    data = json.loads(
        cluster.kubectl("get", "configmap", result_map, "-n", operator.namespace, "-o", "json").stdout
    )["data"]
    return str(json.loads(data["review"])["computedAt"])


def approved_one(operator: Operator, name: str) -> bool:
    return (operator.get_run(name)["status"].get("review") or {}).get("approved") == 1


def test_twenty_idle_runs_in_review_cost_nothing_and_a_tag_still_shows_in_time(
    cluster: ClusterHandle, operator: Operator, triton: Any, mongo: Any, tmp_path: Path
) -> None:
    database_secret(cluster, operator.namespace, mongo)
    names, datasets = [f"many-{index:02d}" for index in range(RUNS)], []
    for start in range(0, RUNS, BATCH):
        for name in names[start : start + BATCH]:
            dataset = new_dataset(tmp_path / name, 2)
            datasets.append(dataset)
            manifest = run_manifest(
                name,
                operator.namespace,
                dataset.name,
                triton,
                review={"refreshIntervalSeconds": INTERVAL},
                execution={"parallelism": 1, "maxInFlight": 2},
            )
            apply(cluster, manifest)
        for name in names[start : start + BATCH]:
            run = operator.wait_for_phase(name, {"Review", "Failed"}, timeout=400)
            assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)

    def all_counted() -> bool:
        return all((operator.get_run(n)["status"].get("review") or {}).get("total") == 2 for n in names)

    wait_until("status.review of all 20 runs", all_counted, 240)
    assert operator.process is not None
    pid = operator.process.pid
    before = reconciles(operator)
    time.sleep(10)
    # Nothing is polled: an idle run in Review has no timer, so 20 of them over 10 s cause (almost) no
    # pass; a poll of each every 2 s (the test interval) would be ~100.
    assert reconciles(operator) - before < RUNS

    # Idle runs are not recomputed: the agent's verdict of each run stays the one it wrote last.
    verdicts = {name: verdict_time(cluster, operator, name) for name in names}
    time.sleep(2 * INTERVAL + 2)
    assert {name: verdict_time(cluster, operator, name) for name in names} == verdicts

    # The App: a reviewer approves a label of the first and of the last run; both show in time.
    for name, dataset in ((names[0], datasets[0]), (names[-1], datasets[-1])):
        staging = operator.get_run(name)["status"]["reviewField"]
        started = time.monotonic()
        dataset.select(dataset.first().id).tag_labels("autolabel:approved", label_fields=staging)
        shown = functools.partial(approved_one, operator, name)
        wait_until(f"{name}: the tag in status.review", shown, INTERVAL + 10)
        assert time.monotonic() - started <= INTERVAL + 10
    agents = json.loads(
        cluster.kubectl(
            "get", "deployments", "-n", operator.namespace, "-l", "app.kubernetes.io/component=review-agent",
            "-o", "json",
        ).stdout
    )["items"]  # fmt: skip
    assert len(agents) == 1  # one agent for the namespace's database, however many runs
    peak = peak_rss_kib(pid)
    assert peak < RSS_LIMIT_KIB, f"controller peak RSS {peak / 1024:.0f} MiB"
    for name in names:
        cluster.kubectl("delete", "alr", name, "-n", operator.namespace, "--wait=false")
