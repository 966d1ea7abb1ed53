"""The controller end to end: apply -> validate -> Indexed Job -> workers (local pods) -> Review.

Real control plane, real controller process with the chart's RBAC, real worker
pods through the local pod runner, real Triton models, real FiftyOne database. The runs
namespace enforces the `restricted` Pod Security level, so the endpoint runs and the sidecar
run reaching Review prove that every pod they need (validation step, workers, the Triton
sidecar, the review agent) passes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


def condition(run: dict[str, Any], condition_type: str) -> dict[str, Any]:
    found = next((c for c in run["status"].get("conditions", []) if c["type"] == condition_type), None)
    assert found is not None, f"no {condition_type} condition in {run['status']}"
    return dict(found)


def staged_labels(dataset: Any, field: str, run_uid: str) -> list[Any]:
    dataset.reload()
    values = dataset.values(field)
    return [v for v in values if v is not None and getattr(v, "autolabel_run", None) in (run_uid, None)]


LONG_DOTTED_NAME = ("team.faces." * 6)[:62] + "x"  # the full 63 characters the CRD allows, with dots
SAMPLE_IDS = 10_000  # the CRD's maximum number of sampleIds
HAPPY_RUNS = {
    "classification": "happy-class",
    # The Job and pods of a run with such a name are named and labelled within the API's limits.
    "detection": LONG_DOTTED_NAME,
    # This run targets 10,000 sampleIds: its 6 samples and ids that match nothing.
    "segmentation": "happy-segme",
}


@dataclass(frozen=True)
class HappyRun:
    """One of the module's runs in Review, with its dataset and the objects read back."""

    name: str
    run: dict[str, Any]
    dataset: Any
    job: dict[str, Any]


@pytest.fixture(scope="module")
def happy_runs(
    cluster: ClusterHandle,
    operator: Operator,
    triton: Any,
    mongo: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, HappyRun]:
    """A run of each task, all applied at once and awaited in Review; the tests below read them."""
    database_secret(cluster, operator.namespace, mongo)
    datasets = {}
    for task, name in HAPPY_RUNS.items():
        dataset = datasets[task] = new_dataset(tmp_path_factory.mktemp(task), 6)
        manifest = run_manifest(name, operator.namespace, dataset.name, triton, task=task)
        if task == "segmentation":
            real = dataset.values("id")
            ids = real + [f"{index:024x}" for index in range(1, SAMPLE_IDS - len(real) + 1)]
            assert len(ids) == SAMPLE_IDS and len(json.dumps(ids)) > 128 * 1024  # more than one env var holds
            manifest["spec"]["dataset"]["target"] = {"sampleIds": ids}
        # `create`, not `apply`: apply would keep a copy in an annotation, limited to 256 KiB.
        cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
    found = {}
    for task, name in HAPPY_RUNS.items():
        run = operator.wait_for_phase(name, {"Review", "Failed"})
        assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)[:3000]
        job = json.loads(
            cluster.kubectl(
                "get", "job", run["status"]["jobName"], "-n", operator.namespace, "-o", "json"
            ).stdout
        )
        found[task] = HappyRun(name, run, datasets[task], job)
    return found


@pytest.mark.parametrize("task", list(HAPPY_RUNS))
def test_run_reaches_review_for_each_task(
    cluster: ClusterHandle, operator: Operator, happy_runs: dict[str, HappyRun], task: str
) -> None:
    happy = happy_runs[task]
    name, run, dataset, job = happy.name, happy.run, happy.dataset, happy.job
    status = run["status"]
    assert status["progress"]["total"] == 6
    assert status["progress"]["processed"] == 6
    assert status["progress"]["summary"] == "6/6"
    assert [s["state"] for s in status["shards"]] == ["Succeeded", "Succeeded"]
    assert condition(run, "Validated")["status"] == "True"
    assert condition(run, "InferenceComplete")["reason"] == "AllShardsSucceeded"
    assert status["observedGeneration"] == run["metadata"]["generation"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    dataset.reload()
    staging = status["reviewField"]
    assert dataset.has_sample_field(staging)
    assert sum(1 for marker in dataset.values(f"{staging}_run") if marker == run["metadata"]["uid"]) == 6
    if task == "classification":
        labels = [v for v in dataset.values(staging) if v is not None]
        assert labels and all(0 <= label.confidence <= 1 for label in labels)
    get = cluster.kubectl("get", "alr", "-n", operator.namespace).stdout
    assert name in get and "Review" in get and "6/6" in get
    assert {"ValidationPassed", "AllShardsSucceeded"} <= operator.event_reasons(name)


def test_endpoint_runs_pass_restricted(
    cluster: ClusterHandle, operator: Operator, happy_runs: dict[str, HappyRun]
) -> None:
    """The runs namespace enforces restricted, and every pod of an endpoint run was admitted there."""
    namespace = json.loads(cluster.kubectl("get", "namespace", operator.namespace, "-o", "json").stdout)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for happy in happy_runs.values():
        assert happy.run["metadata"]["namespace"] == operator.namespace
        assert [s["state"] for s in happy.run["status"]["shards"]] == ["Succeeded", "Succeeded"]


def test_a_long_dotted_run_name_gets_a_job_and_pods(happy_runs: dict[str, HappyRun]) -> None:
    happy = happy_runs["detection"]
    assert happy.name == LONG_DOTTED_NAME and len(happy.name) == 63
    assert len(happy.job["metadata"]["name"]) <= 63
    labels = happy.job["spec"]["template"]["metadata"]["labels"]
    assert all(len(value) <= 63 for value in labels.values()), labels
    assert happy.run["status"]["progress"]["summary"] == "6/6"  # its pods existed and ran


def test_a_run_with_10000_sample_ids_reaches_review(happy_runs: dict[str, HappyRun]) -> None:
    happy = happy_runs["segmentation"]
    assert len(happy.run["spec"]["dataset"]["target"]["sampleIds"]) == SAMPLE_IDS
    assert happy.run["status"]["progress"]["total"] == 6  # the ids that match nothing are not counted
    [worker] = happy.job["spec"]["template"]["spec"]["containers"]
    assert all(len(e.get("value") or "") < 4096 for e in worker["env"])  # the configuration is a file
    happy.dataset.reload()
    assert happy.dataset.count(happy.run["status"]["reviewField"]) == 6


@dataclass(frozen=True)
class SidecarRun:
    """The module's sidecar run in Review: its dataset, Job and the port its Triton sidecar serves."""

    run: dict[str, Any]
    dataset: Any
    job: dict[str, Any]
    port: int


@pytest.fixture(scope="module")
def sidecar_run(
    cluster: ClusterHandle,
    operator: Operator,
    triton: Any,
    mongo: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> SidecarRun:
    """A run whose Triton is a sidecar of each worker, with deletionPolicy=delete, awaited in Review."""
    from tools.cluster.processes import free_port
    from tools.services.triton import DEFAULT_MODEL_REPOSITORY, assemble_backend_directory

    database_secret(cluster, operator.namespace, mongo)
    work = tmp_path_factory.mktemp("sidecar")
    dataset = new_dataset(work, 4)
    dataset.save_view("mine", dataset.limit(1))
    port = free_port()
    backends = assemble_backend_directory(work / "backends")
    manifest = run_manifest(
        "sidecar",
        operator.namespace,
        dataset.name,
        triton,
        execution={"parallelism": 1},
        deletionPolicy="delete",
    )
    manifest["spec"]["model"].pop("endpoint")
    manifest["spec"]["model"]["sidecar"] = {
        "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
        "modelRepository": str(DEFAULT_MODEL_REPOSITORY),
        "grpcPort": port,
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
        "args": [
            f"--backend-directory={backends}",
            "--model-control-mode=explicit",
            "--load-model=efficientnet_lite0",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            "--metrics-address=127.0.0.1",
            "--allow-gpu-metrics=false",
        ],
    }
    apply(cluster, manifest)
    run = operator.wait_for_phase("sidecar", {"Review", "Failed"}, timeout=300)
    assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)
    job = json.loads(
        cluster.kubectl("get", "job", run["status"]["jobName"], "-n", operator.namespace, "-o", "json").stdout
    )
    return SidecarRun(run, dataset, job, port)


def test_sidecar_mode_runs_triton_next_to_each_worker(
    cluster: ClusterHandle, operator: Operator, sidecar_run: SidecarRun
) -> None:
    [sidecar] = sidecar_run.job["spec"]["template"]["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always" and sidecar["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # The worker configuration is the run's snapshot ConfigMap, mounted as a file into the worker.
    [config_volume] = [v for v in sidecar_run.job["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    snapshot = json.loads(
        cluster.kubectl(
            "get", "configmap", config_volume["configMap"]["name"], "-n", operator.namespace, "-o", "json"
        ).stdout
    )
    config = json.loads(snapshot["data"]["worker.json"])
    assert config["model"]["url"] == f"127.0.0.1:{sidecar_run.port}"
    assert sidecar_run.run["status"]["progress"]["summary"] == "4/4"


def test_sidecar_run_passes_restricted(operator: Operator, sidecar_run: SidecarRun) -> None:
    """The sidecar's pod spec passes the runs namespace's restricted level: the run got to Review there."""
    assert sidecar_run.run["metadata"]["namespace"] == operator.namespace
    pod_spec = sidecar_run.job["spec"]["template"]["spec"]
    for container in pod_spec["initContainers"] + pod_spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
    assert [s["state"] for s in sidecar_run.run["status"]["shards"]] == ["Succeeded"]


def test_deletion_by_policy_in_review_removes_the_review_aids(
    cluster: ClusterHandle, operator: Operator, sidecar_run: SidecarRun
) -> None:
    """Deleted in Review with deletionPolicy=delete, the run's saved views (which point at the staging
    field the cleanup removes) go with it, and the user's stay. Last in the module: it deletes the run."""
    import fiftyone.core.odm as foo

    from runtime.claims import CLAIMS_COLLECTION

    dataset = sidecar_run.dataset
    uid, field = sidecar_run.run["metadata"]["uid"], sidecar_run.run["status"]["reviewField"]
    views: list[str] = wait_until(
        "the run's saved views",
        lambda: (operator.get_run("sidecar")["status"].get("review") or {}).get("savedViews"),
        120,
    )
    dataset.reload()
    assert set(views) <= set(dataset.list_saved_views())
    cluster.kubectl("delete", "alr", "sidecar", "-n", operator.namespace, "--wait=false")
    wait_until(
        "the run to be deleted",
        lambda: (
            "NotFound"
            in cluster.kubectl("get", "alr", "sidecar", "-n", operator.namespace, check=False).stderr
        ),
        300,
    )
    dataset.reload()
    assert not dataset.has_sample_field(field)
    assert not set(views) & set(dataset.list_saved_views()), dataset.list_saved_views()
    assert dataset.load_saved_view("mine").count() == 1
    assert foo.get_db_conn()[CLAIMS_COLLECTION].count_documents({"run": uid}) == 0  # nothing left claimed


def test_metrics_count_runs_by_phase(operator: Operator) -> None:
    text = operator.metrics()
    assert "autolabel_reconcile_duration_seconds_count" in text
    assert "autolabel_runs{" in text


# DatabaseSecretMissing is the first failure of test_corrected_spec_is_validated_again_and_proceeds.
VALIDATION_CASES = [
    ("no-dataset", {"dataset": {"name": "no-such-dataset"}}, "DatasetNotFound", "no-such-dataset"),
    ("no-view", {"dataset": {"target": {"view": "nope"}}}, "ViewNotFound", "nope"),
    ("empty-target", {"dataset": {"target": {"tags": ["never-used-tag"]}}}, "EmptyTarget", "target"),
    ("bad-model", {"model": {"name": "no_such_model"}}, "ModelNotReady", "no_such_model"),
    ("bad-endpoint", {"model": {"endpoint": {"address": "127.0.0.1:1"}}}, "TritonUnreachable", "127.0.0.1:1"),
    (
        "wrong-adapter",
        {"model": {"name": "selfie_segmentation", "outputFormat": "logits", "tensors": {"output": "MASK"}}},
        "ModelOutputMismatch",
        "classification needs [C]",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "reason", "mentions"), VALIDATION_CASES, ids=[case[0] for case in VALIDATION_CASES]
)
def test_validation_failures_name_the_problem(
    cluster: ClusterHandle,
    operator: Operator,
    triton: Any,
    secret: str,
    tmp_path: Path,
    name: str,
    change: dict[str, Any],
    reason: str,
    mentions: str,
) -> None:
    dataset = new_dataset(tmp_path, 2)
    manifest = run_manifest(f"invalid-{name}", operator.namespace, dataset.name, triton)
    spec = manifest["spec"]
    for key, value in change.items():
        merged = {**spec[key], **value}
        if "target" in value:
            merged["target"] = value["target"]
        spec[key] = merged
    apply(cluster, manifest)
    run = operator.wait_for_phase(f"invalid-{name}", {"Failed", "Review"}, timeout=120)
    assert run["status"]["phase"] == "Failed"
    failed = condition(run, "Failed")
    assert failed["reason"] == reason
    assert mentions in failed["message"]
    assert condition(run, "Validated")["status"] == "False"
    assert run["status"].get("jobName") is None
    assert (
        cluster.kubectl(
            "get", "jobs", "-n", operator.namespace, "-l", f"autolabel.dev/run=invalid-{name}", "-o", "name"
        ).stdout.strip()
        == ""
    )


def test_label_field_that_exists_is_refused(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    import fiftyone as fo

    dataset = new_dataset(tmp_path, 2)
    dataset.add_sample_field("taken", fo.StringField)
    apply(cluster, run_manifest("field-taken", operator.namespace, dataset.name, triton, label_field="taken"))
    run = operator.wait_for_phase("field-taken", {"Failed", "Review"}, timeout=120)
    failed = condition(run, "Failed")
    assert failed["reason"] == "LabelFieldExists"
    assert "'taken' already exists" in failed["message"]


def test_corrected_spec_is_validated_again_and_proceeds(
    cluster: ClusterHandle, operator: Operator, triton: Any, secret: str, tmp_path: Path
) -> None:
    dataset = new_dataset(tmp_path, 2)
    manifest = run_manifest("fixed-later", operator.namespace, dataset.name, triton)
    manifest["spec"]["dataset"]["databaseSecretRef"]["name"] = "not-created-yet"
    apply(cluster, manifest)
    run = operator.wait_for_phase("fixed-later", {"Failed"}, timeout=120)
    assert condition(run, "Failed")["reason"] == "DatabaseSecretMissing"
    assert "not-created-yet" in condition(run, "Failed")["message"]
    assert condition(run, "Validated")["status"] == "False"
    assert run["status"].get("jobName") is None
    jobs = cluster.kubectl(
        "get", "jobs", "-n", operator.namespace, "-l", "autolabel.dev/run=fixed-later", "-o", "name"
    )
    assert jobs.stdout.strip() == ""
    # databaseSecretRef is immutable too (it fixes which database the run's steps open): the user
    # creates the Secret it names, then applies the spec again with an editable change.
    stored = json.loads(
        cluster.kubectl("get", "secret", secret, "-n", operator.namespace, "-o", "json").stdout
    )
    created = {"apiVersion": "v1", "kind": "Secret", "data": stored["data"]}
    created["metadata"] = {"name": "not-created-yet", "namespace": operator.namespace}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(created))
    manifest["spec"]["execution"]["batchSize"] = 3
    apply(cluster, manifest)
    run = operator.wait_for_phase("fixed-later", {"Review"})
    assert condition(run, "Failed")["status"] == "False"
    assert condition(run, "Validated")["observedGeneration"] == run["metadata"]["generation"]
