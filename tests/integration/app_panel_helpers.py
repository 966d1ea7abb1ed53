"""The App as the panel's tests drive it: callbacks in a real ExecutionContext, the run's dataset work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.integration.test_review_dataset import config
from tests.integration.worker_helpers import REPO_ROOT

PANEL_URI = "@autolabel/review/autolabel"


class App:
    """What the App keeps between panel calls: the view, the label selection and the panel state."""

    def __init__(self, dataset: Any, panel: Any) -> None:
        self.dataset, self.panel = dataset, panel
        self.view: list[Any] = []
        self.view_name: str | None = None  # the saved view the panel last opened by name
        self.selected_labels: list[dict[str, Any]] = []
        self.selected: list[str] = []
        self.state: dict[str, Any] = {}
        self.notes: list[str] = []

    def call(self, method: str, **params: Any) -> None:
        from fiftyone.operators.executor import ExecutionContext, Executor

        request = {
            "dataset_name": self.dataset.name,
            "view": self.view,
            "selected_labels": self.selected_labels,
            "selected": self.selected,
            "params": {"panel_id": "panel-1", "panel_state": self.state, **params},
        }
        ctx = ExecutionContext(request_params=request, executor=Executor())
        getattr(self.panel, method)(ctx)
        self.panel.render(ctx)  # the App renders after every event; render must not fail
        for triggered in ctx.executor.to_json()["requests"]:
            name, args = triggered["operator_uri"], triggered["params"]
            if name == "set_view":
                self.view = args.get("view") or []
                self.view_name = args.get("name")
                if args.get("name"):
                    self.view = self.dataset.load_saved_view(args["name"])._serialize()
            elif name == "clear_view":
                self.view = []
            elif name == "clear_selected_labels":
                self.selected_labels = []
            elif name == "clear_selected_samples":
                self.selected = []
            elif name == "notify":
                self.notes.append(str(args.get("message")))


def dataset_work(dataset: Any, *argv: str) -> dict[str, Any]:
    """The run's dataset work, as the controller runs it (the worker module in a subprocess)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "AUTOLABEL_WORKER_CONFIG": json.dumps(config(dataset)),
        "AUTOLABEL_REVIEW_CONFIG": "{}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "worker", *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def labels(dataset: Any, field: str) -> list[tuple[str, float, tuple[str, ...]]]:
    dataset.reload()
    found = []
    for detections in dataset.values(field):
        for d in detections.detections if detections else []:
            found.append((d.label, round(d.confidence, 3), tuple(sorted(d.tags))))
    return sorted(found)


def run_sample_tags(dataset: Any, field: str) -> dict[str, list[str]]:
    """Label id -> tags of every label of the verification sample, read afresh."""
    from review.auto_approve import VERIFICATION_ATTRIBUTE

    dataset.reload()
    found = {}
    for detections in dataset.values(field):
        for label in detections.detections if detections else []:
            if label.has_field(VERIFICATION_ATTRIBUTE) and label[VERIFICATION_ATTRIBUTE] is not None:
                found[label.id] = list(label.tags)
    return found
