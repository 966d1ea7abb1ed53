"""What the Auto-Label panel does to the dataset: plain functions of (dataset, view, run record, selection).

The panel's callbacks are thin: they call these and tell the App what to show.
Every write is a label tag on the run's own labels in its staging field (the
labels carrying the run's uid in ``autolabel_run``), the same decision tags the
CLI, GitOps rules and finalize use (`review.decisions`); nothing else of the
dataset is touched. "Target labels" are the current label selection when the
reviewer selected labels of the run, else the run's labels in the current view.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fiftyone import ViewField as F

from contract.review import APPROVED_TAG, REJECTED_TAG
from contract.worker import RUN_ATTRIBUTE
from review.labels import label_list_field, label_path


@dataclass(frozen=True)
class Run:
    """The parts of a run record the review needs."""

    uid: str
    name: str
    task: str
    staging: str
    label_field: str
    problem_tags: tuple[str, ...]
    saved_views: tuple[str, ...]
    brain_key: str | None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Run:
        return cls(
            uid=str(record["uid"]),
            name=str(record.get("name") or record["uid"]),
            task=str(record.get("task") or ""),
            staging=str(record["stagingField"]),
            label_field=str(record.get("labelField") or ""),
            problem_tags=tuple(record.get("problemTags") or ()),
            saved_views=tuple(record.get("savedViews") or ()),
            brain_key=record.get("brainKey"),
        )


def _undecided() -> Any:
    return ~F("tags").contains(APPROVED_TAG) & ~F("tags").contains(REJECTED_TAG)


def _approved() -> Any:
    return F("tags").contains(APPROVED_TAG) & ~F("tags").contains(REJECTED_TAG)


def _ours(run: Run) -> Any:
    return F(RUN_ATTRIBUTE) == run.uid


def _has_field(collection: Any, run: Run) -> bool:
    return bool(collection.has_field(run.staging))


def run_labels(collection: Any, run: Run, expression: Any | None = None) -> Any:
    """`collection` reduced to the run's labels (matching `expression`) in its staging field."""
    if not _has_field(collection, run):
        return collection.limit(0)
    wanted = _ours(run) if expression is None else _ours(run) & expression
    return collection.filter_labels(run.staging, wanted)


def review_view(dataset: Any, run: Run, low: float, high: float, label: str | None = None) -> Any:
    """The Review tab's view: the run's undecided labels with low <= confidence <= high (of class `label`)."""
    expression = _undecided()
    if run.task != "segmentation":  # masks carry no confidence
        expression = expression & (F("confidence") >= low) & (F("confidence") <= high)
    if label is not None:
        expression = expression & (F("label") == label)
    return run_labels(dataset, run, expression)


def _selected(dataset: Any, run: Run, selected_labels: list[dict[str, Any]]) -> Any | None:
    ours = [label for label in selected_labels or [] if label.get("field") == run.staging]
    if not ours:
        return None
    return dataset.select_labels(labels=ours)


def target(dataset: Any, view: Any, run: Run, selected_labels: list[dict[str, Any]], undecided: bool) -> Any:
    """The target labels: the run's selected labels, else its labels in `view` (undecided ones if asked)."""
    source = _selected(dataset, run, selected_labels)
    collection = view if source is None else source
    return run_labels(collection, run, _undecided() if undecided else None)


def count(collection: Any, run: Run) -> int:
    """Labels of the staging field in `collection`."""
    if not _has_field(collection, run):
        return 0
    return int(collection.count(label_path(collection, run.staging)))


def _labels_and_confidences(collection: Any, run: Run) -> list[tuple[str, float | None]]:
    if not _has_field(collection, run):
        return []
    path = label_path(collection, run.staging)
    labels, confidences = collection.values([f"{path}.label", f"{path}.confidence"])
    if label_list_field(collection, run.staging) is None:
        labels, confidences = [[value] for value in labels], [[value] for value in confidences]
    pairs = []
    for sample_labels, sample_confidences in zip(labels, confidences, strict=True):
        for label, confidence in zip(sample_labels or [], sample_confidences or [], strict=True):
            if label is not None or run.task == "segmentation":
                pairs.append((str(label if label is not None else "mask"), confidence))
    return pairs


def class_table(
    dataset: Any, view: Any, run: Run, selected_labels: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Review table rows: class, instances "current of total" (undecided labels), their mean confidence."""
    totals: dict[str, int] = defaultdict(int)
    for label, _ in _labels_and_confidences(run_labels(dataset, run, _undecided()), run):
        totals[label] += 1
    current: dict[str, list[float | None]] = defaultdict(list)
    for label, confidence in _labels_and_confidences(target(dataset, view, run, selected_labels, True), run):
        current[label].append(confidence)
    rows = []
    for label in sorted(totals):
        known = [c for c in current.get(label, []) if c is not None]
        rows.append(
            {
                "label": label,
                "instances": f"{len(current.get(label, []))} of {totals[label]}",
                "confidence": f"{sum(known) / len(known):.2f}" if known else "-",
            }
        )
    return rows


def approval_table(dataset: Any, run: Run) -> list[dict[str, Any]]:
    """Approval tab rows: approved labels per class."""
    approved: dict[str, int] = defaultdict(int)
    for label, _ in _labels_and_confidences(run_labels(dataset, run, _approved()), run):
        approved[label] += 1
    return [{"label": label, "approved": str(approved[label])} for label in sorted(approved)]


def tag(collection: Any, run: Run, tag_name: str) -> int:
    """Tags every staging label of `collection` with `tag_name`; returns how many labels."""
    labels = count(collection, run)
    if labels:
        collection.tag_labels(tag_name, label_fields=[run.staging])
    return labels


def add_for_approval(dataset: Any, view: Any, run: Run, selected_labels: list[dict[str, Any]]) -> int:
    """ "Add N labels for approval": the undecided target labels get ``autolabel:approved``."""
    return tag(target(dataset, view, run, selected_labels, undecided=True), run, APPROVED_TAG)


def undo_approval(dataset: Any, run: Run, label: str | None = None) -> int:
    """Takes ``autolabel:approved`` back from the run's labels (of one class, or all); returns how many."""
    expression = F("tags").contains(APPROVED_TAG)
    if label is not None:
        expression = expression & (F("label") == label)
    collection = run_labels(dataset, run, expression)
    labels = count(collection, run)
    if labels:
        collection.untag_labels(APPROVED_TAG, label_fields=[run.staging])
    return labels


def finalize_counts(dataset: Any, run: Run) -> tuple[int, int]:
    """(kept, removed) if the run were finalized now: approved labels are kept, every other label goes."""
    total = count(run_labels(dataset, run), run)
    kept = count(run_labels(dataset, run, _approved()), run)
    return kept, total - kept
