"""Tenant data never touches the controller: checked against the real control plane, mongod and Triton.

- a saved view whose stored stage names `subprocess.Popen`, at the top or nested in FiftyOne's own
  `Flatten` stage, is refused (`ViewNotSupported`) and runs nothing;
- a validation step that crashes (a stored stage FiftyOne cannot build) fails the run with
  `ValidationCrashed`, once;
- a database that would need a migration fails validation with its own reason, and is not migrated;
- the controller's ServiceAccount cannot read a Secret (`kubectl auth can-i` and a real request);
- an edit of each immutable field is refused by the API server with the field named, while review
  rules, suspend and execution settings stay editable.

(A run with 10,000 sampleIds reaching Review, its configuration a mounted file and not an env var, is
one of the runs of test_controller_flow.py.)
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest
from tools.cluster.chart import CONTROLLER_SA, SYSTEM_NAMESPACE

pytestmark = pytest.mark.integration


@pytest.fixture
def secret(cluster: ClusterHandle, operator: Operator, mongo: Any) -> str:
    return database_secret(cluster, operator.namespace, mongo)


def condition(run: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in run["status"]["conditions"] if c["type"] == kind)


def plant_view(dataset: Any, mongo: Any, stage: dict[str, Any]) -> str:
    """What whoever controls the database can write: the stored stages of a saved view; its name."""
    import pymongo
    from bson import ObjectId

    dataset.save_view("planted", dataset.limit(1))
    view_id = ObjectId(dataset._get_saved_view_doc("planted").id)
    client: Any = pymongo.MongoClient(mongo.uri)
    try:
        changed = client["autolabel-tests"]["views"].update_one(
            {"_id": view_id}, {"$set": {"view_stages": [json.dumps(stage)]}}
        )
    finally:
        client.close()
    assert changed.modified_count == 1
    return "planted"


def run_on_view(cluster: ClusterHandle, operator: Operator, triton: Any, dataset: Any, name: str) -> Any:
    manifest = run_manifest(name, operator.namespace, dataset.name, triton)
    manifest["spec"]["dataset"]["target"] = {"view": "planted"}
    apply(cluster, manifest)
    return operator.wait_for_phase(name, {"Failed", "Review"}, timeout=180)


@pytest.mark.parametrize("where", ["top", "nested"])
def test_a_saved_view_with_a_foreign_stage_is_refused_and_runs_nothing(
    cluster: ClusterHandle,
    operator: Operator,
    triton: Any,
    secret: str,
    mongo: Any,
    tmp_path: Path,
    where: str,
) -> None:
    dataset = new_dataset(tmp_path, 2)
    witness = tmp_path / "popen-ran"
    stage = {"_cls": "subprocess.Popen", "kwargs": [["args", f"touch {witness}"], ["shell", True]]}
    if where == "nested":  # FiftyOne rebuilds a stage's nested stages through the same class loader
        stage = {"_cls": "fiftyone.core.stages.Flatten", "kwargs": [["stages", [stage]]]}
    plant_view(dataset, mongo, stage)
    run = run_on_view(cluster, operator, triton, dataset, f"planted-view-{where}")
    failed = condition(run, "Failed")
    assert failed["reason"] == "ViewNotSupported", failed
    assert "subprocess.Popen" in failed["message"] and "fiftyone.core.stages" in failed["message"]
    assert not witness.exists()  # the stage was never built, in any pod
    assert run["status"].get("jobName") is None


def test_a_validation_step_that_crashes_fails_the_run_once_with_a_named_reason(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, mongo: Any, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 2)
    plant_view(dataset, mongo, {"_cls": "fiftyone.core.stages.Limit", "kwargs": [["bogus", 1]]})
    run = run_on_view(cluster, operator, triton, dataset, "crashing-probe")
    failed = condition(run, "Failed")
    assert failed["reason"] == "ValidationCrashed", failed
    assert "without a verdict" in failed["message"] and "bogus" in failed["message"], failed
    # Settled for this generation: no later pass starts the step again (the unit test of reconcile
    # shows it); an edit of the spec validates the new generation.
    assert condition(run, "Validated")["observedGeneration"] == run["metadata"]["generation"]
    assert run["status"].get("jobName") is None


def test_a_database_that_needs_a_migration_is_refused_and_left_as_it_is(
    cluster: ClusterHandle, operator: Operator, triton: Any, mongo: Any
) -> None:
    import pymongo

    database = f"old-{uuid.uuid4().hex[:6]}"
    client: Any = pymongo.MongoClient(mongo.uri)
    try:
        client[database]["config"].insert_one({"version": "0.14.0", "type": "fiftyone"})
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "old-db", "namespace": operator.namespace},
            "stringData": {"uri": mongo.uri, "database": database},
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        run_doc = run_manifest("old-db", operator.namespace, "anything", triton)
        run_doc["spec"]["dataset"]["databaseSecretRef"]["name"] = "old-db"
        apply(cluster, run_doc)
        run = operator.wait_for_phase("old-db", {"Failed", "Review"}, timeout=180)
        failed = condition(run, "Failed")
        assert failed["reason"] == "DatabaseMigrationRequired", failed
        assert "v0.14.0" in failed["message"]
        [config] = list(client[database]["config"].find())
        assert config["version"] == "0.14.0"  # never migrated
    finally:
        client.drop_database(database)
        client.close()


def test_the_controller_cannot_read_a_secret(cluster: ClusterHandle, operator: Operator, secret: str) -> None:
    account = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{CONTROLLER_SA}"
    for verb in ("get", "list", "watch"):
        answer = cluster.kubectl(
            "auth", "can-i", verb, "secrets", "-n", operator.namespace, "--as", account, check=False
        )
        assert answer.stdout.strip() == "no", (verb, answer.stdout, answer.stderr)
    # A real request with the controller's own token, as the running controller holds it.
    kubectl = str(cluster.bin_dir / "kubectl")
    for args in (["get", "secret", secret], ["get", "secrets"]):
        attempt = subprocess.run(
            [kubectl, "--kubeconfig", str(operator.kubeconfig), "-n", operator.namespace, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert attempt.returncode != 0 and "forbidden" in attempt.stderr.lower(), attempt.stderr
    # The same token does reach what the controller needs, so the refusal above is about Secrets.
    allowed = subprocess.run(
        [kubectl, "--kubeconfig", str(operator.kubeconfig), "-n", operator.namespace, "get", "jobs"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert allowed.returncode == 0, allowed.stderr


IMMUTABLE_EDITS: list[tuple[str, dict[str, Any]]] = [
    ("spec.task", {"task": "detection"}),
    ("spec.dataset.name", {"dataset": {"name": "another"}}),
    ("spec.dataset.databaseSecretRef", {"dataset": {"databaseSecretRef": {"name": "another-db"}}}),
    ("spec.dataset.target", {"dataset": {"target": {"all": None, "tags": ["x"]}}}),
    (
        "spec.dataset.media",
        {"dataset": {"media": {"persistentVolumeClaim": {"claimName": "m", "mountPath": "/media"}}}},
    ),
    ("spec.dataset.writeConcern", {"dataset": {"writeConcern": "journaled"}}),
    ("spec.model.name", {"model": {"name": "other_model"}}),
    ("spec.model.version", {"model": {"version": "7"}}),
    ("spec.model.outputFormat", {"model": {"outputFormat": "probabilities"}}),
    ("spec.model.tensors", {"model": {"tensors": {"output": "OTHER"}}}),
    ("spec.model.classNames", {"model": {"classNames": ["a", "b"]}}),
    ("spec.model.classes", {"model": {"classes": ["a"]}}),
    ("spec.model.embeddings", {"model": {"embeddings": {"output": "EMBEDDINGS"}}}),
    ("labelField", {"labelField": "another_field"}),
    ("spec.maskDir", {"maskDir": "/media/masks"}),
]


def test_each_immutable_field_is_refused_naming_it_and_the_rest_stays_editable(
    cluster: ClusterHandle, operator: Operator, triton: Any
) -> None:
    name = "immutable"
    # The dataset does not exist: the run fails validation, which changes nothing for the API server.
    apply(cluster, run_manifest(name, operator.namespace, "no-such-dataset", triton))
    refused = []
    for field, patch in IMMUTABLE_EDITS:
        result = cluster.kubectl(
            "patch", "alr", name, "-n", operator.namespace, "--type", "merge",
            "-p", json.dumps({"spec": patch}), check=False,
        )  # fmt: skip
        assert result.returncode != 0, f"{field} was accepted"
        assert f"{field} is immutable" in result.stderr, result.stderr
        refused.append(field)
    assert len(refused) == len(IMMUTABLE_EDITS)
    editable = {
        "review": {"approve": [{"minConfidence": 0.9}], "refreshIntervalSeconds": 7},
        "suspend": True,
        "execution": {"parallelism": 1, "batchSize": 2},
        "deletionPolicy": "delete",
    }
    body = json.dumps({"spec": editable})
    done = cluster.kubectl("patch", "alr", name, "-n", operator.namespace, "--type", "merge", "-p", body)
    assert done.returncode == 0
    cluster.kubectl("delete", "alr", name, "-n", operator.namespace, "--wait=false")
