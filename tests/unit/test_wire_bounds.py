"""The contract's messages are bounded, and their readers keep their promises on forged input.

A ConfigMap a worker writes can be written by anything running as the worker
ServiceAccount, so every reader is fed a whole class of hostile entries, generated
from a valid message by replacing each value in it (wrong types, huge or negative
numbers, NaN and infinities, huge strings, deep nesting, big lists) and adding keys.
Each reader must refuse the entry the way it promises (a failure, None, `BadReport`)
or return a message whose every value is within the contract's bounds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from contract.env import Command
from contract.progress import (
    MAX_IMAGES_PER_SECOND,
    MAX_REPORT_TEXT,
    MAX_SHARD_COUNT,
    BadReport,
    ProgressReport,
    read_report,
)
from contract.review_agent import AgentVerdict, ReviewRequest, read_agent_verdict, read_request, request_id
from contract.review_stats import MAX_CLASSES
from contract.verdicts import VERDICTS, ProbeVerdict, StepFailure, read_verdict
from contract.wire import ERROR_TEXT_LIMIT, MAX_COUNT, MAX_MAGNITUDE, MESSAGE_LIMIT, WireModel
from controller.review_agent import review_request
from tests.unit.test_dataset_steps import METADATA, SPEC
from tests.unit.test_wire_round_trips import review_result

RAW_REQUEST = review_request(METADATA, SPEC)
RID = request_id(RAW_REQUEST)
HOSTILE: list[Any] = [
    None,
    True,
    "12",
    "x" * 100_000,
    -1,
    10**30,
    0.5,
    float("nan"),
    float("inf"),
    float("-inf"),
    [],
    {},
    ["x"] * 5000,
    {f"k{i}": i for i in range(5000)},
    json.loads("[" * 60 + "]" * 60),
]
"""Values put in place of each value of a valid message, one at a time."""

# Each reader, a valid message for it, and whether it returned a message (else it refused).
Reader = Callable[[str], BaseModel | None]


def _verdict_reader(command: str) -> Reader:
    def read(raw: str) -> BaseModel | None:
        verdict = read_verdict(raw, VERDICTS[Command(command)])
        return None if isinstance(verdict, StepFailure) else verdict

    return read


def _report(raw: str) -> BaseModel | None:
    try:
        return read_report(raw)[0]
    except BadReport:
        return None


READERS: dict[str, tuple[Reader, dict[str, Any]]] = {
    "probe": (
        _verdict_reader("probe"),
        {"ok": False, "reason": "ViewNotFound", "message": "no view", "total": 4},
    ),
    "finalize": (_verdict_reader("finalize"), {"promoted": 1, "discarded": 2}),
    "discard": (_verdict_reader("discard"), {"removed": 3}),
    "review": (_verdict_reader("review"), review_result()),
    "agent": (
        lambda raw: read_agent_verdict(raw, RID),
        {"requestId": RID, "generation": 3, "rulesApplied": True, **review_result(), "computedAt": "t"},
    ),
    "request": (read_request, json.loads(RAW_REQUEST)),
    "progress": (
        _report,
        {"processed": 1, "failed": 0, "total": 2, "imagesPerSecond": 1.5, "state": "Running", "message": "m"},
    ),
}


def _leaves(document: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of every value in a JSON document (an object's keys, a list's first item), and of itself."""
    yield path
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(document, list) and document:
        yield from _leaves(document[0], (*path, 0))


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return copy


def _with_extra_keys(document: Any) -> Iterator[Any]:
    for path in _leaves(document):
        if isinstance(_at(document, path), dict):
            yield _replaced(document, path, {**_at(document, path), "unknownKey": "x" * 100_000})


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def forged(document: dict[str, Any]) -> Iterator[str]:
    """Every entry made from `document` by replacing one value, or adding a key; then non-objects."""
    for path in _leaves(document):
        for value in HOSTILE:
            yield json.dumps(_replaced(document, path, value))
    for changed in _with_extra_keys(document):
        yield json.dumps(changed)
    yield from ("", "{", "null", "[]", '"text"', "[" * 100_000 + "]" * 100_000)


def assert_bounded(value: Any, where: str = "") -> None:
    """Every value within the contract's bounds: texts, counts, finite numbers, list and map sizes."""
    if isinstance(value, str):
        assert len(value) <= MESSAGE_LIMIT, where
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        assert 0 <= value <= MAX_COUNT, (where, value)
    elif isinstance(value, float):
        assert math.isfinite(value) and abs(value) <= MAX_MAGNITUDE, (where, value)
    elif isinstance(value, list):
        assert len(value) <= MAX_CLASSES, where
        for index, item in enumerate(value):
            assert_bounded(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        assert len(value) <= MAX_CLASSES, where
        for key, item in value.items():
            assert_bounded(key, f"{where}.key")
            assert_bounded(item, f"{where}.{key}")
    else:
        raise AssertionError(f"{where}: {type(value).__name__} is no JSON value")


@pytest.mark.parametrize("reader", sorted(READERS))
def test_valid_messages_are_read_as_written(reader: str) -> None:
    read, document = READERS[reader]
    message = read(json.dumps(document))
    assert message is not None
    assert message.model_dump(mode="json", by_alias=True, exclude_unset=True) == document


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_forged_entry_is_refused_or_read_within_the_bounds(reader: str) -> None:
    read, document = READERS[reader]
    count = 0
    for entry in forged(document):
        count += 1
        message = read(entry)  # never raises
        if message is not None:
            assert_bounded(message.model_dump(mode="json", by_alias=True), f"{reader}: {entry[:120]}")
    assert count > 20


@pytest.mark.parametrize(
    ("entry", "promise"),
    [
        ({"processed": -5}, ("processed", 0, "clamped")),
        ({"processed": 10**30}, ("processed", MAX_SHARD_COUNT, "clamped")),
        ({"total": 2.7}, ("total", 2, "clamped")),
        ({"imagesPerSecond": 1e300}, ("images_per_second", MAX_IMAGES_PER_SECOND, "clamped")),
        ({"imagesPerSecond": -3}, ("images_per_second", 0.0, "clamped")),
        ({"message": "m" * 5000}, ("message", "m" * MAX_REPORT_TEXT, None)),
        ({"state": {"$gt": 1}}, ("state", '{"$gt": 1}', None)),
        ({"imagesPerSecond": None}, ("images_per_second", None, None)),
        ({"updatedAt": ""}, ("updated_at", None, None)),
        ({"images_per_second": 5, "extra": [1]}, ("images_per_second", None, None)),  # unknown keys
    ],
)
def test_progress_values_out_of_range_are_clamped_and_noted(
    entry: dict[str, Any], promise: tuple[str, Any, str | None]
) -> None:
    report, clamped = read_report(json.dumps(entry))
    name, value, note = promise
    assert getattr(report, name) == value
    assert bool(clamped) == (note is not None) and all(note in text for text in clamped if note)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('{"processed": "12"}', "processed is not a number"),
        ('{"failed": true}', "failed is not a number"),
        ('{"total": NaN}', "total is not finite"),
        ('{"processed": 1e999}', "processed is not finite"),
        ('{"imagesPerSecond": NaN}', "imagesPerSecond is not a number"),
        ('{"updatedAt": 12}', "updatedAt is not a string"),
        ('{"updatedAt": "noon"}', "updatedAt is not an ISO 8601 time"),
        ("[1]", "not a JSON object but list"),
        ("{", "not JSON"),
    ],
)
def test_unreadable_progress_entries_are_bad_reports(entry: str, problem: str) -> None:
    with pytest.raises(BadReport, match=problem):
        read_report(entry)


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"total": -1}, "total"),
        ({"total": "4"}, "total"),
        ({"total": 4.0}, "total"),
        ({"ok": "yes"}, "ok"),
        ({"reason": "SomethingElse"}, "reason"),
        ({"reason": "ImageNotAllowed"}, "reason"),  # the controller's own, never a probe's
        ({"message": None}, "message"),
    ],
)
def test_a_verdict_of_the_wrong_shape_is_the_steps_failure_naming_it(
    changes: dict[str, Any], refused: str
) -> None:
    valid = READERS["probe"][1]
    verdict = read_verdict(json.dumps({**valid, **changes}), ProbeVerdict)
    assert isinstance(verdict, StepFailure) and f"{refused}:" in verdict.error


def test_long_texts_are_cut_and_unknown_keys_ignored() -> None:
    valid = READERS["probe"][1]
    verdict = read_verdict(json.dumps({**valid, "message": "m" * 10**5, "more": 1}), ProbeVerdict)
    assert isinstance(verdict, ProbeVerdict) and verdict.message == "m" * MESSAGE_LIMIT
    failure = read_verdict(json.dumps({"error": {"nested": "x" * 10**5}}), ProbeVerdict)
    assert isinstance(failure, StepFailure) and failure.error.startswith('{"nested": "xx')
    assert len(failure.error) == ERROR_TEXT_LIMIT
    assert read_verdict(json.dumps({"error": "", **valid}), ProbeVerdict) == ProbeVerdict.model_validate(
        valid
    )


def test_an_agent_verdict_counts_only_for_its_own_request() -> None:
    valid = READERS["agent"][1]
    assert read_agent_verdict(json.dumps(valid), RID) is not None
    assert read_agent_verdict(json.dumps(valid), "0" * 16) is None  # another request's
    for forged_id in ("old", RID.upper(), RID + "0", 12, None):
        assert read_agent_verdict(json.dumps({**valid, "requestId": forged_id}), str(forged_id)) is None
    assert read_agent_verdict(None, RID) is None and read_agent_verdict("", RID) is None


def test_a_request_out_of_the_specs_bounds_is_no_request() -> None:
    valid = json.loads(RAW_REQUEST)
    assert read_request(RAW_REQUEST) is not None
    for changes in (
        {"refreshIntervalSeconds": 1},
        {"generation": -1},
        {"agent": "a" * 300},
        {"review": {"problemTags": ["t"] * 33}},
        {"review": {"approve": [{"classes": ["c" * 257]}]}},
    ):
        assert read_request(json.dumps({**valid, **changes})) is None, changes


def _schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    models: list[type[BaseModel]] = [*VERDICTS.values(), AgentVerdict, ReviewRequest, ProgressReport]
    for model in models:
        schema = model.model_json_schema(mode="validation")
        for name, node in _nodes(schema):
            yield f"{model.__name__}{name}", node


def _nodes(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if "type" in node:
            yield where, node
        for key, value in node.items():
            yield from _nodes(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, f"{where}[{index}]")


def test_every_string_number_list_and_map_of_every_message_has_a_bound() -> None:
    unbounded = []
    for where, node in _schemas():
        kind = node["type"]
        bounded = {
            "string": "maxLength" in node or "enum" in node or node.get("format") == "date-time",
            "integer": "maximum" in node,
            "number": "maximum" in node or "exclusiveMaximum" in node,
            "array": "maxItems" in node,
            "object": "properties" in node or "maxProperties" in node,
        }.get(kind, True)
        if not bounded:
            unbounded.append(where)
    assert unbounded == []


def test_every_message_is_a_wire_model() -> None:
    models: list[type[BaseModel]] = [
        *VERDICTS.values(),
        AgentVerdict,
        ReviewRequest,
        ProgressReport,
        StepFailure,
    ]
    for model in models:
        assert issubclass(model, WireModel)
        assert model.model_config.get("extra") == "ignore"  # another version's key is no reason to refuse
