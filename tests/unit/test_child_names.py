"""Child names that always fit, and a child the API server refuses failing the run instead of looping."""

from __future__ import annotations

import json
import re

import pytest
from kubernetes.client.rest import ApiException

from contract.verdicts import ValidationReason
from controller.api import Phase
from controller.kube import refusal
from controller.names import job_name, progress_config_map_name
from controller.reconcile import child_refused, reconcile
from controller.reconcile_types import Observed, Validation
from tests.unit.test_controller_reconcile import NOW, conditions, run, validated

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RUN_NAMES = [
    "faces",
    "a.b",
    "a-b",
    "v1.2.3",
    "r" * 253,
    "a" * 47 + ".b",
    "x." * 100 + "y",
    "team-a.faces.2026-11-28.nightly-run-with-a-long-descriptive-name",
    "9",
    "a-" * 40 + "b",
]


@pytest.mark.parametrize("name", RUN_NAMES)
def test_every_child_name_and_pod_hostname_is_a_dns_label(name: str) -> None:
    metadata = {"name": name, "uid": "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"}
    job = job_name(metadata)
    for child in (job, progress_config_map_name(metadata), f"{job}-999"):  # last index of 1000 shards
        assert len(child) <= 63 and DNS_LABEL.match(child), child
    assert job == job_name(dict(metadata))  # deterministic


def test_names_of_runs_that_look_alike_stay_apart() -> None:
    dotted = job_name({"name": "a.b", "uid": "uid-1"})
    dashed = job_name({"name": "a-b", "uid": "uid-2"})
    long_1 = job_name({"name": "r" * 253, "uid": "uid-3"})
    long_2 = job_name({"name": "r" * 252 + "s", "uid": "uid-4"})
    assert dotted != dashed and long_1 != long_2


def api_error(status: int, reason: str, message: str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = json.dumps({"kind": "Status", "reason": reason, "message": message})
    return error


JOB = {"kind": "Job", "metadata": {"name": "alr-r-1234"}}


def test_a_4xx_is_a_refusal_with_the_servers_message() -> None:
    refused = refusal(JOB, api_error(422, "Invalid", 'Job.batch "alr-r-1234" is invalid: spec.template...'))
    assert refused is not None
    assert (refused.kind, refused.name, refused.status, refused.reason) == (
        "Job",
        "alr-r-1234",
        422,
        "Invalid",
    )
    assert "is invalid: spec.template" in refused.message
    assert refusal(JOB, api_error(403, "Forbidden", "exceeded quota")) is not None


@pytest.mark.parametrize("status", [409, 429, 500, 503])
def test_conflicts_throttling_and_server_errors_are_not_refusals(status: int) -> None:
    assert refusal(JOB, api_error(status, "x", "y")) is None


def test_a_refused_job_fails_the_run_once_and_a_corrected_spec_starts_again() -> None:
    current = validated()
    actions = reconcile(current, Observed(now=NOW))
    assert actions.create_job is not None
    name = actions.create_job["metadata"]["name"]
    failed = child_refused(
        current, actions, "Job", name, "spec.template.spec.containers[0].resources: Invalid", NOW
    )
    assert failed.status.phase is Phase.FAILED and failed.create_job is None
    assert conditions(failed.status)["Failed"] == ("True", "ChildRefused")
    assert name in (failed.status.message or "") and "resources: Invalid" in (failed.status.message or "")
    assert failed.status.job_name is None
    assert any(e.type == "Warning" and e.reason == "ChildRefused" for e in failed.events)
    # The same generation is not tried again (no loop)...
    again = reconcile(run(status=failed.status.dump()), Observed(now=NOW))
    assert again.create_job is None and not again.validate and again.status.phase is Phase.FAILED
    # ...a corrected spec is validated again.
    corrected = run(status=failed.status.dump(), generation=2)
    assert reconcile(corrected, Observed(now=NOW)).validate
    verdict = Validation(2, True, ValidationReason.VALIDATION_PASSED, "ok", 10)
    restarted = reconcile(corrected, Observed(now=NOW, validation=verdict))
    assert restarted.create_job is not None and restarted.status.phase is Phase.INFERRING


def test_a_refused_validation_step_fails_the_run_once_and_a_corrected_spec_validates_again() -> None:
    """A quota on Jobs refuses the validation step's Job (403): Failed at once, never a loop."""
    current = run()
    actions = reconcile(current, Observed(now=NOW))
    assert actions.validate
    message = (
        'jobs.batch "alr-r-1234-validate-g1-1" is forbidden: exceeded quota: jobs, used: count/jobs.batch=0'
    )
    failed = child_refused(current, actions, "Job", "alr-r-1234-validate-g1-1", message, NOW)
    assert failed.status.phase is Phase.FAILED
    assert conditions(failed.status)["Failed"] == ("True", "ChildRefused")
    assert conditions(failed.status)["Validated"] == ("False", "ChildRefused")
    assert "exceeded quota" in (failed.status.message or "")
    again = reconcile(run(status=failed.status.dump()), Observed(now=NOW))
    assert not again.validate and again.create_job is None and again.status.phase is Phase.FAILED
    assert reconcile(run(status=failed.status.dump(), generation=2), Observed(now=NOW)).validate


def old_child_name(run_name: str, run_uid: str, suffix: str = "") -> str:
    """The formula before names had to fit pod hostnames, for runs created by earlier versions."""
    import hashlib

    digest = hashlib.sha256(run_uid.encode()).hexdigest()[:8]
    tail = f"-{digest}" + (f"-{suffix}" if suffix else "")
    return f"alr-{run_name[: 63 - 4 - len(tail)].rstrip('-.')}{tail}"


@pytest.mark.parametrize("name", ["faces", "a--b", "r" * 45, "team-a-faces-2026-11-28", "r" * 63])
def test_names_that_worked_before_are_unchanged(name: str) -> None:
    """An upgrade finds the children of runs already going (their Jobs were accepted: hostnames fit)."""
    metadata = {"name": name, "uid": "uid-7"}
    assert progress_config_map_name(metadata) == old_child_name(name, "uid-7", "progress")
    old_job = old_child_name(name, "uid-7")
    if len(old_job) + len("-999") <= 63:
        assert job_name(metadata) == old_job


def test_a_refused_review_agent_fails_a_run_in_review_keeping_its_job_and_a_new_generation_retries() -> None:
    """A policy refusing the review agent's Deployment (or a finalize step's Job): Failed with the
    server's message, never a retry loop; the run keeps its Job and labels, and a new generation (the
    user fixed the cause) creates the child again."""
    from tests.unit.test_review_controller import in_review

    current = in_review()
    actions = reconcile(current, Observed(now=NOW))
    assert actions.review is not None
    message = 'deployments.apps "alr-review-db-1234" is forbidden: refused by policy no-agents'
    failed = child_refused(current, actions, "Deployment", "alr-review-db-1234", message, NOW)
    assert failed.status.phase is Phase.FAILED
    assert conditions(failed.status)["Failed"] == ("True", "ChildRefused")
    assert conditions(failed.status)["InferenceComplete"] == ("True", "AllShardsSucceeded")
    assert failed.status.job_name == "alr-r" and "refused by policy" in (failed.status.message or "")
    same = reconcile(in_review({"conditions": []}, generation=1).model_copy(), Observed(now=NOW))
    assert same.status.phase is Phase.REVIEW  # (a run that was never refused stays in Review)
    stuck = reconcile(run(status=failed.status.dump()), Observed(now=NOW))
    assert stuck.status.phase is Phase.FAILED  # the same generation stays Failed
    retried = reconcile(run(status=failed.status.dump(), generation=2), Observed(now=NOW))
    assert conditions(retried.status)["Failed"] == ("False", "ChildRefused")
    assert retried.status.phase is Phase.REVIEW and retried.review is not None
