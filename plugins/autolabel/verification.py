"""The Auto-Label panel's Verification tab: review the run's verification sample, see what it proves.

With ``spec.review.autoApprove`` a run draws a stratified random sample of its
labels (`review.auto_approve`); only people's decisions on that sample
calibrate auto-approval. The tab sets the App's view to the sample's labels a
person has not decided yet, in the sample's random order (patches for
detections), and marks the selected ones right (``autolabel:approved``) or wrong
(``autolabel:rejected``): the same tags as everywhere else, so the run's next
review pass counts them. Below, per class, what the last pass computed from
the reviewed sample (the run record's ``calibration``): reviewed, estimated
precision with its interval, the certified threshold, labels auto-approved and
labels left for people.

Only labels of the sample are ever tagged here: a selection outside it is
ignored, and nothing is tagged without a selection (the whole sample at once
would not be a review).
"""

from __future__ import annotations

from typing import Any

import fiftyone.operators.types as types
from fiftyone import ViewField as F

from contract.review import APPROVED_TAG, REJECTED_TAG
from review.auto_approve import VERIFICATION_ATTRIBUTE
from review.labels import label_list_field

from . import review_ops as ops


def sample_labels(collection: Any, run: ops.Run, undecided: bool) -> Any:
    """The run's labels of the verification sample in `collection` (only the undecided ones if asked)."""
    expression = F(VERIFICATION_ATTRIBUTE).exists()
    if undecided:
        expression = expression & ~F("tags").contains(APPROVED_TAG) & ~F("tags").contains(REJECTED_TAG)
    return ops.run_labels(collection, run, expression)


def sample_view(dataset: Any, run: ops.Run) -> Any:
    """What the tab shows: undecided sample labels in the sample's random order (one patch per object)."""
    view = sample_labels(dataset, run, undecided=True)
    if dataset.has_field(run.staging) and label_list_field(dataset, run.staging):
        view = view.to_patches(run.staging)
    return view.sort_by(f"{run.staging}.{VERIFICATION_ATTRIBUTE}")


def progress(dataset: Any, run: ops.Run) -> tuple[int, int]:
    """(decided, drawn) labels of the verification sample, read from the dataset now."""
    drawn = ops.count(sample_labels(dataset, run, undecided=False), run)
    return drawn - ops.count(sample_labels(dataset, run, undecided=True), run), drawn


def mark(
    view: Any, run: ops.Run, selected: list[str], selected_labels: list[dict[str, Any]], right: bool
) -> int:
    """Tags the selected sample labels right or wrong; returns how many. Nothing without a selection."""
    if selected_labels:
        collection = ops.target(view, view, run, selected_labels, undecided=True)
    elif selected:
        collection = view.select(selected)
    else:
        return 0
    tag = APPROVED_TAG if right else REJECTED_TAG
    return ops.tag(sample_labels(collection, run, undecided=True), run, tag)


def _number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def calibration_rows(calibration: dict[str, Any] | None) -> list[dict[str, str]]:
    """The per-class table of the run record's ``calibration``, as the panel's TableView shows it."""
    rows = []
    for entry in (calibration or {}).get("classes") or []:
        interval = entry.get("interval")
        threshold = entry.get("threshold")
        needed = entry.get("moreReviewsNeeded")
        rows.append(
            {
                "label": str(entry.get("name")),
                "reviewed": f"{entry.get('reviewed', 0)} of {entry.get('sampled', 0)}",
                "precision": _number(entry.get("precision")),
                "interval": f"{_number(interval[0])}-{_number(interval[1])}" if interval else "-",
                "threshold": _number(threshold)
                if threshold is not None
                else (f"needs {needed} more" if needed else "not certified"),
                "auto_approved": str(entry.get("autoApproved", 0)),
                "left": str(entry.get("leftForPeople", 0)),
            }
        )
    return rows


def summary(calibration: dict[str, Any], decided: int, drawn: int) -> str:
    return (
        f"Verification sample: **{decided} of {drawn}** labels reviewed. Target precision "
        f"{calibration.get('targetPrecision')} at confidence {calibration.get('confidenceLevel')}; "
        f"{calibration.get('autoApproved', 0)} labels auto-approved so far. Mark each label right or "
        "wrong honestly: only these decisions calibrate auto-approval, and the table below follows "
        "the run's next review pass."
    )


class VerificationTab:
    """The tab's callbacks and rendering, mixed into the Auto-Label panel (`_run` and `_refresh` are its)."""

    def _run(self, ctx: Any) -> ops.Run | None:
        raise NotImplementedError

    def _refresh(self, ctx: Any) -> None:
        raise NotImplementedError

    def _refresh_verification(self, ctx: Any, run: ops.Run, record: dict[str, Any]) -> None:
        ctx.panel.state.verified, ctx.panel.state.drawn = progress(ctx.dataset, run)
        ctx.panel.state.calibration = calibration_rows(record.get("calibration"))

    def show_verification(self, ctx: Any) -> None:
        ctx.panel.state.tab = "verification"
        ctx.panel.state.confirm = False
        run = self._run(ctx)
        if run is None:
            return
        ctx.ops.set_view(view=sample_view(ctx.dataset, run))
        self._refresh(ctx)

    def mark_right(self, ctx: Any) -> None:
        self._mark(ctx, right=True)

    def mark_wrong(self, ctx: Any) -> None:
        self._mark(ctx, right=False)

    def _mark(self, ctx: Any, right: bool) -> None:
        run = self._run(ctx)
        if run is None:
            return
        marked = mark(ctx.view, run, list(ctx.selected or []), list(ctx.selected_labels or []), right)
        if not marked:
            ctx.ops.notify("select labels of the verification sample first", variant="warning")
            return
        ctx.ops.clear_selected_labels()
        ctx.ops.clear_selected_samples()
        ctx.ops.notify(f"{marked} sample labels marked {'right' if right else 'wrong'}", variant="success")
        ctx.ops.set_view(view=sample_view(ctx.dataset, run))  # decided labels leave the view
        self._refresh(ctx)

    def _render_verification(self, ctx: Any, panel: Any, record: dict[str, Any]) -> None:
        state = ctx.panel.state
        calibration = record.get("calibration") or {}
        panel.md(summary(calibration, state.verified or 0, state.drawn or 0), name="verify")
        actions = panel.h_stack("verify_actions", align_x="left")
        actions.btn("right", label="Right (approve)", on_click=self.mark_right, variant="contained")
        actions.btn("wrong", label="Wrong (reject)", on_click=self.mark_wrong)
        table = types.TableView()
        for key, label in (
            ("label", "Class"),
            ("reviewed", "Reviewed"),
            ("precision", "Precision"),
            ("interval", "Interval"),
            ("threshold", "Threshold"),
            ("auto_approved", "Auto-approved"),
            ("left", "Left for people"),
        ):
            table.add_column(key, label=label)
        panel.list("calibration", types.Object(), view=table)
