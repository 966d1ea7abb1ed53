"""Decisions on one run's labels: the decision tags, rule application and review statistics.

Every approval channel ends as a **label tag** on the run's predictions in the
staging field (``<labelField>_in_review``):

- ``autolabel:approved``: the label is kept by finalize;
- ``autolabel:rejected``: the label is dropped by finalize (rejected wins when both are present).

The ``autolabel:`` prefix keeps them apart from reviewers' own tags (the problem
tags such as ``false_positive`` are ordinary label tags and are only counted).
A FiftyOne App user tags labels in the run's saved views; ``spec.review``
rules are applied by `apply_rules`, which also records on each label it tagged
the attribute ``autolabel_decision`` (``approved`` / ``rejected``), so a later
spec (a rule removed, ``autolabel undo``) takes back exactly the tags rules set
and never a tag set by hand: a label that already holds the tag a rule decides
(a person set it) is left as it is, and the rule records nothing on it.
Everything here reads the dataset in one bulk ``values()`` query; rules write with
per-label update operators (`$addToSet`, `$pull`), never a whole tags list, so they
cannot undo a reviewer's concurrent edit.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne

from contract.review import (
    DECISION_ATTRIBUTE,
    DECISION_TAGS,
    Decision,
    ReviewConfig,
)
from contract.worker import WorkerConfig
from review.labels import LabelRecord, label_list_field, label_path, load_labels
from review.quality import quality
from runtime.durable import retried, samples

_WRITE_BATCH = 1000
"""Label updates sent to the database at once by `apply_rules`."""


def _decision_ops(
    record: LabelRecord, wanted: str | None, config: WorkerConfig, path: str, is_list: bool, now: datetime
) -> list[Any]:
    """The atomic updates moving one label from its rule decision to `wanted`, touching no other tag.

    `$pull`/`$addToSet` on the label's own tags (found by `arrayFilters` in a label list),
    so a tag a reviewer adds or removes meanwhile is never overwritten. The rules' old tag
    is pulled (and the decision cleared) first; the new tag is added, and the decision
    recorded, only where the label does not hold that tag already at the moment of the
    write: a tag a person set stays theirs, and no later change of the rules takes it back.
    An interrupted switch is redone by the next pass.
    """
    old_tag = DECISION_TAGS[record.decision] if record.decision is not None else None
    new_tag = DECISION_TAGS[wanted] if wanted is not None else None
    ops = []
    if old_tag is not None:
        pull: dict[str, dict[str, Any]] = {"$pull": {"tags": old_tag}, "$set": {DECISION_ATTRIBUTE: None}}
        ops.append(_label_update(record, config, path, is_list, pull, {}, now))
    if new_tag is not None:
        add: dict[str, dict[str, Any]] = {
            "$addToSet": {"tags": new_tag},
            "$set": {DECISION_ATTRIBUTE: wanted},
        }
        absent = {"tags": {"$ne": new_tag}}
        ops.append(_label_update(record, config, path, is_list, add, absent, now))
    return ops


def _label_update(
    record: LabelRecord,
    config: WorkerConfig,
    path: str,
    is_list: bool,
    update: dict[str, dict[str, Any]],
    where: dict[str, Any],
    now: datetime,
) -> UpdateOne:
    """One update of one label of the run: `update` and `where` name the label's own attributes."""
    match: dict[str, Any] = {"_id": ObjectId(record.sample_id), config.marker_field: config.run.uid}
    if is_list:
        label = f"{path}.$[label]"
        condition = {"label._id": ObjectId(record.label_id), **{f"label.{k}": v for k, v in where.items()}}
        options: dict[str, Any] = {"array_filters": [condition]}
    else:
        label = path
        match[f"{path}._id"] = ObjectId(record.label_id)
        match.update({f"{path}.{k}": v for k, v in where.items()})
        options = {}
    operators = {op: {f"{label}.{k}": v for k, v in body.items()} for op, body in update.items()}
    operators.setdefault("$set", {})["last_modified_at"] = now
    return UpdateOne(match, operators, **options)


def _unchanged(record: LabelRecord, wanted: str | None) -> bool:
    """The rules' decision is what the label shows: recorded by them, or a person's tag that agrees."""
    if wanted == record.decision:
        return True
    return record.decision is None and wanted is not None and DECISION_TAGS[wanted] in record.tags


def _ensure_tag_lists(dataset: Any, config: WorkerConfig, path: str, is_list: bool) -> None:
    """Give this run's labels without a tags list an empty one (`$addToSet` refuses a missing list)."""
    collection = samples(dataset, config.database)
    run_samples = {config.marker_field: config.run.uid}
    if is_list:
        update = partial(
            collection.update_many,
            {**run_samples, path: {"$elemMatch": {"tags": None}}},
            {"$set": {f"{path}.$[label].tags": []}},
            array_filters=[{"label.tags": None}],
        )
    else:
        update = partial(
            collection.update_many,
            {**run_samples, path: {"$ne": None}, f"{path}.tags": None},
            {"$set": {f"{path}.tags": []}},
        )
    retried("giving labels a tags list", config.database, update)


def apply_rules(dataset: Any, config: WorkerConfig, review: ReviewConfig) -> dict[str, int]:
    """Tag the run's labels per the rules; take back tags of labels the rules no longer decide.

    Only the decision tags are added or removed, label by label, with update operators on
    the run's own samples: a reviewer tagging in the App at the same time keeps every tag.
    Idempotent: a second call with the same rules writes nothing.
    """
    records = load_labels(dataset, config)
    changes = [(record, review.decide(record.label, record.confidence)) for record in records]
    changes = [(record, wanted) for record, wanted in changes if not _unchanged(record, wanted)]
    if changes:
        import fiftyone as fo

        is_list = label_list_field(dataset, config.staging) is not None
        path = label_path(dataset, config.staging)
        if not dataset.has_field(f"{path}.{DECISION_ATTRIBUTE}"):
            dataset.add_sample_field(f"{path}.{DECISION_ATTRIBUTE}", fo.StringField)
        _ensure_tag_lists(dataset, config, path, is_list)
        now = datetime.now(UTC).replace(tzinfo=None)  # FiftyOne stores naive UTC times
        ops = [
            op
            for record, wanted in changes
            for op in _decision_ops(record, wanted, config, path, is_list, now)
        ]
        # Durable and retried whatever process applies them (the review agent too): each batch's
        # $pull/$addToSet/$set are idempotent, so a batch sent again after a lost answer doubles nothing.
        collection = samples(dataset, config.database)
        for start in range(0, len(ops), _WRITE_BATCH):
            batch = ops[start : start + _WRITE_BATCH]
            write = partial(collection.bulk_write, batch, ordered=True)
            retried("tagging labels per the rules", config.database, write)
    decided = [review.decide(r.label, r.confidence) for r in records]
    return {
        "changed": len(changes),
        "approved": decided.count(Decision.APPROVED),
        "rejected": decided.count(Decision.REJECTED),
    }


def statistics(records: list[LabelRecord], problem_tags: list[str]) -> dict[str, Any]:
    """Totals, per-class numbers and problem-tag counts (status.review's shape, camelCase)."""
    per_class: dict[str, list[LabelRecord]] = defaultdict(list)
    for record in records:
        per_class[record.label].append(record)
    classes = []
    for name in sorted(per_class):
        members = per_class[name]
        confidences = [r.confidence for r in members if r.confidence is not None]
        classes.append(
            {
                "name": name,
                "count": len(members),
                "meanConfidence": (
                    min(1.0, max(0.0, sum(confidences) / len(confidences))) if confidences else None
                ),
                "approved": sum(1 for r in members if r.approved),
                "rejected": sum(1 for r in members if r.rejected),
            }
        )
    approved = sum(1 for r in records if r.approved)
    rejected = sum(1 for r in records if r.rejected)
    return {
        "total": len(records),
        "approved": approved,
        "rejected": rejected,
        "unreviewed": len(records) - approved - rejected,
        "classes": classes,
        "problemTags": {tag: sum(1 for r in records if tag in r.tags) for tag in problem_tags},
    }


def review_stats(dataset: Any, config: WorkerConfig, review: ReviewConfig) -> dict[str, Any]:
    """`statistics` of the run's labels, plus quality against ground truth when configured."""
    stats = statistics(load_labels(dataset, config), list(review.problem_tags))
    if review.ground_truth_field:
        stats["quality"] = quality(dataset, config, review)
    return stats
