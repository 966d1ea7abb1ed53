"""The panel's **New run** form: an AutoLabelRun's fields, its manifest, applied when there are credentials.

A mixin of the Auto-Label panel (`go_home` is the panel's). The manifest is built by
`new_run.build_manifest` with the project's own API models; with Kubernetes
credentials it is applied (`kube.apply_run`), without it is shown to copy into Git.
"""

from __future__ import annotations

import os
from typing import Any

import fiftyone.operators.types as types
import yaml

from . import kube, new_run


class NewRunForm:
    """The form's callbacks and rendering, mixed into the Auto-Label panel."""

    def go_home(self, ctx: Any) -> None:
        raise NotImplementedError

    def open_form(self, ctx: Any) -> None:
        ctx.panel.state.form_open = True
        ctx.panel.state.manifest = None
        ctx.panel.state.problems = None
        form = dict(ctx.panel.state.form or {})
        form.setdefault("address", os.environ.get(new_run.TRITON_ADDRESS_ENV, ""))
        form.setdefault("target", "all")
        form.setdefault("task", "classification")
        ctx.panel.state.form = form
        ctx.panel.state.models = new_run.triton_models(new_run.listing_url(form))

    def on_form(self, ctx: Any) -> None:
        form = dict(ctx.panel.state.form or {})
        ctx.panel.state.models = new_run.triton_models(new_run.listing_url(form))

    def create_run(self, ctx: Any) -> None:
        form = dict(ctx.panel.state.form or {})
        selected = list(ctx.selected or [])
        manifest, problems = new_run.build_manifest(form, ctx.dataset, ctx.view, selected)
        ctx.panel.state.problems = "\n".join(f"- {p}" for p in problems) or None
        ctx.panel.state.manifest = yaml.safe_dump(manifest, sort_keys=False) if manifest else None
        if manifest is None:
            return
        api = kube.runs_api()
        if api is None:
            ctx.ops.notify("no Kubernetes credentials here: copy the manifest into Git or kubectl apply it")
            return
        try:
            kube.apply_run(*api, manifest)
            ctx.ops.notify(f"created autolabelrun {manifest['metadata']['name']}", variant="success")
        except kube.KubeError as error:
            ctx.ops.notify(f"{error}: copy the manifest instead", variant="error")

    def _render_form(self, ctx: Any, panel: Any) -> None:
        state = ctx.panel.state
        panel.btn("home", label="All runs", on_click=self.go_home)
        panel.md("### New AutoLabelRun", name="form_title")
        form = types.Object()
        targets = types.Choices()
        targets.add_choice("all", label="All samples")
        targets.add_choice("view", label="Current view")
        targets.add_choice("selection", label=f"Current selection ({len(ctx.selected or [])} samples)")
        form.enum("target", targets.values(), label="Target", view=targets, default="all")
        form.enum(
            "task", ["classification", "detection", "segmentation"], label="Task", default="classification"
        )
        form.str("address", label="Triton endpoint (host:port)", on_change=self.on_form)
        form.enum("protocol", ["grpc", "http"], label="Protocol", default="grpc", on_change=self.on_form)
        if state.models:
            form.enum("model", list(state.models), label="Model (from Triton's repository)")
        else:
            form.str("model", label="Model (Triton could not be listed: type its name)")
        form.str("classes", label="Classes (comma-separated; default all)")
        form.float("min_confidence", label="Minimum confidence", min=0, max=1)
        form.str("label_field", label="New label field")
        form.str("name", label="Run name")
        form.str("namespace", label="Namespace", default="default")
        form.str("secret", label="Database Secret", default="fiftyone-db")
        panel.define_property("form", form, label="")
        panel.btn("create", label="Create run", on_click=self.create_run, variant="contained")
        if state.problems:
            panel.md(state.problems, name="problems")
        if state.manifest:
            panel.str(
                "manifest",
                label="AutoLabelRun manifest",
                view=types.CodeView(language="yaml"),
                default=state.manifest,
            )
