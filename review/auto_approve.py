"""Calibrated auto-approval on the dataset: the verification sample, the estimate, the approvals.

One pass (`auto_approve`, run by the review pass when ``spec.review.autoApprove`` is set):

1. **Draw the verification sample once**: `review.calibration.verification_sample`
   over the run's labels (seeded by the run's uid, so a re-run draws the same one);
   each sampled label gets the attribute ``autolabel_verification`` = its rank in a
   random order. The saved view `verification_view_name` shows them in that order.
2. **Estimate per class** from the sample's decisions only: ``autolabel:approved`` =
   right, ``autolabel:rejected`` = wrong, set by a person (a decision a spec rule made,
   attribute ``autolabel_decision``, is not a review and is not counted), so labels
   reviewed elsewhere, which are no random sample, never bias the estimate.
3. **Approve** the class's unsampled, undecided labels at or above the certified
   threshold: tag ``autolabel:approved`` and attribute ``autolabel_auto_approved`` =
   the threshold. When a later estimate raises a threshold (or withdraws it) the
   approvals it no longer covers are taken back; nothing else is ever untagged.

Writes are per-label update operators (``$addToSet`` / ``$pull`` on that label's
tags), never a rewritten tag list, so a tag a person adds at the same moment survives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne

from contract.review import APPROVED_TAG, DECISION_ATTRIBUTE, REJECTED_TAG, AutoApproveConfig
from contract.worker import WorkerConfig
from review.aids import verification_view_name
from review.calibration import ClassCalibration, Reviewed, calibrate_class, verification_sample
from review.labels import label_list_field, label_path, run_view
from runtime.claims import claim_aid
from runtime.durable import retried, samples

VERIFICATION_ATTRIBUTE = "autolabel_verification"
AUTO_APPROVED_ATTRIBUTE = "autolabel_auto_approved"


@dataclass(frozen=True)
class _Label:
    sample_id: str
    label_id: str
    label: str
    confidence: float | None
    tags: tuple[str, ...]
    rule_decision: str | None
    rank: int | None
    auto_threshold: float | None


def _load(dataset: Any, config: WorkerConfig) -> list[_Label]:
    if not dataset.has_sample_field(config.staging):
        return []
    is_list = label_list_field(dataset, config.staging) is not None
    path = label_path(dataset, config.staging)
    names = ("id", "label", "confidence", "tags", DECISION_ATTRIBUTE, VERIFICATION_ATTRIBUTE)
    columns = [f"{path}.{name}" for name in (*names, AUTO_APPROVED_ATTRIBUTE)]
    sample_ids, *values = run_view(dataset, config).values(["id", *columns])
    labels = []
    for index, sample_id in enumerate(sample_ids):
        rows = [(column[index] or []) if is_list else [column[index]] for column in values]
        for label_id, label, confidence, tags, decision, rank, auto in zip(*rows, strict=True):
            if label_id is None:
                continue
            labels.append(
                _Label(
                    str(sample_id),
                    str(label_id),
                    str(label),
                    float(confidence) if confidence is not None else None,
                    tuple(tags or ()),
                    decision,
                    int(rank) if rank is not None else None,
                    float(auto) if auto is not None else None,
                )
            )
    return labels


class _Updates:
    """Per-label update operators on the staging field, sent as one unordered bulk write."""

    def __init__(self, dataset: Any, config: WorkerConfig) -> None:
        self.collection = samples(dataset, config.database)  # the durable write concern
        self.database = config.database
        self.field = config.staging
        self.marker, self.uid = config.marker_field, config.run.uid  # only this run's samples
        self.list_field = label_list_field(dataset, config.staging)
        self.operations: list[UpdateOne] = []

    def add(
        self, label: _Label, update: dict[str, dict[str, Any]], where: Mapping[str, Any] | None = None
    ) -> None:
        """`update` and `where` name attributes of the label (``tags``, ...), made paths into the sample.

        The update applies only where the label matches `where` at the moment of the write.
        The sample's ``last_modified_at`` moves too, as with FiftyOne's own writes.
        """
        where = where or {}
        match: dict[str, Any] = {"_id": ObjectId(label.sample_id), self.marker: self.uid}
        array_filters: list[Mapping[str, Any]] | None = None
        if self.list_field:
            operators = _prefixed(update, f"{self.field}.{self.list_field}.$[label]")
            condition = {"label._id": ObjectId(label.label_id), **{f"label.{k}": v for k, v in where.items()}}
            array_filters = [condition]
        else:
            operators = _prefixed(update, self.field)
            match[f"{self.field}._id"] = ObjectId(label.label_id)
            match.update({f"{self.field}.{k}": v for k, v in where.items()})
        operators.setdefault("$set", {})["last_modified_at"] = datetime.now(UTC)
        self.operations.append(UpdateOne(match, operators, array_filters=array_filters))

    def send(self) -> int:
        if self.operations:
            operations = self.operations
            retried(
                "tagging auto-approved labels",
                self.database,
                lambda: self.collection.bulk_write(operations, ordered=False),
            )
        return len(self.operations)


def _prefixed(update: dict[str, dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    return {op: {f"{prefix}.{key}": value for key, value in body.items()} for op, body in update.items()}


def _draw(labels: list[_Label], settings: AutoApproveConfig, seed: str) -> dict[str, int]:
    """Label id -> rank of the verification sample (drawn once; empty if it already exists)."""
    if any(label.rank is not None for label in labels):
        return {}
    candidates = [
        (label.label_id, label.label, label.confidence) for label in labels if label.confidence is not None
    ]
    sample = verification_sample(candidates, settings.sample_per_class, settings.confidence_bands, seed)
    return {label_id: rank for rank, label_id in enumerate(sample)}


def _person_verdict(label: _Label) -> bool | None:
    """A reviewer's verdict on a sampled label: True right, False wrong, None not reviewed yet."""
    if label.rule_decision is not None:
        return None
    if REJECTED_TAG in label.tags:
        return False
    if APPROVED_TAG in label.tags:
        return True
    return None


def _class_row(result: ClassCalibration, sampled: int, approved: int, left: int) -> dict[str, Any]:
    return {
        "name": result.label,
        "sampled": sampled,
        "reviewed": result.reviewed,
        "correct": result.correct,
        "precision": result.precision,
        "lowerBound": result.lower,
        "interval": [result.interval.low, result.interval.high] if result.interval else None,
        "threshold": result.threshold,
        "autoApproved": approved,
        "leftForPeople": left,
        "moreReviewsNeeded": result.needed,
    }


def auto_approve(dataset: Any, config: WorkerConfig, settings: AutoApproveConfig) -> dict[str, Any]:
    """One calibration pass; returns status.review.calibration (camelCase)."""
    labels = _load(dataset, config)
    updates = _Updates(dataset, config)
    drawn = _draw(labels, settings, config.run.uid)
    if drawn:
        for label in labels:
            if label.label_id in drawn:
                updates.add(label, {"$set": {VERIFICATION_ATTRIBUTE: drawn[label.label_id]}})
        labels = [replace(label, rank=drawn.get(label.label_id, label.rank)) for label in labels]
    by_class: dict[str, list[_Label]] = defaultdict(list)
    for label in labels:
        by_class[label.label].append(label)
    rows, total_approved = [], 0
    for name in sorted(by_class):
        members = by_class[name]
        sample = [label for label in members if label.rank is not None]
        reviewed = [
            Reviewed(label.confidence, verdict)
            for label in sample
            if label.confidence is not None and (verdict := _person_verdict(label)) is not None
        ]
        result = calibrate_class(
            name,
            reviewed,
            settings.target_precision,
            settings.confidence_level,
            settings.min_reviewed_per_class,
        )
        approved = _approve(members, result.threshold, updates)
        total_approved += approved
        undecided = sum(
            1 for label in members if APPROVED_TAG not in label.tags and REJECTED_TAG not in label.tags
        )
        rows.append(_class_row(result, len(sample), approved, max(undecided - approved, 0)))
    changed = updates.send()
    if drawn:
        _save_verification_view(dataset, config)
    return {
        "targetPrecision": settings.target_precision,
        "confidenceLevel": settings.confidence_level,
        "sampleSize": sum(row["sampled"] for row in rows),
        "reviewed": sum(row["reviewed"] for row in rows),
        "autoApproved": total_approved,
        "savedView": verification_view_name(config),
        "changed": changed,
        "classes": rows,
    }


def _save_verification_view(dataset: Any, config: WorkerConfig) -> None:
    """The sample, label by label in its random order; created once, never over another's view."""
    from fiftyone import ViewField

    name = verification_view_name(config)
    if dataset.has_saved_view(name) or not claim_aid(dataset, config, f"view:{name}", existed=False):
        return  # someone's view of that name, or this run's from an earlier pass
    attribute = ViewField(VERIFICATION_ATTRIBUTE)
    view = run_view(dataset, config).filter_labels(config.staging, attribute.exists())
    if label_list_field(dataset, config.staging):
        view = view.to_patches(config.staging)
    dataset.save_view(
        name,
        view.sort_by(f"{config.staging}.{VERIFICATION_ATTRIBUTE}"),
        description=f"verification sample of AutoLabelRun {config.run.namespace}/{config.run.name}: "
        "review these first, in this order; only their decisions calibrate auto-approval",
    )


def _approve(members: Iterable[_Label], threshold: float | None, updates: _Updates) -> int:
    """Tags what `threshold` covers, takes back earlier auto-approvals it no longer covers."""
    covered = 0
    for label in members:
        eligible = (
            threshold is not None
            and label.rank is None
            and label.confidence is not None
            and label.confidence >= threshold
        )
        if label.auto_threshold is not None:
            if eligible:
                covered += 1
                if label.auto_threshold != threshold:
                    updates.add(label, {"$set": {AUTO_APPROVED_ATTRIBUTE: threshold}})
            else:
                updates.add(label, {"$pull": {"tags": APPROVED_TAG}, "$unset": {AUTO_APPROVED_ATTRIBUTE: ""}})
            continue
        if eligible and APPROVED_TAG not in label.tags and REJECTED_TAG not in label.tags:
            covered += 1
            # Only if no one decided the label since it was read: a person's tag is never claimed.
            updates.add(
                label,
                {"$addToSet": {"tags": APPROVED_TAG}, "$set": {AUTO_APPROVED_ATTRIBUTE: threshold}},
                where={"tags": {"$nin": [APPROVED_TAG, REJECTED_TAG]}},
            )
    return covered
