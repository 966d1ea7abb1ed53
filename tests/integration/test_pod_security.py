"""The `restricted` Pod Security level in the runs namespace, and children the API server refuses.

The `operator` fixture's runs namespace enforces `restricted`, so every end-to-end run of the
suite (endpoint and sidecar runs in test_controller_flow.py among them) proves its pods pass it;
here the namespace really refuses a plain pod. A child the Job API refuses (requests above limits)
fails the run with the server's message instead of being retried forever, and so does a child a
ValidatingAdmissionPolicy refuses (the validation step's Job, the review agent's Deployment).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def secret(cluster: ClusterHandle, operator: Operator, mongo: Any) -> str:
    return database_secret(cluster, operator.namespace, mongo)


def test_the_runs_namespace_really_refuses_a_plain_pod(cluster: ClusterHandle, operator: Operator) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "namespace": operator.namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]},
    }
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0 and "violates PodSecurity" in result.stderr, result.stderr


def test_a_job_the_api_refuses_fails_the_run_with_the_servers_message(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 2)
    resources = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}  # the Pod API refuses requests > limits
    execution = {"resources": resources}
    apply(cluster, run_manifest("refused-job", operator.namespace, dataset.name, triton, execution=execution))
    run = operator.wait_for_phase("refused-job", {"Failed", "Review"}, timeout=180)
    failed = next(c for c in run["status"]["conditions"] if c["type"] == "Failed")
    assert (failed["status"], failed["reason"]) == ("True", "ChildRefused"), failed
    assert "must be less than or equal to cpu limit" in failed["message"]
    assert "jobName" not in run["status"]


@contextlib.contextmanager
def refusing_policy(
    cluster: ClusterHandle,
    namespace: str,
    name: str,
    rule: dict[str, Any],
    expression: str,
    probe: tuple[str, ...],
) -> Iterator[None]:
    """A ValidatingAdmissionPolicy denying, in `namespace`, what `rule` matches unless `expression`
    holds; in force (a dry-run `probe` is refused) on entry, gone (the probe passes) on exit."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [rule]},
            "validations": [{"expression": expression, "message": f"refused by policy {name}"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    for manifest in (policy, binding):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        wait_until(  # the API server loads new policies asynchronously
            "the policy in force", lambda: name in cluster.kubectl(*probe, check=False).stderr, 90
        )
        yield
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name)
        wait_until(  # and unloads them asynchronously
            "the policy gone", lambda: name not in cluster.kubectl(*probe, check=False).stderr, 90
        )


def test_a_policy_refusing_the_validation_step_fails_the_run_at_once(
    cluster: ClusterHandle, operator: Operator, triton: Any, mongo: Any, tmp_path: Path
) -> None:
    """The validation step's Job is a child too: its refusal (here a ValidatingAdmissionPolicy the real
    API server enforces, as a cluster's policy engine or quota would) fails the run, never a retry loop."""
    namespace = operator.namespace
    database_secret(cluster, namespace, mongo)
    probe = ("create", "job", "probe-validate-x", "-n", namespace, "--image=x", "--dry-run=server")
    with refusing_policy(
        cluster,
        namespace,
        "no-validation-jobs",
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["jobs"]},
        "!object.metadata.name.contains('-validate-')",
        probe,
    ):
        dataset = new_dataset(tmp_path, 2)
        apply(cluster, run_manifest("refused-validation", namespace, dataset.name, triton))
        run = operator.wait_for_phase("refused-validation", {"Failed", "Review"}, timeout=120)
    failed = next((c for c in run["status"]["conditions"] if c["type"] == "Failed"), None)
    assert failed is not None and (failed["status"], failed["reason"]) == ("True", "ChildRefused"), run[
        "status"
    ]
    assert "-validate-" in failed["message"] and "no-validation-jobs" in failed["message"], failed["message"]
    validated = next(c for c in run["status"]["conditions"] if c["type"] == "Validated")
    assert (validated["status"], validated["reason"]) == ("False", "ChildRefused")
    assert "jobName" not in run["status"]


def test_a_policy_refusing_the_review_agent_fails_the_run_in_review_and_a_new_generation_recovers(
    cluster: ClusterHandle, operator: Operator, triton: Any, mongo: Any, tmp_path: Path
) -> None:
    """A child of Review refused (here the review agent's Deployment): Failed with the server's message
    and the run's Job and labels kept, never a retry loop; once the cause is gone, a new generation
    creates the agent and the run is back in Review with its numbers."""
    namespace = operator.namespace
    secret = database_secret(cluster, namespace, mongo, name="db-for-refused-agent")  # its own agent
    probe = ("create", "deployment", "probe", "-n", namespace, "--image=x", "--dry-run=server")
    name = "refused-agent"
    dataset = new_dataset(tmp_path, 2)
    manifest = run_manifest(name, namespace, dataset.name, triton)
    manifest["spec"]["dataset"]["databaseSecretRef"] = {"name": secret, "key": "uri"}
    with refusing_policy(
        cluster,
        namespace,
        "no-deployments",
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "operations": ["CREATE"],
            "resources": ["deployments"],
        },
        "false",
        probe,
    ):
        apply(cluster, manifest)
        run = operator.wait_for_phase(name, {"Failed", "Review"}, timeout=400)
        failed = next((c for c in run["status"]["conditions"] if c["type"] == "Failed"), None)
        assert failed is not None and (failed["status"], failed["reason"]) == ("True", "ChildRefused"), run[
            "status"
        ]
        assert "Deployment" in failed["message"] and "no-deployments" in failed["message"], failed["message"]
        assert run["status"]["jobName"]  # inference happened and stays
        complete = next(c for c in run["status"]["conditions"] if c["type"] == "InferenceComplete")
        assert complete["status"] == "True"
    body = json.dumps({"spec": {"review": {"refreshIntervalSeconds": 9}}})  # a new generation
    cluster.kubectl("patch", "alr", name, "-n", namespace, "--type", "merge", "-p", body)

    def reviewed() -> bool:
        status = operator.get_run(name)["status"]
        return status.get("phase") == "Review" and (status.get("review") or {}).get("total") == 2

    try:
        wait_until("the run back in Review with its numbers", reviewed, 240)
    except AssertionError:
        raise AssertionError(json.dumps(operator.get_run(name)["status"], indent=1)) from None
    cluster.kubectl("delete", "alr", name, "-n", namespace, "--wait=false")
