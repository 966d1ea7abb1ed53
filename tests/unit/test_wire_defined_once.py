"""The wire contract is defined once, in `contract/`: no copy of its constants, enums or models elsewhere.

Read from the source (the AST, so prose in docstrings does not count): the controller,
the worker and the App plugin never spell a wire constant as a literal, never copy a
contract enum into a ``Literal[...]``, never re-export a contract name, and no
"must match" comment is left to keep two copies in step.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import pytest

from contract import review, review_agent, verdicts, wire, worker
from contract.env import Command, Flag
from contract.progress import PROGRESS_KEY_PREFIX
from controller.api import Reason
from tests.layout import POD_PACKAGES

REPO = Path(__file__).resolve().parents[2]
SIDES = ("controller", *POD_PACKAGES, "plugins")
WIRE_VALUES = {
    wire.RUN_UID_LABEL,
    wire.COMPONENT_LABEL,
    review_agent.REQUEST_KEY,
    review_agent.AGENT_LABEL,
    review.APPROVED_TAG,
    review.REJECTED_TAG,
    verdicts.FATAL_PREFIX,
    PROGRESS_KEY_PREFIX,
    *(reason.value for reason in verdicts.ValidationReason),
    *(flag.value for flag in Flag),
}
"""Distinctive enough to find (the result selector starts with the component label). Short
common words (the verdict key ``review``, the component ``result``, the decisions, the commands,
the progress states that are status words too) are held by the typed tests instead (the round
trips, `test_wire_bounds`)."""
CONTRACT_ENUMS: list[type[Enum]] = [
    worker.Task,
    worker.Protocol,
    worker.OutputFormat,
    worker.BoxFormat,
    worker.InputLayout,
    worker.InputMode,
    worker.ResizeMode,
    worker.WriteConcernMode,
    review.Decision,
    review.VisualizationMethod,
    verdicts.ValidationReason,
    Command,
    Flag,
]


def sources(*tops: str) -> Iterator[Path]:
    for top in tops:
        yield from sorted((REPO / top).rglob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal of `path` but its docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def spells(text: str) -> str | None:
    """The wire constant `text` spells, in whole or as its start (a selector, a key, a log line)."""
    return next((value for value in WIRE_VALUES if text == value or text.startswith(value)), None)


def test_no_side_spells_a_wire_constant() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {text[:60]!r}"
        for path in sources(*SIDES)
        for line, text in literals(path)
        if spells(text)
    ]
    assert found == []


def test_the_contract_spells_each_wire_constant_once() -> None:
    counts = {value: 0 for value in WIRE_VALUES}
    for path in sources("contract"):
        for _, text in literals(path):
            if text in counts:
                counts[text] += 1
    assert {value: count for value, count in counts.items() if count != 1} == {}


def test_no_must_match_comment_is_left() -> None:
    pattern = re.compile(r"must (match|be kept in step|stay in sync)", re.IGNORECASE)
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sources(*SIDES, "contract")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def _literal_values(node: ast.Subscript) -> set[str]:
    elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    return {e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def test_no_literal_copies_a_contract_enum() -> None:
    """A ``Literal["grpc", "http"]`` beside `Protocol` would let the two drift apart."""
    enum_values = {enum: {str(member.value) for member in enum} for enum in CONTRACT_ENUMS}
    found = []
    for path in sources(*SIDES):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "Literal":
                values = _literal_values(node)
                copied = [enum.__name__ for enum, known in enum_values.items() if values and values <= known]
                if copied:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {sorted(values)} copies {copied}")
    assert found == []


@pytest.mark.parametrize("top", SIDES)
def test_no_side_re_exports_a_contract_name(top: str) -> None:
    """``from contract.x import Name as Name`` (or a module re-exporting contract names) is a shim."""
    found = [
        f"{path.relative_to(REPO)}: {alias.name}"
        for path in sources(top)
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("contract")
        for alias in node.names
        if alias.asname == alias.name
    ]
    assert found == []


def test_the_controllers_reasons_are_its_own() -> None:
    """The probe's reasons are `ValidationReason`; `Reason` holds only those the controller gives."""
    assert {reason.value for reason in Reason}.isdisjoint(
        reason.value for reason in verdicts.ValidationReason
    )
