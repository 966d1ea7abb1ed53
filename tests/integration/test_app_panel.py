"""The Auto-Label panel's callbacks on a real FiftyOne database, loaded by FiftyOne's own plugin registry.

Each callback runs in a real ``ExecutionContext`` built as the App builds it
(dataset, serialized view, label selection, panel state); what the panel asks
the App to do (set_view, notify) is read back from the context's executor and
fed into the next call, as the App would. The run record comes from the run's
real dataset work (``python -m worker review`` / ``finalize``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from contract.review import APPROVED_TAG, REJECTED_TAG
from tests.integration.app_panel_helpers import PANEL_URI, App, dataset_work, labels, run_sample_tags
from tests.integration.run_helpers import install_crd
from tests.integration.test_review_dataset import MARKER, STAGING, UID, config, make_run_dataset
from tests.integration.worker_helpers import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def panel(mongo: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The panel as the App server loads it from FIFTYONE_PLUGINS_DIR; no Kubernetes credentials."""
    import fiftyone as fo
    from fiftyone.operators.registry import get_operator

    monkeypatch.setenv("FIFTYONE_PLUGINS_DIR", str(REPO_ROOT / "plugins"))
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    monkeypatch.setattr(fo.config, "plugins_dir", str(REPO_ROOT / "plugins"))
    yield get_operator(PANEL_URI)


def test_review_approval_and_finalize_request_through_the_panel(panel: Any) -> None:
    from runtime import run_record

    dataset = make_run_dataset(6)  # 6 cats (0.95 .. 0.45) and 6 dogs (0.12 .. 0.62)
    first = dataset_work(dataset, "review", "--visualize")
    assert first["finalizeRequested"] is None
    record = run_record.records(dataset.name)[UID]
    assert record["phase"] == "In Review" and record["counts"]["total"] == 12
    assert record["stagingField"] == STAGING and record["markerField"] == MARKER
    assert "needs_correction" in record["problemTags"]

    app = App(dataset, panel)
    app.call("on_load")
    assert "state" not in app.state or not app.state.get("run")  # home: cards only
    app.call("open_run", uid=UID)
    assert app.state["tab"] == "review"
    app.call("on_change_view")
    rows = {row["label"]: row for row in app.state["classes"]}
    assert rows["cat"]["instances"] == "6 of 6" and rows["dog"]["instances"] == "6 of 6"

    # The shortcuts: the run's own patches view (named with its uid) and its embeddings plot.
    predictions = next(name for name in record["savedViews"] if name.endswith("-predictions"))
    app.call("open_patches")
    assert app.view_name == predictions, (app.view_name, record["savedViews"])
    app.call("open_embeddings")
    assert record["brainKey"] and f"choose brain key {record['brainKey']}" in app.notes[-1], app.notes
    app.call("show_review")  # back to the run's labels
    assert app.view_name is None and app.state["tab"] == "review"

    # The slider: only labels with 0.5 <= confidence <= 1 stay in the App's view.
    app.call("on_confidence", value=[0.5, 1.0])
    app.call("on_change_view")
    rows = {row["label"]: row for row in app.state["classes"]}
    assert rows["cat"]["instances"] == "5 of 6" and rows["dog"]["instances"] == "2 of 6"
    assert rows["cat"]["confidence"] == "0.75"  # mean of 0.95, 0.85, 0.75, 0.65, 0.55
    assert app.state["pending"] == 7

    # Click the cat row: only cats; click again: every class.
    cat_row = [row["label"] for row in app.state["classes"]].index("cat")
    app.call("on_class_row", row=cat_row)
    assert app.state["label"] == "cat"
    app.call("on_change_view")
    assert app.state["pending"] == 5
    app.call("on_class_row", row=cat_row)
    assert app.state["label"] is None
    app.call("on_change_view")
    assert app.state["pending"] == 7

    # A label selection wins over the view: flag one dog for correction, reject another.
    dogs = [(s.id, d.id, d.confidence) for s in dataset for d in s[STAGING].detections if d.label == "dog"]
    dogs.sort(key=lambda item: item[2])
    app.selected_labels = [{"sample_id": dogs[0][0], "label_id": dogs[0][1], "field": STAGING}]
    app.call("tag_selected", tag=REJECTED_TAG)
    app.call("tag_selected", tag="needs_correction")
    app.selected_labels = []

    # Add the 7 labels of the view for approval, then undo the dogs.
    app.call("add_for_approval")
    assert app.notes[-1] == "7 labels added for approval"
    app.call("on_change_view")
    assert app.state["pending"] == 0  # approved labels left the review view
    app.call("show_approval")
    assert {row["label"]: row["approved"] for row in app.state["approved"]} == {"cat": "5", "dog": "2"}
    dog_row = [row["label"] for row in app.state["approved"]].index("dog")
    app.call("undo_class", row=dog_row)
    assert {row["label"]: row["approved"] for row in app.state["approved"]} == {"cat": "5"}
    assert (app.state["kept"], app.state["removed"]) == (5, 7)

    # Approve: no Kubernetes credentials, so the request goes into the run record.
    app.call("ask_approve")
    assert app.state["confirm"] is True
    app.call("confirm_approve")
    assert "keeps 5 labels and removes 7" in app.notes[-1]
    request = run_record.records(dataset.name)[UID]["finalizeRequest"]
    assert (request["approved"], request["removed"]) == (5, 7)

    # The run's next review pass reports it (the controller then finalizes), and finalize keeps the 5 cats.
    assert dataset_work(dataset, "review")["finalizeRequested"]["approved"] == 5
    assert dataset_work(dataset, "finalize") == {"promoted": 5, "discarded": 7}
    kept = labels(dataset, "pred")
    assert [(label, tags) for label, _, tags in kept] == [("cat", (APPROVED_TAG,))] * 5
    assert [conf for _, conf, _ in kept] == [0.55, 0.65, 0.75, 0.85, 0.95]
    assert run_record.records(dataset.name)[UID]["phase"] == "Finalized"
    app.call("on_load")  # a finalized run renders as a card without tables


def test_verification_tab_reviews_the_sample_and_shows_what_it_proves(panel: Any) -> None:
    """spec.review.autoApprove: the tab shows the undecided sample in its random order, marks only
    selected sample labels, and its table follows the review pass that calibrates on them."""
    from fiftyone.core.view import DatasetView

    from review.auto_approve import VERIFICATION_ATTRIBUTE, auto_approve
    from runtime import run_record
    from tests.integration.test_auto_approve import SETTINGS
    from tests.integration.test_auto_approve import UID as RUN_UID
    from tests.integration.test_auto_approve import make_dataset as make_calibration_dataset

    dataset, config, truth = make_calibration_dataset("detection", samples=400)
    field = "pred_in_review"

    def review_pass() -> dict[str, Any]:
        calibration = auto_approve(dataset, config, SETTINGS)
        run_record.reviewed(config, {"total": 800, "calibration": calibration}, None)
        return calibration

    first = review_pass()
    app = App(dataset, panel)
    app.call("open_run", uid=RUN_UID)
    app.call("show_verification")
    assert app.state["tab"] == "verification"
    assert (app.state["verified"], app.state["drawn"]) == (0, first["sampleSize"]) == (0, 200)
    shown = DatasetView._build(dataset, app.view)
    ranks = shown.values(f"{field}.{VERIFICATION_ATTRIBUTE}")
    assert len(ranks) == 200 and ranks == sorted(ranks)  # one patch per label, in the sample's order
    rows = {row["label"]: row for row in app.state["calibration"]}
    assert rows["cat"]["threshold"] == "needs 30 more" and rows["cat"]["reviewed"] == "0 of 100"

    # Nothing selected, or a selection outside the sample: nothing is tagged.
    app.call("mark_right")
    assert app.notes[-1] == "select labels of the verification sample first"
    outside = next(
        (sample.id, label.id)
        for sample in dataset
        for label in sample[field].detections
        if not label.has_field(VERIFICATION_ATTRIBUTE) or label[VERIFICATION_ATTRIBUTE] is None
    )
    app.selected_labels = [{"sample_id": outside[0], "label_id": outside[1], "field": field}]
    app.call("mark_right")
    assert app.notes[-1] == "select labels of the verification sample first"
    app.selected_labels = []

    # The reviewer marks the first 50 patches, then the rest, right or wrong as the truth says.
    for batch in (slice(0, 50), slice(0, None)):  # marked patches leave the view
        shown = DatasetView._build(dataset, app.view)
        patch_ids, label_ids = shown.values(["id", f"{field}.id"])
        chosen = list(zip(patch_ids, label_ids, strict=True))[batch]
        app.selected = [patch for patch, label in chosen if truth[label]]
        app.call("mark_right")
        app.selected = [patch for patch, label in chosen if not truth[label]]
        if app.selected:
            app.call("mark_wrong")
    assert (app.state["verified"], app.state["drawn"]) == (200, 200)
    assert len(DatasetView._build(dataset, app.view)) == 0
    sample = run_sample_tags(dataset, field)
    assert len(sample) == 200
    assert all((APPROVED_TAG in tags) == truth[label_id] for label_id, tags in sample.items())
    assert all((REJECTED_TAG in tags) != truth[label_id] for label_id, tags in sample.items())
    second = review_pass()
    assert second["reviewed"] == 200 and second["autoApproved"] > 0
    app.call("on_change_view")
    rows = {row["label"]: row for row in app.state["calibration"]}
    for name in ("cat", "dog"):
        entry = next(row for row in second["classes"] if row["name"] == name)
        assert rows[name]["reviewed"] == "100 of 100"
        assert rows[name]["threshold"] == f"{entry['threshold']:.3f}"
        assert rows[name]["auto_approved"] == str(entry["autoApproved"])
        assert rows[name]["left"] == str(entry["leftForPeople"])


def test_new_run_form_builds_a_validated_manifest(
    panel: Any, triton: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from controller.api import AutoLabelRun

    dataset = make_run_dataset(4)
    app = App(dataset, panel)
    monkeypatch.setenv("AUTOLABEL_TRITON_HTTP_URL", "127.0.0.1:1")  # nothing listens: the model is typed
    app.call("open_form")
    assert app.state["form_open"] is True and app.state.get("models") is None
    monkeypatch.setenv("AUTOLABEL_TRITON_HTTP_URL", str(triton.http_url))
    app.call("on_form")
    models: list[str] = app.state["models"]
    assert "efficientnet_lite0" in models and "face_detector" in models

    # Invalid: the label field exists, the name is no Kubernetes name, no model; nothing is written.
    app.state["form"] = {
        "target": "view",
        "task": "classification",
        "label_field": "scene",
        "name": "Bad Name",
    }
    app.call("create_run")
    assert app.state.get("manifest") is None
    problems: str = app.state["problems"]
    assert "labelField: 'scene' exists in the dataset" in problems and "name: a Kubernetes name" in problems
    assert "model.name" in problems and "model.endpoint.address" in problems
    assert "autolabel-Bad Name-target" not in dataset.list_saved_views()

    # Valid, target = current view: the view is saved; no credentials, so the manifest is shown to copy.
    app.view = dataset.limit(2)._serialize()
    app.state["form"] = {
        "target": "view",
        "task": "classification",
        "address": "triton.inference.svc:8001",
        "model": "efficientnet_lite0",
        "classes": "cat, dog, cat",
        "min_confidence": 0.3,
        "label_field": "auto_cls",
        "name": "from-the-app",
        "namespace": "labeling",
    }
    app.call("create_run")
    assert app.state["problems"] is None, app.state["problems"]
    text: str = app.state["manifest"]
    manifest = yaml.safe_load(text)
    run = AutoLabelRun.model_validate(manifest)
    assert run.spec.dataset.target.view == "autolabel-from-the-app-target"
    assert (
        run.spec.model is not None
        and run.spec.model.classes == ["cat", "dog"]
        and run.spec.confidence_threshold == 0.3
    )
    assert manifest["metadata"] == {"name": "from-the-app", "namespace": "labeling"}
    assert len(dataset.load_saved_view("autolabel-from-the-app-target")) == 2
    assert "no Kubernetes credentials" in app.notes[-1]

    # The same name again, from another view: the first run's target view is never replaced.
    app.view = dataset.limit(3)._serialize()
    app.call("create_run")
    assert app.state.get("manifest") is None
    assert "saved view 'autolabel-from-the-app-target' exists" in str(app.state.get("problems"))
    assert len(dataset.load_saved_view("autolabel-from-the-app-target")) == 2


def test_with_kubernetes_credentials_the_panel_finalizes_and_creates_runs_itself(
    panel: Any, cluster: Any, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The App's own kubeconfig: Approve sets spec.finalize on the run (as `autolabel finalize`), and
    the New run form applies its manifest; no request is left in the dataset."""
    from contract.worker import WorkerConfig
    from runtime import run_record
    from tests.integration.bad_manifests import run_with

    install_crd(cluster)
    dataset = make_run_dataset(4)
    manifest = run_with({"metadata/name": "in-review", "spec/dataset/name": dataset.name})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))

    def run_object(name: str) -> dict[str, Any]:
        found = cluster.kubectl("get", "alr", name, "-n", namespace, "-o", "json").stdout
        document: dict[str, Any] = json.loads(found)
        return document

    uid = run_object("in-review")["metadata"]["uid"]
    record = {**config(dataset), "run": {"namespace": namespace, "name": "in-review", "uid": uid}}
    run_record.reviewed(WorkerConfig.model_validate(record), {"total": 0}, None)  # as its review pass does
    monkeypatch.setenv("AUTOLABEL_APP_KUBECONFIG", str(cluster.kubeconfig))

    app = App(dataset, panel)
    app.call("open_run", uid=uid)
    app.call("ask_approve")
    app.call("confirm_approve")
    assert app.notes[-1] == f"spec.finalize set on {namespace}/in-review", app.notes
    assert run_object("in-review")["spec"].get("finalize") is True
    assert "finalizeRequest" not in run_record.records(dataset.name)[uid]

    app.call("go_home")
    app.state["form"] = {
        "target": "all",
        "task": "classification",
        "address": "triton.inference.svc:8001",
        "model": "efficientnet_lite0",
        "label_field": "auto_new",
        "name": "made-in-the-app",
        "namespace": namespace,
    }
    app.call("create_run")
    assert app.state["problems"] is None, app.state["problems"]
    assert app.notes[-1] == "created autolabelrun made-in-the-app", app.notes
    created = run_object("made-in-the-app")["spec"]
    assert created["dataset"]["name"] == dataset.name and created["labelField"] == "auto_new"


def test_runs_get_their_card_at_validation_a_refused_one_as_failed(panel: Any) -> None:
    """The validation step writes the run record: Generating 0/N before any shard, Failed with the reason."""
    from runtime import run_record

    dataset = make_run_dataset(3)  # its run (UID) holds labelField "pred"

    def probe(name: str, uid: str, label_field: str) -> dict[str, Any]:
        run = {**config(dataset), "run": {"namespace": "runs", "name": name, "uid": uid}}
        run["labelField"] = label_field
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AUTOLABEL_WORKER_CONFIG": json.dumps(run)}
        done = subprocess.run(
            [sys.executable, "-m", "worker", "probe", "--skip-triton"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        verdict: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return verdict

    assert probe("fresh", "uid-fresh", "other")["ok"] is True
    refused = probe("clash", "uid-clash", "pred")
    assert (refused["ok"], refused["reason"]) == (False, "LabelFieldExists")
    records = run_record.records(dataset.name)
    fresh, clash = records["uid-fresh"], records["uid-clash"]
    assert (fresh["phase"], fresh["target"], fresh["failure"]) == ("Generating", 3, None)
    assert clash["phase"] == "Failed" and clash["failure"]["reason"] == "LabelFieldExists"
    assert "'pred'" in clash["failure"]["message"]
    App(dataset, panel).call("on_load")  # home renders both cards
