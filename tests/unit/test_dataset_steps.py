"""Dataset steps and the review agent, as the controller builds them: pods in the run's namespace only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from contract.review import ReviewConfig
from contract.review_agent import read_request, request_id
from contract.verdicts import ProbeVerdict, ValidationReason
from controller.api import parse_spec
from controller.review import ReviewWork
from controller.review_agent import agent_deployment, agent_name, parse_verdict, review_request
from controller.steps import Step, read_step_verdict, step_job, validation_step, work_step

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
METADATA = {"name": "r" * 63, "namespace": "team-a", "uid": "uid-1", "generation": 3}
SPEC = parse_spec(
    {
        "task": "classification",
        "dataset": {"name": "d", "target": {"all": True}, "databaseSecretRef": {"name": "db", "key": "uri"}},
        "model": {"endpoint": {"address": "t:8001"}, "name": "m", "outputFormat": "logits"},
        "labelField": "pred",
    }
)


class _Run:
    metadata = METADATA
    spec = SPEC


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def test_a_step_job_runs_in_the_run_namespace_under_the_worker_account_with_the_snapshot_mounted() -> None:
    step = validation_step(_Run(), NOW)  # type: ignore[arg-type]
    assert step.key == f"validate-g3-{int(NOW.timestamp())}" and step.argv == ("probe",)
    job = step_job(METADATA, SPEC, step, image="img", service_account="autolabel-worker", command=["w"])
    assert len(job["metadata"]["name"]) <= 63 and job["metadata"]["namespace"] == "team-a"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "autolabel-worker"
    [container] = pod["containers"]
    assert container["command"] == ["w", "probe", "--config", "/etc/autolabel/worker.json"]
    env = env_of(container)
    # The URI only as a reference the kubelet resolves, optional so the probe can name a missing Secret.
    assert env["FIFTYONE_DATABASE_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "db",
        "key": "uri",
        "optional": True,
    }
    assert env["FIFTYONE_DATABASE_ADMIN"]["value"] == "false"
    assert env["AUTOLABEL_RESULT_KEY"]["value"] == step.key
    assert pod["volumes"][0]["configMap"]["name"].endswith("-snapshot")
    assert container["securityContext"]["runAsNonRoot"] is True
    assert Step.from_annotation(job["metadata"]["annotations"]["autolabel.dev/step"]) == step


def test_finalize_step_carries_the_current_review_rules_and_its_work() -> None:
    step = work_step(_Run(), ReviewWork(3, finalize=True, apply_rules=True), NOW)  # type: ignore[arg-type]
    assert step.kind == "finalize" and step.argv == ("finalize", "--apply-rules")
    job = step_job(METADATA, SPEC, step, image="img", service_account="sa", command=["w"])
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    review = ReviewConfig.model_validate_json(env["AUTOLABEL_REVIEW_CONFIG"]["value"])
    assert review == ReviewConfig.model_validate(SPEC.review.dump())  # every rule, tag and setting
    assert review.problem_tags == list(SPEC.review.problem_tags)
    assert Step.from_annotation(job["metadata"]["annotations"]["autolabel.dev/step"]).work == step.work


def test_step_verdicts() -> None:
    step = validation_step(_Run(), NOW)  # type: ignore[arg-type]
    passed = '{"ok": true, "reason": "ValidationPassed", "message": "10 target samples", "total": 10}'
    assert read_step_verdict(step, None) == (None, None)
    assert read_step_verdict(step, passed) == (
        ProbeVerdict(
            ok=True, reason=ValidationReason.VALIDATION_PASSED, message="10 target samples", total=10
        ),
        None,
    )
    assert read_step_verdict(step, '{"error": "boom"}') == (None, "boom")
    assert read_step_verdict(step, "not json")[1] is not None
    assert "reason" in str(read_step_verdict(step, '{"ok": true}')[1])  # no reason: no verdict


def test_the_review_agent_is_one_deployment_per_database_secret() -> None:
    deployment = agent_deployment(
        METADATA, SPEC, image="img", service_account="autolabel-worker", command=["w"]
    )
    name = agent_name(SPEC)
    assert deployment["metadata"]["name"] == name and len(name) <= 63
    owner = deployment["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "uid-1" and owner["controller"] is False
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "autolabel-worker"
    [container] = pod["containers"]
    assert container["command"] == ["w", "review-agent", "--agent", name]
    assert env_of(container)["FIFTYONE_DATABASE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "db"
    other = parse_spec(
        {**SPEC.dump(), "dataset": {**SPEC.dump()["dataset"], "databaseSecretRef": {"name": "db2"}}}
    )
    assert agent_name(other) != name


def test_agent_verdicts_count_only_for_the_current_request() -> None:
    raw = review_request(METADATA, SPEC)
    request = read_request(raw)  # the agent reads what the controller wrote
    assert request is not None and request.agent == agent_name(SPEC) and request.generation == 3
    verdict = {
        "requestId": request_id(raw),
        "generation": 3,
        "computedAt": "t1",
        "rulesApplied": True,
        "aids": {"brainKey": None, "savedViews": ["v"]},
        "stats": {"total": 2},
    }
    parsed = parse_verdict(json.dumps(verdict), request_id(raw))
    assert parsed is not None and parsed[0] == "t1"
    outcome = parsed[1]
    assert outcome.work == ReviewWork(3, apply_rules=True, visualize=True) and outcome.result is not None
    assert parse_verdict(json.dumps({**verdict, "requestId": "old"}), request_id(raw)) is None
    failed = parse_verdict(json.dumps({"requestId": request_id(raw), "error": "db down"}), request_id(raw))
    assert failed is not None and failed[1].error == "db down"


def test_kopfs_copy_of_the_spec_holds_a_digest_of_the_sample_ids() -> None:
    import kopf

    from controller.operator_config import CompactDiffBaseStorage

    ids = [f"{index:024x}" for index in range(10_000)]
    body: Any = {"metadata": {"name": "r"}, "spec": {"dataset": {"name": "d", "target": {"sampleIds": ids}}}}
    storage = CompactDiffBaseStorage(prefix="autolabel.dev", key="last-handled-configuration")
    essence = storage.build(body=kopf.Body(body))
    [digest] = essence["spec"]["dataset"]["target"]["sampleIds"]
    assert digest.startswith("sha256:") and "(10000 ids)" in digest
    assert len(json.dumps(essence)) < 1024  # far below the 256 KiB of all annotations
    assert body["spec"]["dataset"]["target"]["sampleIds"] == ids  # the run itself is untouched
    changed: Any = {**body, "spec": {"dataset": {"name": "d", "target": {"sampleIds": ids[:-1]}}}}
    assert storage.build(body=kopf.Body(changed)) != essence  # a change is still a change
