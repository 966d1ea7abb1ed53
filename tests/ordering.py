"""Longest modules first: the order in which the parallel integration tier hands out its modules.

`make integration` gives each process one test module at a time, in collection order
(`--no-loadscope-reorder`). Started last, a long module is a tail the other processes wait out, so
the collection is sorted by each module's measured time (`tests/module_times.json`, longest first;
a module not measured yet counts as short and goes last). Tests keep their file order within a module.
`make test-times` refreshes the file from the last integration run's JUnit XML:
`python -m tests.ordering test-results/integration.xml`.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from pathlib import Path

import pytest

TIMES = Path(__file__).resolve().parent / "module_times.json"
TIMES_ENV = "AUTOLABEL_MODULE_TIMES"  # another times file (the ordering's own test)


def load_times(path: Path | None = None) -> dict[str, float]:
    """Each measured module's seconds, keyed by its path relative to the repository."""
    path = path or Path(os.environ.get(TIMES_ENV, TIMES))
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(module): float(seconds) for module, seconds in data.items()}


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def longest_first(nodeids: list[str], times: Mapping[str, float]) -> list[str]:
    """The node ids regrouped by module, modules by time descending, unmeasured ones last."""
    modules: dict[str, list[str]] = {}
    for nodeid in nodeids:
        modules.setdefault(module_of(nodeid), []).append(nodeid)
    order = sorted(modules, key=lambda module: -times.get(module, 0.0))
    return [nodeid for module in order for nodeid in modules[module]]


def times_from_junit(report: Path, root: Path) -> dict[str, float]:
    """Seconds per test module from a pytest JUnit XML (setup, call and teardown included)."""
    totals: dict[str, float] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        classname = case.get("classname", "")
        parts = classname.split(".")
        # classname is the module's dotted path, with a test class's name after it where there is one.
        while parts and not (root / Path(*parts)).with_suffix(".py").is_file():
            parts.pop()
        if not parts:
            continue
        module = Path(*parts).with_suffix(".py").as_posix()
        totals[module] = totals.get(module, 0.0) + float(case.get("time", "0"))
    return {module: round(seconds, 1) for module, seconds in sorted(totals.items())}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    times = load_times()
    by_id = {item.nodeid: item for item in items}
    items[:] = [by_id[nodeid] for nodeid in longest_first(list(by_id), times)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.ordering test-results/integration.xml", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parent.parent
    measured = times_from_junit(Path(argv[0]), root)
    if not measured:
        print(f"no test modules found in {argv[0]}", file=sys.stderr)
        return 1
    TIMES.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    print(f"{len(measured)} modules, {sum(measured.values()):.0f} s in all -> {TIMES}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
