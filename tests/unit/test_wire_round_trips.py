"""Every message between the controller and the pods, written by one side's code and read by the other's.

Each test runs the real writer (the worker's progress reporter, `python -m worker`'s
one-shot publisher, the review agent's pass; the controller's review request) and hands
its bytes to the real reader on the other side, through a fake Kubernetes API that only
records what was written.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from contract.env import RESULT_CONFIG_MAP_ENV, RESULT_KEY_ENV, SECRET_REF_ENV, Command
from contract.progress import MAX_REPORT_TEXT, ProgressState, progress_key
from contract.review import APPROVED_TAG
from contract.review_agent import REQUEST_KEY, VERDICT_KEY, read_request, request_id
from contract.verdicts import FATAL_PREFIX, ProbeVerdict, ValidationReason, fatal_line
from contract.wire import RUN_UID_LABEL
from controller.agent_runner import ReviewAgents
from controller.api import AutoLabelRun, Phase
from controller.reconcile import reconcile
from controller.reconcile_types import Observed
from controller.review import ReviewOutcome, ReviewWork, apply_outcome
from controller.review_agent import review_request
from controller.shards import parse_progress, shard_statuses
from controller.steps import read_step_verdict, validation_step, work_step
from controller.worker_contract import review_config, worker_config
from inference.progress import ProgressTracker
from review.agent import ReviewAgent
from review.agent import _Run as AgentRun
from review.decisions import statistics
from review.labels import LabelRecord
from runtime import kube, run_record
from runtime.reporters import ConfigMapReporter
from tests.unit.test_controller_reconcile import NOW
from tests.unit.test_controller_reconcile import run as make_run
from tests.unit.test_dataset_steps import METADATA, SPEC
from worker import __main__ as worker_main

STEP_CONFIG_MAP, STEP_KEY = "alr-r-result", "review-g3-1"
NAMESPACE = str(METADATA["namespace"])
RUN = AutoLabelRun.from_body({"metadata": METADATA, "spec": SPEC.dump(), "status": {}})


class RecordingApi:
    """The one Kubernetes call the workers make: a merge patch of one ConfigMap's data."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.data.update(body["data"])


def records() -> list[LabelRecord]:
    decided = [("cat", 0.9, (APPROVED_TAG,)), ("cat", 0.3, ("false_positive",)), ("dog", None, ())]
    return [
        LabelRecord(f"s{i}", f"l{i}", label, confidence, tags, None)
        for i, (label, confidence, tags) in enumerate(decided)
    ]


def review_result() -> dict[str, Any]:
    """What a review pass computes (`review_commands.run`, the agent's `_pass`): the real statistics."""
    stats = statistics(records(), ["false_positive", "ambiguous"])
    stats["quality"] = {
        "groundTruthField": "gt",
        "overall": {"precision": 0.5, "recall": 1.0, "mAP": 0.25, "labels": 3},
        "approved": {"precision": 1.0, "recall": 0.5, "labels": 1},
    }
    stats["calibration"] = {
        "targetPrecision": 0.9,
        "confidenceLevel": 0.95,
        "sampleSize": 2,
        "reviewed": 1,
        "autoApproved": 0,
        "savedView": "autolabel-r-verification",
        "changed": 0,
        "classes": [{"name": "cat", "sampled": 2, "reviewed": 1, "correct": 1, "interval": [0.1, 1.0]}],
    }
    return {
        "rules": {"changed": 1, "approved": 1, "rejected": 0},
        "aids": {"brainKey": "autolabel_r", "savedViews": ["autolabel-r-predictions"], "error": None},
        "stats": stats,
        "finalizeRequested": {"requestedAt": "2026-11-28T11:59:00Z", "requestedBy": "ana@app", "approved": 1},
    }


def test_a_workers_progress_report_is_read_by_the_controller_as_written() -> None:
    api, tracker = RecordingApi(), ProgressTracker()
    tracker.start(total=10, already_done=3)
    tracker.add_processed(2)
    tracker.add_failure("not an image")
    tracker.message = "é" * (MAX_REPORT_TEXT + 10)  # cut by the worker already (500 characters)
    snapshot = tracker.snapshot()
    ConfigMapReporter("ns", "alr-r-progress", 4, api=api).report(snapshot)
    assert list(api.data) == [progress_key(4)]

    reports = parse_progress(api.data)
    assert reports.problems == []
    report = reports[4]
    assert (report.processed, report.failed, report.total) == (5, 1, 10)
    assert report.state == ProgressState.RUNNING and report.message == snapshot.message
    assert snapshot.updated_at is not None and report.updated_at == snapshot.updated_at.replace(microsecond=0)
    [shard] = shard_statuses(1, None, [], {0: report})
    assert shard.processed == 5


def test_a_workers_fatal_line_is_what_the_controller_shows_for_a_failed_shard() -> None:
    message = "\n".join(["loading", fatal_line("FatalError: Triton is gone"), "exiting"])
    terminated = {"state": {"terminated": {"exitCode": 1, "message": message}}}
    failed_pod = {
        "metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": "0"}},
        "status": {"phase": "Failed", "containerStatuses": [terminated]},
    }
    [shard] = shard_statuses(1, None, [failed_pod], {})
    assert shard.message == f"exit code 1: {FATAL_PREFIX} FatalError: Triton is gone"


@pytest.fixture
def step_pod(monkeypatch: pytest.MonkeyPatch) -> RecordingApi:
    """A step pod's environment: its result ConfigMap and key, no database Secret to miss."""
    api = RecordingApi()
    monkeypatch.setenv(RESULT_CONFIG_MAP_ENV, STEP_CONFIG_MAP)
    monkeypatch.setenv(RESULT_KEY_ENV, STEP_KEY)
    monkeypatch.delenv(SECRET_REF_ENV, raising=False)
    monkeypatch.setattr(kube, "core_api", lambda: api)
    monkeypatch.setattr(run_record, "validated", lambda config, verdict: None)
    return api


def one_shot(command: Command, **args: Any) -> int:
    config = worker_config(METADATA, SPEC)
    return worker_main._one_shot(command, config, argparse.Namespace(**args))


def test_the_probes_verdict_is_the_controllers_validation(
    step_pod: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = ProbeVerdict(ok=False, reason=ValidationReason.VIEW_NOT_FOUND, message="no view v", total=None)
    monkeypatch.setattr("steps.validate.probe", lambda config, check_triton: refused)
    assert one_shot(Command.PROBE, skip_triton=False) == 0
    verdict, error = read_step_verdict(validation_step(RUN, NOW), step_pod.data[STEP_KEY])
    assert error is None and verdict == refused


def test_a_crashed_steps_failure_is_the_controllers_error(
    step_pod: RecordingApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(command: str, config: Any, args: Any) -> dict[str, Any]:
        raise RuntimeError("the database went away " + "x" * 5000)

    monkeypatch.setattr("worker.review_commands.run", crash)
    assert one_shot(Command.FINALIZE, review=None, apply_rules=False, batch_size=10) == worker_main.EXIT_FATAL
    step = work_step(RUN, ReviewWork(3, finalize=True), NOW)
    verdict, error = read_step_verdict(step, step_pod.data[STEP_KEY])
    assert verdict is None and error is not None
    assert error.startswith("finalize: RuntimeError: the database went away") and len(error) == 2000


@pytest.mark.parametrize(
    ("work", "answer"),
    [
        (ReviewWork(3, apply_rules=True, visualize=True), review_result()),
        (ReviewWork(3, finalize=True), {"promoted": 1, "discarded": 2}),
        (ReviewWork(3, discard=True), {"removed": 3}),
    ],
    ids=["review", "finalize", "discard"],
)
def test_a_dataset_steps_verdict_becomes_the_runs_status(
    step_pod: RecordingApi, monkeypatch: pytest.MonkeyPatch, work: ReviewWork, answer: dict[str, Any]
) -> None:
    monkeypatch.setattr("worker.review_commands.run", lambda command, config, args: answer)
    monkeypatch.setattr("steps.discard.discard", lambda config: answer)
    monkeypatch.setattr(run_record, "discarded", lambda config, removed: removed)
    monkeypatch.setattr("worker.review_commands.discard_aids", lambda config: None)
    step = work_step(RUN, work, NOW)
    args = {"review": None, "apply_rules": work.apply_rules, "visualize": work.visualize, "review_aids": True}
    assert one_shot(Command(step.argv[0]), **args) == 0

    verdict, error = read_step_verdict(step, step_pod.data[STEP_KEY])
    assert error is None and verdict is not None
    assert verdict.model_dump(mode="json", by_alias=True, exclude_unset=True) == answer
    status = make_run().status.model_copy(deep=True)
    outcome = ReviewOutcome(work, result=verdict)  # type: ignore[arg-type]
    changes = apply_outcome(make_run(), status, outcome, NOW)
    assert changes and all(
        change[2].value.endswith(("Updated", "Succeeded", "Requested")) for change in changes
    )
    if work.finalize:
        assert status.finalized is not None and (status.finalized.promoted, status.finalized.discarded) == (
            1,
            2,
        )
    elif work.discard:
        assert status.discarded is not None and status.discarded.removed == 3
    else:
        review = status.review
        assert review is not None and (review.total, review.approved, review.unreviewed) == (3, 1, 2)
        assert review.problem_tags == {"false_positive": 1, "ambiguous": 0}
        assert review.quality is not None and review.quality.overall is not None
        assert review.quality.overall.mean_average_precision == 0.25
        assert review.calibration is not None and review.calibration.classes[0].interval == [0.1, 1.0]
        assert review.saved_views == ["autolabel-r-predictions"]


def test_the_controllers_review_request_is_served_by_the_agent_and_its_verdict_read_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = review_request(METADATA, SPEC)
    request = read_request(raw)
    assert request is not None and request.review == review_config(SPEC)
    assert request.refresh_interval_seconds == SPEC.review.refresh_interval_seconds

    written: dict[str, str] = {}
    monkeypatch.setattr("runtime.kube.write_key", lambda ns, name, key, text: written.update({key: text}))
    monkeypatch.setattr("review.agent.change_token", lambda name: (("c", 1, "t", "r"), "doc"))
    agent = ReviewAgent(NAMESPACE, request.agent)
    config_maps = [("alr-r-result", {RUN_UID_LABEL: METADATA["uid"]}, {REQUEST_KEY: raw})]
    monkeypatch.setattr(agent.config_maps, "snapshot", lambda: config_maps)
    monkeypatch.setattr(agent, "_load", lambda request: AgentRun(worker_config(METADATA, SPEC)))

    def full_pass(state: Any, rid: str, request: Any, new_request: bool) -> dict[str, Any]:
        state.request_id = rid
        return {"rulesApplied": True, **review_result()}

    monkeypatch.setattr(agent, "_pass", full_pass)
    agent.run_once()
    assert list(written) == [VERDICT_KEY]

    agents = ReviewAgents(kube=cast(Any, None), image="img", service_account="sa", command=["w"])
    outcome = agents.collect(RUN, {REQUEST_KEY: raw, **written})
    assert outcome is not None and outcome.error is None
    assert outcome.work == ReviewWork(3, apply_rules=True, visualize=True)
    assert agents.collect(RUN, {REQUEST_KEY: raw, **written}) is None  # applied once
    actions = reconcile(make_run(status=_in_review()), Observed(now=NOW, review=outcome))
    assert actions.status.phase is Phase.REVIEW and actions.status.review is not None
    assert actions.status.review.total == 3
    finalized = [c for c in actions.status.conditions if c.type == "Finalized"]
    assert finalized and "by ana@app" in finalized[0].message
    assert request_id(raw) in written[VERDICT_KEY]


def test_an_agents_failure_is_the_controllers_review_error(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = review_request(METADATA, SPEC)
    written: dict[str, str] = {}
    monkeypatch.setattr("runtime.kube.write_key", lambda ns, name, key, text: written.update({key: text}))
    request = read_request(raw)
    assert request is not None
    agent = ReviewAgent(NAMESPACE, request.agent, unavailable="no Secret db")
    monkeypatch.setattr(
        agent.config_maps, "snapshot", lambda: [("c", {RUN_UID_LABEL: "u"}, {REQUEST_KEY: raw})]
    )
    agent.run_once()
    agents = ReviewAgents(kube=cast(Any, None), image="img", service_account="sa", command=["w"])
    outcome = agents.collect(RUN, written)
    assert outcome is not None and outcome.error == "review: FatalError: no Secret db"
    assert outcome.work == ReviewWork(3)


def _in_review() -> dict[str, Any]:
    stamp = datetime(2026, 11, 28, 11, 0, tzinfo=UTC).isoformat()
    return {
        "jobName": "alr-r",
        "conditions": [
            {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": stamp}
            for kind, reason in (
                ("Validated", "ValidationPassed"),
                ("InferenceComplete", "AllShardsSucceeded"),
            )
        ],
    }
