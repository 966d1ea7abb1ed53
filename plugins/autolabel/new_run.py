"""The "New run" form: Triton's model list, and the AutoLabelRun manifest validated by ``controller.api``.

The manifest is validated by the same pydantic models that generate the CRD,
so a form that passes here is a spec the API server and the controller accept
(the label field must also be new in the dataset). Target "current view" saves
the App's view as a saved view of the dataset (the run's ``dataset.target.view``);
"current selection" becomes ``dataset.target.sampleIds``.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from typing import Any

from pydantic import ValidationError

from contract.worker import OutputFormat, Task
from controller.api import AutoLabelRun

TRITON_HTTP_ENV = "AUTOLABEL_TRITON_HTTP_URL"
"""Triton's HTTP URL the App can reach for the model list (default: the endpoint when it speaks http)."""
TRITON_ADDRESS_ENV = "AUTOLABEL_TRITON_ADDRESS"
"""Default host:port of the Triton endpoint the workers call (the manifest's model.endpoint.address)."""
TARGETS = ("all", "view", "selection")
DEFAULT_FORMAT = {
    Task.CLASSIFICATION: OutputFormat.LOGITS,
    Task.DETECTION: OutputFormat.BOXES,
    Task.SEGMENTATION: OutputFormat.MASK,
}


def triton_models(http_url: str | None, timeout_s: float = 2.0) -> list[str] | None:
    """Model names of Triton's repository index (``POST /v2/repository/index``); None if unreachable."""
    if not http_url:
        return None
    url = http_url if "://" in http_url else f"http://{http_url}"
    request = urllib.request.Request(f"{url.rstrip('/')}/v2/repository/index", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            index = json.loads(response.read() or b"[]")
    except (OSError, ValueError):
        return None
    return sorted({str(entry["name"]) for entry in index if isinstance(entry, dict) and entry.get("name")})


def listing_url(form: dict[str, Any]) -> str | None:
    """Where to list models: $AUTOLABEL_TRITON_HTTP_URL, else the endpoint itself when it speaks http."""
    if os.environ.get(TRITON_HTTP_ENV):
        return os.environ[TRITON_HTTP_ENV]
    if form.get("protocol") == "http" and form.get("address"):
        return str(form["address"])
    return None


def _classes(text: str | None) -> list[str] | None:
    names = [name.strip() for name in re.split(r"[,\n]", text or "") if name.strip()]
    return list(dict.fromkeys(names)) or None


def _problems(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in issue['loc'] if part != 'spec') or 'spec'}: {issue['msg']}"
        for issue in error.errors()
    ]


def target_view_name(run_name: str) -> str:
    return f"autolabel-{run_name}-target"


def build_manifest(
    form: dict[str, Any], dataset: Any, view: Any, selected: list[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """(manifest, []) for a valid form, else (None, problems naming the field and the fix).

    Saving the target view is the one dataset write, done only when the rest is valid.
    """
    name = str(form.get("name") or "").strip()
    task = str(form.get("task") or Task.CLASSIFICATION)
    target_kind = str(form.get("target") or "all")
    label_field = str(form.get("label_field") or "").strip()
    problems = []
    if target_kind == "selection" and not selected:
        problems.append("target: select samples in the grid first (or choose all samples / current view)")
    if label_field and dataset.has_sample_field(label_field):
        problems.append(f"labelField: {label_field!r} exists in the dataset; a run writes a new field")
    target: dict[str, Any] = {"all": True}
    if target_kind == "view":
        target = {"view": target_view_name(name or "run")}
        if dataset.has_saved_view(target["view"]):  # another run's target (or a user's view): never replaced
            problems.append(
                f"name: the saved view {target['view']!r} exists (the target of an earlier run of this "
                "name?); choose another run name, or delete that view if nothing uses it"
            )
    elif target_kind == "selection":
        target = {"sampleIds": list(selected)}
    try:
        output_format = str(form.get("output_format") or DEFAULT_FORMAT[Task(task)])
    except ValueError:
        output_format = ""
    model: dict[str, Any] = {
        "endpoint": {"address": str(form.get("address") or ""), "protocol": form.get("protocol") or "grpc"},
        "name": str(form.get("model") or ""),
        "outputFormat": output_format,
    }
    if _classes(form.get("classes")):
        model["classes"] = _classes(form.get("classes"))
    spec: dict[str, Any] = {
        "task": task,
        "dataset": {
            "name": dataset.name,
            "target": target,
            "databaseSecretRef": {"name": str(form.get("secret") or "fiftyone-db")},
        },
        "model": model,
        "labelField": label_field,
    }
    if form.get("min_confidence"):
        spec["confidenceThreshold"] = float(form["min_confidence"])
    manifest = {
        "apiVersion": "autolabel.dev/v1alpha1",
        "kind": "AutoLabelRun",
        "metadata": {"name": name, "namespace": str(form.get("namespace") or "default")},
        "spec": spec,
    }
    try:
        AutoLabelRun.model_validate(manifest)
    except ValidationError as error:
        problems.extend(_problems(error))
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) or len(name) > 63:
        problems.append("name: a Kubernetes name (lowercase letters, digits and '-', at most 63)")
    if problems:
        return None, problems
    if target_kind == "view":
        dataset.save_view(target["view"], view, description=f"target of autolabel run {name}")
    return manifest, []
