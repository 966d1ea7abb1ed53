"""The Auto-Label panel of the FiftyOne App: review, approve and start AutoLabelRuns without leaving the App.

Home shows one card per run of the dataset (`cards`), from the run record the run's own
dataset work keeps in the dataset (`runtime.run_record`). A run's **Review**
tab sets the App's view to the run's labels in a confidence range (and one
class), shows the per-class table and tags labels for approval, with problem
tags or rejected; its **Approval** tab lists the approved labels per class with
Undo, and "Approve N labels" finalizes: with Kubernetes credentials by setting
``spec.finalize`` on the run, without by recording the request in the dataset
for the run's next review pass. With ``spec.review.autoApprove`` a
**Verification** tab reviews the run's verification sample (`verification`).
**New run** builds (and, with credentials, applies) an AutoLabelRun manifest
(`new_run_form`).
The panel reads and writes only the dataset otherwise; the decision tags are
the project's own (`review.decisions`).
"""

from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types

from contract.review import REJECTED_TAG
from runtime import run_record

from . import cards, kube
from . import review_ops as ops
from .new_run_form import NewRunForm
from .verification import VerificationTab

PHASE_LABELS = {run_record.IN_REVIEW: "In Review"}
DEFAULT_RANGE = [0.0, 1.0]
SLIDER_STEP = 0.05


class AutoLabelPanel(VerificationTab, NewRunForm, foo.Panel):  # type: ignore[misc]
    @property
    def config(self) -> Any:
        return foo.PanelConfig(
            name="autolabel",
            label="Auto-Label",
            surfaces="grid",
            help_markdown="Review and finalize AutoLabelRuns of this dataset, or start a new one.",
        )

    # ---- lifecycle -------------------------------------------------------------------------------

    def on_load(self, ctx: Any) -> None:
        self._refresh(ctx)

    def on_change_view(self, ctx: Any) -> None:
        self._refresh(ctx)

    def on_change_selected_labels(self, ctx: Any) -> None:
        self._refresh(ctx)

    def on_change_dataset(self, ctx: Any) -> None:
        ctx.panel.state.clear()
        self._refresh(ctx)

    def _run(self, ctx: Any) -> ops.Run | None:
        record = cards.record(ctx, ctx.panel.state.run)
        if not record or record.get("phase") != run_record.IN_REVIEW:
            return None  # only a run in review has labels to review
        return ops.Run.from_record(record)

    def _refresh(self, ctx: Any) -> None:
        """Recomputes the tables of the open run for the App's current view and selection."""
        run = self._run(ctx)
        if run is None:
            return
        ctx.panel.state.classes = ops.class_table(ctx.dataset, ctx.view, run, ctx.selected_labels)
        ctx.panel.state.approved = ops.approval_table(ctx.dataset, run)
        target = ops.target(ctx.dataset, ctx.view, run, ctx.selected_labels, undecided=True)
        ctx.panel.state.pending = ops.count(target, run)
        ctx.panel.state.kept, ctx.panel.state.removed = ops.finalize_counts(ctx.dataset, run)
        record = cards.record(ctx, run.uid) or {}
        if record.get("calibration"):
            self._refresh_verification(ctx, run, record)

    # ---- navigation ------------------------------------------------------------------------------

    def open_run(self, ctx: Any) -> None:
        ctx.panel.state.run = ctx.params.get("uid")
        ctx.panel.state.tab = "review"
        ctx.panel.state.confidence = list(DEFAULT_RANGE)
        ctx.panel.state.label = None
        ctx.panel.state.confirm = False
        self._apply_review_view(ctx)
        self._refresh(ctx)

    def go_home(self, ctx: Any) -> None:
        ctx.panel.state.run = None
        ctx.panel.state.form_open = False
        ctx.ops.clear_view()

    def show_review(self, ctx: Any) -> None:
        ctx.panel.state.tab = "review"
        self._apply_review_view(ctx)

    def show_approval(self, ctx: Any) -> None:
        ctx.panel.state.tab = "approval"
        ctx.panel.state.confirm = False
        self._refresh(ctx)

    # ---- review ----------------------------------------------------------------------------------

    def _apply_review_view(self, ctx: Any) -> None:
        run = self._run(ctx)
        if run is None:
            return
        low, high = (ctx.panel.state.confidence or DEFAULT_RANGE)[:2]
        view = ops.review_view(ctx.dataset, run, float(low), float(high), ctx.panel.state.label)
        ctx.ops.set_view(view=view)

    def on_confidence(self, ctx: Any) -> None:
        value = ctx.params.get("value")
        if isinstance(value, list | tuple) and len(value) == 2:
            ctx.panel.state.confidence = [min(value), max(value)]
            self._apply_review_view(ctx)

    def on_class_row(self, ctx: Any) -> None:
        rows = ctx.panel.state.classes or []
        row = ctx.params.get("row")
        if not isinstance(row, int) or not 0 <= row < len(rows):
            return
        label = rows[row]["label"]
        ctx.panel.state.label = None if ctx.panel.state.label == label else label
        self._apply_review_view(ctx)

    def clear_class(self, ctx: Any) -> None:
        ctx.panel.state.label = None
        self._apply_review_view(ctx)

    def add_for_approval(self, ctx: Any) -> None:
        run = self._run(ctx)
        if run is None:
            return
        added = ops.add_for_approval(ctx.dataset, ctx.view, run, ctx.selected_labels)
        ctx.ops.clear_selected_labels()
        ctx.ops.notify(f"{added} labels added for approval", variant="success")
        self._apply_review_view(ctx)  # approved labels leave the review view
        self._refresh(ctx)

    def tag_selected(self, ctx: Any) -> None:
        run = self._run(ctx)
        tag_name = ctx.params.get("tag")
        if run is None or not tag_name:
            return
        target = ops.target(ctx.dataset, ctx.view, run, ctx.selected_labels, undecided=False)
        tagged = ops.tag(target, run, str(tag_name))
        ctx.ops.notify(f"tagged {tagged} labels {tag_name}")
        if tag_name == REJECTED_TAG:
            self._apply_review_view(ctx)
        self._refresh(ctx)

    def open_patches(self, ctx: Any) -> None:
        run = self._run(ctx)
        if run is None:
            return
        # The run's own saved view (`autolabel-<run>-<uid8>-predictions`, named in its record).
        predictions = next((v for v in run.saved_views if v.endswith("-predictions")), None)
        if predictions is not None and ctx.dataset.has_saved_view(predictions):
            ctx.ops.set_view(name=predictions)
        elif run.task == "detection":
            ctx.ops.set_view(view=ops.run_labels(ctx.dataset, run).to_patches(run.staging))
        else:
            ctx.ops.set_view(view=ops.run_labels(ctx.dataset, run))

    def open_embeddings(self, ctx: Any) -> None:
        run = self._run(ctx)
        if run is None or not run.brain_key:
            ctx.ops.notify("this run stored no embeddings (spec.model.embeddings)", variant="warning")
            return
        ctx.ops.open_panel("Embeddings", layout="horizontal", is_active=True)
        ctx.ops.notify(f"choose brain key {run.brain_key} in the Embeddings panel")

    # ---- approval --------------------------------------------------------------------------------

    def undo_class(self, ctx: Any) -> None:
        run, rows, row = self._run(ctx), ctx.panel.state.approved or [], ctx.params.get("row")
        if run is None or not isinstance(row, int) or not 0 <= row < len(rows):
            return
        undone = ops.undo_approval(ctx.dataset, run, rows[row]["label"])
        ctx.ops.notify(f"{undone} {rows[row]['label']} labels back in review")
        self._refresh(ctx)

    def undo_all(self, ctx: Any) -> None:
        run = self._run(ctx)
        if run is not None:
            ctx.ops.notify(f"{ops.undo_approval(ctx.dataset, run)} labels back in review")
            self._refresh(ctx)

    def ask_approve(self, ctx: Any) -> None:
        self._refresh(ctx)
        ctx.panel.state.confirm = True

    def cancel_approve(self, ctx: Any) -> None:
        ctx.panel.state.confirm = False

    def confirm_approve(self, ctx: Any) -> None:
        """Finalize: ``spec.finalize`` with Kubernetes credentials, else a request in the dataset."""
        record = cards.record(ctx, ctx.panel.state.run)
        run = self._run(ctx)
        if record is None or run is None:
            return
        kept, removed = ops.finalize_counts(ctx.dataset, run)
        ctx.panel.state.confirm = False
        api = kube.runs_api()
        if api is not None:
            try:
                kube.set_finalize(*api, str(record["namespace"]), run.name, run.uid)
                ctx.ops.notify(f"spec.finalize set on {record['namespace']}/{run.name}", variant="success")
                return
            except kube.KubeError as error:
                ctx.ops.notify(f"{error}; recording the request in the dataset instead", variant="warning")
        try:
            run_record.request_finalize(ctx.dataset.name, run.uid, kept, removed)
        except (LookupError, ValueError) as error:
            ctx.ops.notify(str(error), variant="error")
            return
        ctx.ops.notify(
            f"finalize requested: the run's next review pass keeps {kept} labels and removes {removed}",
            variant="success",
        )

    # ---- rendering -------------------------------------------------------------------------------

    def render(self, ctx: Any) -> Any:
        panel = types.Object()
        state = ctx.panel.state
        if state.form_open:
            self._render_form(ctx, panel)
        elif state.run and cards.record(ctx, state.run):
            self._render_run(ctx, panel, cards.record(ctx, state.run) or {})
        else:
            self._render_home(ctx, panel)
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=1, padding=2))

    def _render_home(self, ctx: Any, panel: Any) -> None:
        records = run_record.records(ctx.dataset.name) if ctx.dataset is not None else {}
        panel.md(
            "### Auto-Label runs" if records else "### Auto-Label\nNo runs on this dataset yet.", name="title"
        )
        for index, record in enumerate(sorted(records.values(), key=lambda r: str(r.get("name")))):
            panel.md(cards.card(record), name=f"card_{index}")
            if record.get("phase") == run_record.IN_REVIEW:
                panel.btn(
                    f"open_{index}",
                    label=f"Review {record.get('name')}",
                    on_click=self.open_run,
                    params={"uid": record["uid"]},
                    variant="outlined",
                )
        panel.btn("new_run", label="New run", on_click=self.open_form, variant="contained")

    def _render_run(self, ctx: Any, panel: Any, record: dict[str, Any]) -> None:
        state = ctx.panel.state
        nav = panel.h_stack("nav", align_x="left")
        nav.btn("home", label="All runs", on_click=self.go_home)
        nav.btn(
            "tab_review",
            label="Review",
            on_click=self.show_review,
            variant="contained" if state.tab != "approval" else "outlined",
        )
        nav.btn(
            "tab_approval",
            label="Approval",
            on_click=self.show_approval,
            variant="contained" if state.tab == "approval" else "outlined",
        )
        if record.get("calibration"):
            nav.btn(
                "tab_verification",
                label="Verification",
                on_click=self.show_verification,
                variant="contained" if state.tab == "verification" else "outlined",
            )
        panel.md(cards.card(record), name="card")
        if record.get("phase") != run_record.IN_REVIEW:
            return
        if state.tab == "verification" and record.get("calibration"):
            self._render_verification(ctx, panel, record)
        elif state.tab == "approval":
            self._render_approval(ctx, panel, record)
        else:
            self._render_review(ctx, panel, record)

    def _render_review(self, ctx: Any, panel: Any, record: dict[str, Any]) -> None:
        state = ctx.panel.state
        if record.get("task") != "segmentation":
            # A fixed schema: the App resets a widget to its default when its schema changes.
            panel.list(
                "confidence",
                types.Number(),
                on_change=self.on_confidence,
                view=types.SliderView(
                    min=0,
                    max=1,
                    view_multiple_of=SLIDER_STEP,
                    value_precision=2,
                    label="Confidence",
                    label_position="top",
                ),
            )
        table = types.TableView(on_click_row=self.on_class_row)
        table.add_column("label", label="Label")
        table.add_column("instances", label="Instances")
        table.add_column("confidence", label="Confidence")
        panel.list("classes", types.Object(), view=table)
        if state.label:
            panel.md(
                f"Showing class **{state.label}** only (click its row again for all classes)", name="only"
            )
            panel.btn("all_classes", label="All classes", on_click=self.clear_class)
        actions = panel.h_stack("actions", align_x="left")
        actions.btn(
            "add",
            label=f"Add {state.pending or 0} labels for approval",
            on_click=self.add_for_approval,
            variant="contained",
            disabled=not state.pending,
        )
        actions.btn("reject", label="Reject", on_click=self.tag_selected, params={"tag": REJECTED_TAG})
        tags = panel.h_stack("problem_tags", align_x="left")
        for index, name in enumerate(record.get("problemTags") or []):
            tags.btn(f"tag_{index}", label=name, on_click=self.tag_selected, params={"tag": name})
        shortcuts = panel.h_stack("shortcuts", align_x="left")
        shortcuts.btn("patches", label="Patches view", on_click=self.open_patches)
        shortcuts.btn(
            "embeddings",
            label="Embeddings plot",
            on_click=self.open_embeddings,
            disabled=not record.get("brainKey"),
        )

    def _render_approval(self, ctx: Any, panel: Any, record: dict[str, Any]) -> None:
        state = ctx.panel.state
        table = types.TableView()
        table.add_column("label", label="Label")
        table.add_column("approved", label="Approved")
        table.add_row_action("undo", self.undo_class, label="Undo")
        panel.list("approved", types.Object(), view=table)
        if record.get("finalizeRequest"):
            panel.md("Finalize requested; the run's dataset work carries it out shortly.", name="requested")
            return
        buttons = panel.h_stack("approval_actions", align_x="left")
        buttons.btn("undo_all", label="Undo all", on_click=self.undo_all, disabled=not state.approved)
        buttons.btn(
            "approve",
            label=f"Approve {state.kept or 0} labels",
            on_click=self.ask_approve,
            variant="contained",
            disabled=not state.kept,
        )
        if state.confirm:
            panel.md(
                f"**Finalize {record.get('name')}?** {state.kept} approved labels are kept in "
                f"`{record.get('labelField')}`; the other {state.removed} labels of the run are removed. "
                "This cannot be undone.",
                name="confirm_text",
            )
            confirm = panel.h_stack("confirm_actions", align_x="left")
            confirm.btn(
                "confirm",
                label=f"Keep {state.kept}, remove {state.removed}",
                on_click=self.confirm_approve,
                variant="contained",
            )
            confirm.btn("cancel", label="Cancel", on_click=self.cancel_approve)


def register(plugin: Any) -> None:
    plugin.register(AutoLabelPanel)
