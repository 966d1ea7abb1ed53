"""`python -m worker finalize`: keep the run's approved labels in labelField, remove everything else.

Crash-safe and idempotent, in two steps; every write goes with the durable
write concern (`runtime.durable`) and is limited to the run's own samples
(marker field == the run's uid):

1. **promote**: labelField is claimed by the run (a field that existed before
   the run, or that another run holds, is refused: finalize writes only into a
   field it created) and declared with one atomic push. For every sample of the
   run, the labelField value is computed from the staging value alone
   (approved labels only, same label and container ids, tags and attributes
   kept; None when nothing was approved) and written in batches. Then the
   result is verified by reading it back: samples whose labelField does not
   hold exactly their approved labels are written again (bounded passes), and
   only then the counts go to ``dataset.info["autolabel_finalized"][<run uid>]``
   (one atomic ``$set``, not a save of the dataset document); from then on
   promote is never redone (the staging field may already be gone).
2. **remove**: the run's review aids are deleted, the staging and marker values
   are unset on the run's samples (repeated on rerun) and checked gone, the
   run's mask files that no label references any more are deleted, the staging
   and marker fields are dropped from the schema when the run created them and
   no value is left, and the run's field claims are released.

Labels in other fields, and the embeddings field, are never touched. Prints
``{"promoted": n, "discarded": m}``, and a line on stderr after each batch and step.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from contract.review import (
    APPROVED_BY_ATTRIBUTE,
    APPROVED_TAG,
    DECISION_ATTRIBUTE,
    REJECTED_TAG,
    Decision,
    ReviewConfig,
)
from contract.worker import WorkerConfig
from review.aids import remove_aids
from review.auto_approve import AUTO_APPROVED_ATTRIBUTE
from review.decisions import apply_rules
from review.labels import label_list_field, load_labels, run_view
from runtime.claims import FieldTaken, RunField, claim, declare, release, run_fields
from runtime.durable import database, retried, samples
from runtime.errors import FatalError
from runtime.masks import remove_unreferenced_masks
from steps.run_values import drop_created_fields, unset_run_values

INFO_KEY = "autolabel_finalized"
VERIFY_PASSES = 3
log = logging.getLogger("autolabel.finalize")


def _step(message: str) -> None:
    """Progress on stderr, after each batch and step."""
    print(f"finalize: {message}", file=sys.stderr, flush=True)


def _keep(label: Any) -> bool:
    tags = label.tags or []
    return APPROVED_TAG in tags and REJECTED_TAG not in tags


def approved_by(label: Any) -> str:
    """Who approved a kept label: ``calibration``, a spec ``rule`` (Git or the CLI) or a ``person``."""
    if label.has_field(AUTO_APPROVED_ATTRIBUTE) and label.get_field(AUTO_APPROVED_ATTRIBUTE) is not None:
        return "calibration"
    if label.has_field(DECISION_ATTRIBUTE) and label.get_field(DECISION_ATTRIBUTE) == Decision.APPROVED:
        return "rule"
    return "person"


def _with_provenance(label: Any) -> Any:
    label.set_field(APPROVED_BY_ATTRIBUTE, approved_by(label), create=True)
    return label


def _promoted_value(value: Any, list_field: str | None) -> Any:
    """The labelField value for one sample: the staging value with only its approved labels.

    Each kept label records who approved it (`APPROVED_BY_ATTRIBUTE`); the run's uid is
    already on it (``autolabel_run``), so an audit can tell model- from person-approved labels.
    """
    if value is None:
        return None
    if list_field is None:
        return _with_provenance(value) if _keep(value) else None
    kept = [_with_provenance(label) for label in getattr(value, list_field) or [] if _keep(label)]
    if not kept:
        return None
    setattr(value, list_field, kept)
    return value


def _ensure_label_field(dataset: Any, config: WorkerConfig) -> None:
    """Claims labelField (it must be new, or this run's own) and declares it with one atomic push."""
    from runtime.claims import holder_of

    field = RunField(config.label_field, "label")
    created = claim(dataset, config, [field])
    holder = holder_of(dataset, config, config.label_field) or {}
    if not created[config.label_field] or (
        dataset.has_sample_field(config.label_field) and not holder.get("declared")
    ):
        raise FieldTaken(
            f"labelField {config.label_field!r} existed in dataset {config.dataset!r} before run "
            f"{config.run.namespace}/{config.run.name}; finalize writes only into a field the run created"
        )
    declare(dataset, config, [field])


def _approved_ids(value: Any, list_field: str | None) -> list[str]:
    if value is None:
        return []
    labels = (getattr(value, list_field) or []) if list_field else [value]
    return sorted(label.id for label in labels)


def _write_promoted(dataset: Any, config: WorkerConfig, batch: list[str], list_field: str | None) -> None:
    from bson import ObjectId
    from pymongo import UpdateOne

    field = dataset.get_field(config.staging)
    ids, values = retried(
        "reading staged labels",
        config.database,
        lambda: dataset.select(batch).values(["id", config.staging]),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    operations = []
    for sample_id, value in zip(ids, values, strict=True):
        promoted = _promoted_value(value, list_field)
        operations.append(
            UpdateOne(
                {"_id": ObjectId(sample_id), config.marker_field: config.run.uid},
                {
                    "$set": {
                        config.label_field: None if promoted is None else field.to_mongo(promoted),
                        "last_modified_at": now,
                    }
                },
            )
        )
    if operations:
        collection = samples(dataset, config.database)
        retried(
            "writing promoted labels",
            config.database,
            lambda: collection.bulk_write(operations, ordered=False),
        )


def _unpromoted(
    dataset: Any, config: WorkerConfig, sample_ids: list[str], list_field: str | None
) -> list[str]:
    """The run's samples whose labelField (read now) does not hold exactly their approved labels."""
    ids, staged, promoted = retried(
        "reading promoted labels",
        config.database,
        lambda: dataset.select(sample_ids).values(["id", config.staging, config.label_field]),
    )
    return [
        sample_id
        for sample_id, value, stored in zip(ids, staged, promoted, strict=True)
        if _approved_ids(_promoted_value(value, list_field), list_field) != _approved_ids(stored, list_field)
    ]


def _promote(dataset: Any, config: WorkerConfig, batch_size: int) -> dict[str, int]:
    records = load_labels(dataset, config)
    promoted = sum(1 for r in records if r.approved)
    counts = {"promoted": promoted, "discarded": len(records) - promoted}
    if not dataset.has_sample_field(config.staging):
        return counts
    _ensure_label_field(dataset, config)
    list_field = label_list_field(dataset, config.staging)
    sample_ids: list[str] = run_view(dataset, config).values("id")
    pending = sample_ids
    for attempt in range(1, VERIFY_PASSES + 1):
        for start in range(0, len(pending), batch_size):
            _write_promoted(dataset, config, pending[start : start + batch_size], list_field)
            _step(f"promoted batch {start // batch_size + 1}")
        pending = _unpromoted(dataset, config, sample_ids, list_field)
        if not pending:
            return counts
        log.warning("verification pass %d: %d samples lack their promoted labels", attempt, len(pending))
    raise FatalError(
        f"{len(pending)} samples of dataset {config.dataset!r} do not hold their approved labels in "
        f"{config.label_field!r} after {VERIFY_PASSES} passes; nothing was recorded, run finalize again"
    )


def _recorded(dataset: Any, config: WorkerConfig) -> dict[str, Any] | None:
    """The completion record of this run, read now from the database."""
    document = retried(
        "reading the finalize record",
        config.database,
        lambda: database(config.database).datasets.find_one({"_id": dataset._doc.id}, {"info": 1}),
    )
    record = ((document or {}).get("info") or {}).get(INFO_KEY) or {}
    done: dict[str, Any] | None = record.get(config.run.uid)
    return done


def _record(dataset: Any, config: WorkerConfig, counts: dict[str, int]) -> None:
    datasets = database(config.database).datasets
    retried(
        "recording the promotion",
        config.database,
        lambda: datasets.update_one(
            {"_id": dataset._doc.id}, {"$set": {f"info.{INFO_KEY}.{config.run.uid}": counts}}
        ),
    )
    if _recorded(dataset, config) != counts:
        raise FatalError(
            f"the finalize record of dataset {config.dataset!r} did not persist; run finalize again"
        )


def _remove(dataset: Any, config: WorkerConfig) -> None:
    remove_aids(dataset, config)
    _step("removed review aids")
    unset_run_values(dataset, config, [config.staging, config.marker_field])
    _step("unset staging values")
    dataset.reload()
    remove_unreferenced_masks(dataset, config)
    drop_created_fields(dataset, config, [config.staging, config.marker_field])
    _step("dropped staging fields")
    release(dataset, config, [field.name for field in run_fields(config)])


def finalize(
    config: WorkerConfig, review: ReviewConfig | None = None, batch_size: int = 1000
) -> dict[str, int]:
    """Promote approved labels (applying `review`'s rules first when given), then remove the rest."""
    import fiftyone as fo

    if not fo.dataset_exists(config.dataset):
        raise RuntimeError(f"dataset {config.dataset!r} does not exist")
    dataset = fo.load_dataset(config.dataset)
    done = _recorded(dataset, config)
    if done is None:
        if review is not None and dataset.has_sample_field(config.staging):
            apply_rules(dataset, config, review)
            _step("applied rules")
        counts = _promote(dataset, config, batch_size)
        _record(dataset, config, counts)
        _step("recorded promotion")
    else:
        counts = {"promoted": int(done["promoted"]), "discarded": int(done["discarded"])}
    _remove(dataset, config)
    return counts
