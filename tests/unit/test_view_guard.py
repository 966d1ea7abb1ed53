"""The saved-view guard finds a class that is not a FiftyOne view stage at any depth of a stored stage.

Stored stages are generated: FiftyOne's own stages nesting others (``Flatten`` takes stages),
with a foreign ``_cls`` planted at every depth, in dict values and in lists, as a string or not.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from runtime.view_guard import MAX_DEPTH, MAX_NODES, ViewNotSupported, check_saved_view, foreign_classes

LIMIT = "fiftyone.core.stages.Limit"
FLATTEN = "fiftyone.core.stages.Flatten"
ALLOWED = frozenset({LIMIT, FLATTEN, "fiftyone.core.stages.Match"})
FOREIGN = {"_cls": "subprocess.Popen", "kwargs": [["args", "touch /tmp/x"], ["shell", True]]}


def nested(depth: int, inner: Any, rng: random.Random) -> dict[str, Any]:
    """An allowed stage holding `inner` `depth` levels down, through dicts and lists chosen by `rng`."""
    value = inner
    for _ in range(depth):
        shape = rng.choice(("stages", "list", "dict"))
        if shape == "stages":
            value = {"_cls": FLATTEN, "kwargs": [["stages", [value]]]}
        elif shape == "list":
            value = [{"_cls": LIMIT, "kwargs": [["limit", 1]]}, value]
        else:
            value = {"$expr": value}
    return {"_cls": FLATTEN, "kwargs": [["stages", [value]]]}


@pytest.mark.parametrize("seed", range(40))
def test_a_foreign_class_is_found_at_any_depth(seed: int) -> None:
    rng = random.Random(seed)
    levels = rng.randrange(0, MAX_DEPTH // 5)  # a level is at most 4 nestings: within MAX_DEPTH
    planted: dict[str, Any] = rng.choice(
        [FOREIGN, {"_cls": ["not", "a", "string"]}, {"_cls": None}, {"_cls": 7}]
    )
    assert foreign_classes(nested(levels, planted, rng), ALLOWED) == [repr(planted["_cls"])]


@pytest.mark.parametrize("seed", range(20))
def test_fiftyones_own_stages_pass_at_any_depth(seed: int) -> None:
    rng = random.Random(seed)
    assert (
        foreign_classes(nested(rng.randrange(0, MAX_DEPTH // 5), {"_cls": LIMIT, "kwargs": []}, rng), ALLOWED)
        == []
    )


def test_documents_too_deep_or_too_large_are_refused() -> None:
    deep: Any = {"_cls": LIMIT}
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        foreign_classes(deep, ALLOWED)
    with pytest.raises(ValueError, match="values"):
        foreign_classes({"_cls": LIMIT, "kwargs": [["ids", list(range(MAX_NODES))]]}, ALLOWED)


@dataclass
class _ViewDoc:
    view_stages: list[str] = field(default_factory=list)


@dataclass
class _Dataset:
    stages: list[str]
    name: str = "planted"

    def _get_saved_view_doc(self, name: str) -> _ViewDoc:
        return _ViewDoc(self.stages)


def test_the_check_names_the_foreign_class_and_the_stage() -> None:
    stages = [
        json.dumps({"_cls": LIMIT, "kwargs": [["limit", 1]]}),
        json.dumps(nested(2, FOREIGN, random.Random(1))),
    ]
    with pytest.raises(ViewNotSupported, match=r"stage 1 names 'subprocess.Popen'"):
        check_saved_view(_Dataset(stages), "v")
    for bad in ("{not json", json.dumps([FOREIGN]), json.dumps({"kwargs": []})):
        with pytest.raises(ViewNotSupported):
            check_saved_view(_Dataset([bad]), "v")
