"""The suite waits on events, not on clocks: no fixed sleep over 2 s, no polling faster than 2 Hz.

Every .py under tests/ is parsed with `ast` and these calls are reported (file and line):
- a sleep (`time.sleep`, `asyncio.sleep`, a bare `sleep`) of a constant longer than 2 s;
- a pause inside a loop (a sleep, or `.wait(x)` as on a `threading.Event`) of a constant
  shorter than 0.5 s: that loop polls faster than 2 Hz;
- a polling interval shorter than 0.5 s passed as a constant keyword (`interval=`,
  `poll_interval=`, `poll_s=`, ...) to any call, as to `tests.waiting.wait_until`.
A constant is a number, a module-level name bound to one, or arithmetic, `min` and `max` of
those; `min(0.2, left)` is known to be at most 0.2, `max(3, x)` at least 3.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
LONGEST_SLEEP_S = 2.0
SHORTEST_POLL_S = 0.5
INTERVAL_KEYWORD = re.compile(r"(poll_?)?(interval|period)(_s|_seconds)?|poll(_s|_seconds)?")

Bounds = tuple[float | None, float | None]
"""What is known of a value: at least the first, at most the second (None: unknown)."""


def _module_constants(tree: ast.Module) -> dict[str, float]:
    names: dict[str, float] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        match target, value:
            case ast.Tuple(elts=targets), ast.Tuple(elts=values) if len(targets) == len(values):
                pairs = list(zip(targets, values, strict=True))  # A, B = 1, 2
            case _:
                pairs = [(target, value)]
        for name, expression in pairs:
            low, high = _bounds(expression, names)
            if isinstance(name, ast.Name) and low is not None and low == high:
                names[name.id] = low
    return names


def _bounds(node: ast.expr, names: dict[str, float]) -> Bounds:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return float(node.value), float(node.value)
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id], names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        low, high = _bounds(node.operand, names)
        return (None if high is None else -high), (None if low is None else -low)
    if isinstance(node, ast.BinOp):
        left, right = _bounds(node.left, names), _bounds(node.right, names)
        if left[0] is None or left[0] != left[1] or right[0] is None or right[0] != right[1]:
            return None, None
        a, b = left[0], right[0]
        operations = {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}
        if isinstance(node.op, ast.Div) and b:
            return a / b, a / b
        exact = operations.get(type(node.op))
        return exact, exact
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
        args = [_bounds(arg, names) for arg in node.args]
        lows, highs = [b[0] for b in args], [b[1] for b in args]
        known_lows = [v for v in lows if v is not None]
        known_highs = [v for v in highs if v is not None]
        if not args:
            return None, None
        if node.func.id == "min":
            low = min(known_lows) if len(known_lows) == len(args) else None
            return low, (min(known_highs) if known_highs else None)
        high = max(known_highs) if len(known_highs) == len(args) else None
        return (max(known_lows) if known_lows else None), high
    return None, None


def _pause(call: ast.Call) -> tuple[str, ast.expr] | None:
    """(what, duration) when `call` pauses: a sleep, or a `.wait(timeout)`."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name not in ("sleep", "wait"):
        return None
    if name == "wait" and not isinstance(func, ast.Attribute):
        return None
    duration = call.args[0] if call.args else None
    for keyword in call.keywords:
        if keyword.arg in ("seconds", "delay", "secs", "timeout"):
            duration = keyword.value
    return (name, duration) if duration is not None else None


class _Finder(ast.NodeVisitor):
    def __init__(self, path: Path, names: dict[str, float]) -> None:
        self.path, self.names = path, names
        self.loops = 0
        self.found: list[str] = []

    def _report(self, node: ast.AST, message: str) -> None:
        shown = self.path.relative_to(TESTS.parent) if self.path.is_relative_to(TESTS.parent) else self.path
        self.found.append(f"{shown}:{getattr(node, 'lineno', 0)}: {message}")

    def _in_loop(self, node: ast.For | ast.AsyncFor | ast.While) -> None:
        for child in (node.target, node.iter) if not isinstance(node, ast.While) else (node.test,):
            self.visit(child)
        self.loops += 1
        for statement in node.body:
            self.visit(statement)
        self.loops -= 1
        for statement in node.orelse:
            self.visit(statement)

    visit_For = visit_AsyncFor = visit_While = _in_loop

    def _new_scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef) -> None:
        outer, self.loops = self.loops, 0
        self.generic_visit(node)
        self.loops = outer

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _new_scope

    def visit_Call(self, node: ast.Call) -> None:
        pause = _pause(node)
        if pause is not None:
            what, duration = pause
            low, high = _bounds(duration, self.names)
            if what == "sleep" and low is not None and low > LONGEST_SLEEP_S:
                self._report(
                    node, f"a fixed sleep of {low:g} s (over {LONGEST_SLEEP_S:g} s): wait on an event"
                )
            if self.loops and high is not None and high < SHORTEST_POLL_S:
                self._report(node, f"a loop pausing {high:g} s polls faster than {1 / SHORTEST_POLL_S:g} Hz")
        for keyword in node.keywords:
            if keyword.arg and INTERVAL_KEYWORD.fullmatch(keyword.arg):
                high = _bounds(keyword.value, self.names)[1]
                if high is not None and high < SHORTEST_POLL_S:
                    self._report(
                        keyword.value,
                        f"{keyword.arg}={high:g}: polling faster than {1 / SHORTEST_POLL_S:g} Hz",
                    )
        self.generic_visit(node)


def clock_waits(path: Path) -> list[str]:
    """What in the Python file `path` waits on a clock rather than an event, as `file:line: why`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    finder = _Finder(path, _module_constants(tree))
    finder.visit(tree)
    return finder.found


def suite_clock_waits(root: Path) -> tuple[int, list[str]]:
    """How many .py files under `root` were read, and what in them waits on a clock."""
    files = sorted(root.rglob("*.py"))
    return len(files), [finding for path in files for finding in clock_waits(path)]


def test_no_test_sleeps_long_or_polls_fast() -> None:
    read, found = suite_clock_waits(TESTS)
    assert read > 50, read  # the whole suite is read, not an empty glob
    assert not found, "\n".join(found)


PLANTED = """\
import asyncio
import threading
import time

from tests.waiting import wait_until

SETTLE_S = 1.5
TICK, TRIES = 0.1, 3


def settles() -> None:
    time.sleep(3)
    time.sleep(SETTLE_S * 2)
    time.sleep(max(5, SETTLE_S))
    time.sleep(2)
    time.sleep(SETTLE_S)


def polls(stop: threading.Event, left: float) -> None:
    while not stop.is_set():
        time.sleep(0.05)
        stop.wait(TICK)
        time.sleep(min(0.2, left))
        time.sleep(0.5)
        time.sleep(left)
    for _ in range(3):
        def later() -> None:
            time.sleep(0.1)
    time.sleep(0.1)
    wait_until("ready", lambda: True, 30, interval=0.1)
    wait_until("ready", lambda: True, 30, interval=0.5)
    wait_until("ready", lambda: True, poll_s=TICK)


async def waits() -> None:
    await asyncio.sleep(10)
    for _ in range(10):
        await asyncio.sleep(0.25)
"""


def test_the_check_finds_each_planted_clock_wait_and_nothing_else(tmp_path: Path) -> None:
    planted = tmp_path / "test_planted.py"
    planted.write_text(PLANTED)
    found = clock_waits(planted)
    assert [int(line.split(":")[1]) for line in found] == [12, 13, 14, 21, 22, 23, 30, 32, 36, 38], "\n".join(
        found
    )
    assert found[0] == f"{planted}:12: a fixed sleep of 3 s (over 2 s): wait on an event"
    assert found[3] == f"{planted}:21: a loop pausing 0.05 s polls faster than 2 Hz"
    assert found[6] == f"{planted}:30: interval=0.1: polling faster than 2 Hz"
    # The suite's check, given a tree holding that file beside a clean one, reports exactly these.
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "test_clean.py").write_text("import time\n\ntime.sleep(0.5)\n")
    assert suite_clock_waits(tmp_path) == (2, found)
