"""The `autolabel` CLI against an in-memory API: output, spec edits and exit codes on bad input."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest

from controller import cli


class FakeApi(cli.RunsApi):
    """Runs in a dict; patches merged like a JSON merge patch (lists replaced), resourceVersion checked."""

    def __init__(self, *runs: dict[str, Any]) -> None:
        self.runs = {r["metadata"]["name"]: copy.deepcopy(r) for r in runs}
        self.default_namespace = "ns"
        self.patches: list[dict[str, Any]] = []

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.runs:
            raise cli.CliError(
                cli.EXIT_NOT_FOUND, f"autolabelrun {name!r} not found in namespace {namespace!r}"
            )
        return copy.deepcopy(self.runs[name])

    def list(self, namespace: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(r) for r in self.runs.values()]

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        run = self.runs[name]
        assert body["metadata"]["resourceVersion"] == run["metadata"]["resourceVersion"]
        self.patches.append(body)

        def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
            for key, value in patch.items():
                if isinstance(value, dict) and isinstance(target.get(key), dict):
                    merge(target[key], value)
                else:
                    target[key] = value

        merge(run["spec"], body["spec"])
        run["metadata"]["resourceVersion"] = str(int(run["metadata"]["resourceVersion"]) + 1)
        return run


def a_run(name: str = "r1", phase: str = "Review", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"},
        "spec": {"dataset": {"name": "d"}, "labelField": "pred", "review": {}, **spec},
        "status": {
            "phase": phase,
            "progress": {"summary": "6/6"},
            "review": {
                "total": 6,
                "approved": 2,
                "rejected": 1,
                "unreviewed": 3,
                "classes": [
                    {"name": "cat", "count": 4, "meanConfidence": 0.81234, "approved": 2, "rejected": 0},
                    {"name": "dog", "count": 2, "meanConfidence": 0.4, "approved": 0, "rejected": 1},
                ],
                "problemTags": {"false_positive": 1, "ambiguous": 0},
            },
        },
    }


def call(api: FakeApi, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), api=api, out=out), out.getvalue()


def test_list_and_status_show_the_per_class_table() -> None:
    api = FakeApi(a_run(), a_run("r2", phase="Inferring"))
    code, text = call(api, "list")
    assert code == 0
    assert text.splitlines()[0].split() == [
        "NAME",
        "PHASE",
        "PROGRESS",
        "LABELS",
        "APPROVED",
        "REJECTED",
        "UNREVIEWED",
    ]
    assert text.splitlines()[1].split() == ["r1", "Review", "6/6", "6", "2", "1", "3"]
    code, text = call(api, "status", "r1")
    assert code == 0
    assert "CLASS  COUNT  MEAN CONF  APPROVED  REJECTED" in text
    assert any(line.split() == ["cat", "4", "0.812", "2", "0"] for line in text.splitlines())
    assert "Problem tags: false_positive=1" in text


def test_approve_appends_a_rule_once_and_reject_too() -> None:
    api = FakeApi(a_run())
    assert call(api, "approve", "r1", "--class", "cat", "--min-confidence", "0.7")[0] == 0
    assert api.runs["r1"]["spec"]["review"]["approve"] == [{"classes": ["cat"], "minConfidence": 0.7}]
    code, text = call(api, "approve", "r1", "--class", "cat", "--min-confidence", "0.7")
    assert code == 0 and "already present" in text and len(api.patches) == 1
    assert call(api, "reject", "r1", "--max-confidence", "0.3")[0] == 0
    assert api.runs["r1"]["spec"]["review"]["reject"] == [{"maxConfidence": 0.3}]
    code, text = call(api, "status", "r1")
    assert "Rule approve: cat 0.7 <= conf < 1" in text and "Rule reject: all classes 0 <= conf < 0.3" in text


def test_undo_one_class_splits_rules_that_cover_all_classes() -> None:
    api = FakeApi(
        a_run(
            review={
                "approve": [{"classes": ["cat", "dog"]}, {"minConfidence": 0.9}],
                "reject": [{"classes": ["dog"]}],
            }
        )
    )
    assert call(api, "undo", "r1", "--class", "dog")[0] == 0
    review = api.runs["r1"]["spec"]["review"]
    assert review["approve"] == [{"classes": ["cat"]}, {"minConfidence": 0.9, "classes": ["cat"]}]
    assert review["reject"] == []
    assert call(api, "undo", "r1")[0] == 0
    assert api.runs["r1"]["spec"]["review"]["approve"] == []
    assert call(api, "undo", "r1")[1].strip() == "r1: no rules to undo"


def test_finalize_and_discard_set_the_spec() -> None:
    api = FakeApi(a_run(), a_run("r2", phase="Failed"))
    assert call(api, "finalize", "r1")[0] == 0 and api.runs["r1"]["spec"]["finalize"] is True
    assert "already requested" in call(api, "finalize", "r1")[1]
    assert call(api, "discard", "r2")[0] == 0 and api.runs["r2"]["spec"]["discard"] is True


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["status", "nope"], cli.EXIT_NOT_FOUND, "autolabelrun 'nope' not found in namespace 'ns'"),
        (["approve", "nope"], cli.EXIT_NOT_FOUND, "not found"),
        (
            ["finalize", "early"],
            cli.EXIT_PHASE,
            "cannot finalize run 'early' in phase Inferring (needs Review)",
        ),
        (["discard", "done"], cli.EXIT_PHASE, "in phase Finalized"),
        (["approve", "done"], cli.EXIT_PHASE, "cannot approve run 'done' in phase Finalized"),
        (["approve", "r1", "--min-confidence", "2.0"], cli.EXIT_USAGE, "2.0 is outside 0..1"),
        (["reject", "r1", "--max-confidence", "abc"], cli.EXIT_USAGE, "'abc' is not a number"),
        (
            ["approve", "r1", "--min-confidence", "0.8", "--max-confidence", "0.2"],
            cli.EXIT_USAGE,
            "minConfidence must be below maxConfidence",
        ),
        (["frobnicate", "r1"], cli.EXIT_USAGE, "invalid choice"),
    ],
)
def test_bad_input_exit_codes(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi(a_run(), a_run("early", phase="Inferring"), a_run("done", phase="Finalized"))
    assert call(api, *argv)[0] == code
    assert message in capsys.readouterr().err
    assert api.patches == []


def test_status_prints_the_calibration_table() -> None:
    run = a_run()
    run["status"]["review"]["calibration"] = {
        "targetPrecision": 0.95,
        "confidenceLevel": 0.95,
        "sampleSize": 60,
        "reviewed": 45,
        "autoApproved": 120,
        "savedView": "autolabel-r1-0123abcd-verification",
        "classes": [
            {
                "name": "cat",
                "sampled": 30,
                "reviewed": 30,
                "precision": 1.0,
                "interval": [0.8843, 1.0],
                "threshold": 0.61,
                "autoApproved": 120,
                "leftForPeople": 4,
            },
            {"name": "dog", "sampled": 30, "reviewed": 15, "autoApproved": 0, "moreReviewsNeeded": 15},
            {"name": "wolf", "sampled": 20, "reviewed": 20, "precision": 0.7, "leftForPeople": 9},
        ],
    }
    code, text = call(FakeApi(run), "status", "r1")
    assert code == 0
    assert "target precision 0.950 at confidence 0.95; verification sample 60 labels, 45 reviewed" in text
    assert "autolabel-r1-0123abcd-verification" in text and "120 labels auto-approved" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("CLASS") and "THRESHOLD" in line)
    assert lines[header].split() == [
        "CLASS",
        "SAMPLED",
        "REVIEWED",
        "PRECISION",
        "INTERVAL",
        "THRESHOLD",
        "AUTO-APPROVED",
        "LEFT",
    ]
    cat, dog, wolf = lines[header + 1 : header + 4]
    assert cat.split() == ["cat", "30", "30", "1.000", "[0.884,", "1.000]", "0.610", "120", "4"]
    assert "none (15 more reviews)" in dog and dog.split()[:4] == ["dog", "30", "15", "-"]
    assert "none (below target)" in wolf and wolf.split()[-2:] == ["0", "9"]


class BrokenApi(FakeApi):
    def list(self, namespace: str) -> list[dict[str, Any]]:
        raise ValueError("Expecting value: line 1 column 1 (char 0)\n<html>a proxy's login page</html>")


def test_an_unforeseen_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert call(BrokenApi(), "list")[0] == cli.EXIT_API == 1
    err = capsys.readouterr().err
    assert err == "error: ValueError: Expecting value: line 1 column 1 (char 0)\n", err
