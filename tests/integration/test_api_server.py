"""The AutoLabelRun API on the real API server: bad input refused, examples accepted, explain, columns, Helm.

Uses the session `cluster` fixture (real kube-apiserver). The schema cases are server-side dry runs through
the Python client in one namespace shared by the module; the kubectl tests get a fresh `namespace` each.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.api import AutoLabelRunStatus
from controller.crdgen import REPO_ROOT
from tests.fixtures.cluster import ClusterHandle
from tests.integration.bad_manifests import BAD_INPUTS, VALID_RUN, BadInput, run_with
from tests.integration.full_status import full_status
from tests.integration.manifest_edges import BAD_UPDATES, GOOD_INPUTS
from tests.integration.run_helpers import wait_for_crd
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

CRD_FILE = REPO_ROOT / "crds" / "autolabelrun.yaml"
CHART_DIR = REPO_ROOT / "charts" / "autolabel-operator"
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))
GROUP, VERSION = VALID_RUN["apiVersion"].split("/")


@pytest.fixture(scope="module")
def crd(cluster: ClusterHandle) -> Iterator[None]:
    """The generated CRD installed and established (left installed: other tests share it)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    wait_for_crd(cluster, "autolabelruns.autolabel.dev")
    yield


def apply(
    cluster: ClusterHandle, namespace: str, manifest: dict[str, Any], check: bool = False
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=check)


@dataclass
class Runs:
    """AutoLabelRun calls in one namespace, validating fields as kubectl does (unknown fields refused)."""

    api: Any
    namespace: str

    def create(self, manifest: dict[str, Any], dry_run: bool = True) -> dict[str, Any]:
        """The object as the server stores it (defaults applied); stored only when not `dry_run`."""
        created: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "autolabelruns",
            manifest,
            dry_run="All" if dry_run else None,
            field_validation="Strict",
        )
        return created

    def update(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """A dry-run merge patch of the stored object named in `manifest` to `manifest`."""
        updated: dict[str, Any] = self.api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "autolabelruns",
            manifest["metadata"]["name"],
            manifest,
            dry_run="All",
            field_validation="Strict",
        )
        return updated

    def stored_names(self) -> set[str]:
        listed = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "autolabelruns")
        return {item["metadata"]["name"] for item in listed["items"]}


@pytest.fixture(scope="module")
def runs(cluster: ClusterHandle, crd: None) -> Iterator[Runs]:
    """The module's namespace for the schema cases; the dry runs store nothing, the update cases their
    objects before the update."""
    name = f"t-schema-{uuid.uuid4().hex[:8]}"
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": name}})
        try:
            yield Runs(client.CustomObjectsApi(api), name)
        finally:
            core.delete_namespace(name)


def refusal(error: ApiException) -> str:
    """The refusal as kubectl prints it: the server's message, then each cause's field and message."""
    status = json.loads(error.body)
    causes = (status.get("details") or {}).get("causes") or []
    lines = [f"{cause.get('field', '')}: {cause.get('message', '')}" for cause in causes]
    return "\n".join([status["message"], *lines])


def refused(error: ApiException | None, case: str) -> str:
    """The text of a validation refusal (422 Invalid, or 400 for an unknown field); fails when accepted."""
    assert error is not None, f"{case} was accepted"
    assert error.status in (400, 422), (error.status, error.body)
    return refusal(error)


@pytest.fixture(scope="module")
def bad_input_refusals(runs: Runs) -> dict[str, ApiException | None]:
    """Each bad input sent as a dry-run create: its refusal, or None when accepted."""
    refusals: dict[str, ApiException | None] = {}
    for bad in BAD_INPUTS:
        try:
            runs.create(run_with(bad.changes))
            refusals[bad.case] = None
        except ApiException as error:
            refusals[bad.case] = error
    return refusals


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[bad.case for bad in BAD_INPUTS])
def test_invalid_manifest_is_refused_naming_the_field(
    bad_input_refusals: dict[str, ApiException | None], bad: BadInput
) -> None:
    text = refused(bad_input_refusals[bad.case], bad.case)
    assert bad.must_name in text, text


def test_refused_manifests_left_nothing_stored(
    runs: Runs, bad_input_refusals: dict[str, ApiException | None]
) -> None:
    names = {run_with(bad.changes)["metadata"]["name"] for bad in BAD_INPUTS}
    assert len(bad_input_refusals) == len(BAD_INPUTS)  # all of them were sent
    assert not runs.stored_names() & names


@pytest.mark.parametrize(("case", "changes"), GOOD_INPUTS, ids=[case for case, _ in GOOD_INPUTS])
def test_valid_edge_values_are_accepted(runs: Runs, case: str, changes: dict[str, Any]) -> None:
    runs.create(run_with(changes))


def test_bad_input_table_is_large_enough() -> None:
    assert len(BAD_INPUTS) >= 25


@pytest.mark.parametrize(("case", "before", "update", "field"), BAD_UPDATES, ids=[u[0] for u in BAD_UPDATES])
def test_invalid_update_is_refused(
    runs: Runs, case: str, before: dict[str, Any], update: dict[str, Any], field: str
) -> None:
    named = {"metadata/name": f"update-{case}"}
    runs.create(run_with({**before, **named}), dry_run=False)
    with pytest.raises(ApiException) as caught:
        runs.update(run_with({**before, **update, **named}))
    text = refused(caught.value, case)
    assert field in text, text


def test_review_rules_may_change_while_label_field_stays(runs: Runs) -> None:
    named = {"metadata/name": "review-rules-change"}
    runs.create(run_with(named), dry_run=False)
    approve_all = {"spec/review": {"approve": [{"minConfidence": 0.9}]}, "spec/finalize": True}
    runs.update(run_with({**named, **approve_all}))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_accepted(runs: Runs, example: Path) -> None:
    stored = runs.create(yaml.safe_load(example.read_text()))
    assert stored["spec"]["execution"]["backoffLimitPerIndex"] >= 0  # server-side defaults applied
    assert len(stored["spec"]["review"]["problemTags"]) >= 1


def test_at_least_three_examples() -> None:
    assert len(EXAMPLES) >= 3


def test_explain_shows_descriptions(cluster: ClusterHandle, crd: None) -> None:
    # The API server publishes a new CRD's OpenAPI schema, which explain reads, a moment after it serves it.
    explained = wait_until(
        "kubectl explain to know the CRD",
        lambda: cluster.kubectl("explain", "autolabelrun.spec.model", check=False).stdout,
        60,
    )
    assert "The Triton model producing the labels" in explained
    assert "outputFormat" in explained and "Output adapter" in explained
    assert "endpoint" in explained and "sidecar" in explained
    # Every field of spec.model and of its sections is documented (kubectl explain prints each one).
    from controller.api.model import ModelSpec, Preprocess, TensorNames

    for path, model in (("", ModelSpec), (".preprocess", Preprocess), (".tensors", TensorNames)):
        text = cluster.kubectl("explain", f"autolabelrun.spec.model{path}").stdout if path else explained
        for field in model.model_fields.values():
            assert f"{field.alias}\t" in text or f"{field.alias} " in text, (path, field.alias)
            assert field.description and field.description.split(";")[0][:30] in " ".join(text.split())


def test_status_is_stored_unpruned_and_shown_in_columns(
    cluster: ClusterHandle, crd: None, namespace: str
) -> None:
    apply(cluster, namespace, VALID_RUN, check=True)
    status = AutoLabelRunStatus.model_validate(full_status()).dump()
    assert status == full_status()  # the models know every field written here
    cluster.kubectl(
        "patch",
        "alr",
        "bad-input",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    stored = json.loads(cluster.kubectl("get", "alr", "bad-input", "-n", namespace, "-o", "json").stdout)
    assert stored["status"] == status  # nothing pruned by the schema
    table = cluster.kubectl("get", "alr", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "TASK", "DATASET", "PHASE", "PROGRESS", "APPROVED", "AGE"]
    assert table[1].split()[:6] == ["bad-input", "detection", "faces", "Review", "90/100", "40"]
    wide = cluster.kubectl("get", "alr", "-n", namespace, "-o", "wide").stdout.splitlines()[0].split()
    assert wide[-2:] == ["FIELD", "MESSAGE"]


def test_status_is_not_writable_through_the_main_resource(runs: Runs) -> None:
    stored = runs.create({**VALID_RUN, "status": {"phase": "Finalized"}})
    assert "status" not in stored or stored["status"].get("phase") != "Finalized"


def test_helm_lint_is_clean(cluster: ClusterHandle) -> None:
    result = cluster.helm("lint", str(CHART_DIR), "--strict", "--kube-version", "1.34.0")
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_chart_carries_the_generated_crd() -> None:
    assert (CHART_DIR / "crds" / "autolabelrun.yaml").read_text() == CRD_FILE.read_text()


def can_i(cluster: ClusterHandle, who: str, verb: str, resource: str, namespace: str) -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={who}", check=False)
    return result.stdout.strip() == "yes"


def test_helm_install_creates_release_objects_and_least_privilege(
    cluster: ClusterHandle, crd: None, namespace: str
) -> None:
    release = "alr"
    cluster.helm(
        "install", release, str(CHART_DIR), "-n", namespace, "--set", "image.repository=example.test/alr"
    )
    try:
        deployment = json.loads(
            cluster.kubectl(
                "get", "deployment", "alr-autolabel-operator", "-n", namespace, "-o", "json"
            ).stdout
        )
        spec = deployment["spec"]
        assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        assert container["command"] == ["autolabel-controller"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {p["containerPort"] for p in container["ports"]} == {8080, 9090}
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for kind, name in [
            ("serviceaccount", "alr-autolabel-operator"),
            ("serviceaccount", "autolabel-worker"),
            ("role", "autolabel-worker-progress"),
            ("rolebinding", "autolabel-worker-progress"),
            ("service", "alr-autolabel-operator-metrics"),
        ]:
            cluster.kubectl("get", kind, name, "-n", namespace)
        cluster_name = f"{namespace}-alr-autolabel-operator"
        cluster.kubectl("get", "clusterrole", cluster_name)
        cluster.kubectl("get", "clusterrolebinding", cluster_name)

        worker = f"system:serviceaccount:{namespace}:autolabel-worker"
        assert can_i(cluster, worker, "get", "configmaps", namespace)
        assert can_i(cluster, worker, "patch", "configmaps", namespace)
        assert can_i(cluster, worker, "list", "configmaps", namespace)  # the review agent's requests
        for verb, resource in [
            ("create", "configmaps"),
            ("delete", "configmaps"),
            ("get", "secrets"),
            ("create", "pods"),
            ("get", "pods"),
            ("get", "autolabelruns"),
            ("patch", "autolabelruns/status"),
            ("create", "jobs"),
            ("create", "events"),
        ]:
            assert not can_i(cluster, worker, verb, resource, namespace), (verb, resource)
        assert not can_i(cluster, worker, "patch", "configmaps", "default")

        controller = f"system:serviceaccount:{namespace}:alr-autolabel-operator"
        for verb, resource in [
            ("watch", "autolabelruns"),
            ("patch", "autolabelruns/status"),
            ("create", "jobs"),
            ("delete", "jobs"),
            ("create", "configmaps"),
            ("create", "events"),
            ("create", "events.events.k8s.io"),
            ("list", "pods"),
        ]:
            assert can_i(cluster, controller, verb, resource, "default"), (verb, resource)
        for verb, resource in [
            ("get", "secrets"),  # the controller never reads a database Secret
            ("list", "secrets"),
            ("create", "secrets"),
            ("create", "pods"),
            ("delete", "autolabelruns"),
            ("create", "roles"),
            ("create", "serviceaccounts"),
        ]:
            assert not can_i(cluster, controller, verb, resource, "default"), (verb, resource)
    finally:
        cluster.helm("uninstall", release, "-n", namespace, check=False)
