"""Forged or corrupt progress ConfigMap entries: clamped or left out with a warning Event, never raising."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.progress import MAX_SHARD_COUNT
from controller.api import AutoLabelRunStatus, Phase
from controller.reconcile import reconcile
from controller.reconcile_types import Observed
from controller.shards import parse_progress
from tests.unit.test_controller_reconcile import NOW, job, pod, run, validated

GOOD = json.dumps({"processed": 3, "failed": 1, "total": 5, "updatedAt": "2026-11-28T12:00:00+00:00"})

FORGED: list[tuple[str, str]] = [
    ("negative", json.dumps({"processed": -1, "failed": -7, "total": -2})),
    ("huge", json.dumps({"processed": 10**30, "total": 10**30})),
    ("huge-float", '{"processed": 1e400}'),
    ("nan", '{"processed": NaN}'),
    ("infinite-rate", '{"processed": 1, "imagesPerSecond": Infinity}'),
    ("negative-rate", json.dumps({"processed": 1, "imagesPerSecond": -5})),
    ("not-json", "{processed: 1"),
    ("json-list", "[1, 2]"),
    ("json-null", "null"),
    ("json-string", '"done"'),
    ("count-as-string", json.dumps({"processed": "12"})),
    ("count-as-bool", json.dumps({"processed": True})),
    ("count-as-object", json.dumps({"processed": {"$gt": 1}})),
    ("bad-time", json.dumps({"processed": 1, "updatedAt": "yesterday"})),
    ("time-as-number", json.dumps({"processed": 1, "updatedAt": 12})),
    ("naive-time", json.dumps({"processed": 1, "updatedAt": "2026-11-28T12:00:00"})),
    ("deep-nesting", "[" * 100000 + "]" * 100000),
    ("long-message", json.dumps({"processed": 1, "message": "x" * 10**6, "state": ["a"]})),
]


# Read as meant (a naive time is UTC, long text cut short): no warning.
HARMLESS = {"naive-time", "long-message"}


@pytest.mark.parametrize(("case", "entry"), FORGED, ids=[case for case, _ in FORGED])
def test_a_forged_entry_never_stops_reconcile(case: str, entry: str) -> None:
    progress = parse_progress({"shard-0": GOOD, "shard-1": entry})
    actions = reconcile(
        validated(total=10),
        Observed(now=NOW, job=job(), pods=[pod(0, "Running"), pod(1, "Running")], progress=progress),
    )
    assert actions.status.phase is Phase.INFERRING
    # What is written is valid status, JSON and all (no NaN, nothing past the schema's bounds).
    dumped = json.loads(json.dumps(actions.status.dump(), allow_nan=False))
    AutoLabelRunStatus.model_validate(dumped)
    shard_0, shard_1 = actions.status.shards
    assert shard_0.processed == 3 and shard_0.failed == 1
    assert 0 <= shard_1.processed <= MAX_SHARD_COUNT and 0 <= shard_1.failed <= MAX_SHARD_COUNT
    assert shard_1.images_per_second is None or 0 <= shard_1.images_per_second <= 1e9
    if case not in HARMLESS:
        warnings = [e for e in actions.events if e.type == "Warning" and e.reason == "InvalidProgressReport"]
        assert len(warnings) == 1 and "shard-1" in warnings[0].message, actions.events
        assert len(warnings[0].message) <= 1024


def test_values_out_of_range_are_clamped_and_unreadable_entries_left_out() -> None:
    reports = parse_progress(
        {
            "shard-0": json.dumps({"processed": -1, "total": 10**30}),
            "shard-1": "{not json",
            "shard-2": GOOD,
            "shard-x": "{}",
            "shard--1": "{}",
            "other": "1",
        }
    )
    assert sorted(reports) == [0, 2]
    assert (reports[0].processed, reports[0].total) == (0, MAX_SHARD_COUNT)
    assert reports[2].processed == 3
    problems = " | ".join(reports.problems)
    for key in ("shard-0", "shard-1", "shard-x", "shard--1"):
        assert key in problems
    assert "shard-2" not in problems and "other" not in problems


def test_clean_entries_give_no_event() -> None:
    progress = parse_progress({"shard-0": GOOD})
    actions = reconcile(validated(), Observed(now=NOW, job=job(), progress=progress))
    assert not any(e.reason == "InvalidProgressReport" for e in actions.events)


def test_sums_over_many_forged_shards_stay_valid() -> None:
    entries: dict[str, Any] = {f"shard-{i}": json.dumps({"processed": 10**30}) for i in range(1000)}
    actions = reconcile(
        run(status=validated().status.dump(), execution={"parallelism": 1000}),
        Observed(now=NOW, job=job(), progress=parse_progress(entries)),
    )
    assert actions.status.progress is not None
    assert actions.status.progress.processed <= 1000 * MAX_SHARD_COUNT < 2**63
