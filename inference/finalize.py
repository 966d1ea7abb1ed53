"""`python -m inference finalize`: keep the run's approved labels in labelField, remove everything else.

Crash-safe and idempotent, in two steps recorded in ``dataset.info``:

1. **promote**: for every sample of the run, the labelField value is computed
   from the staging value alone (approved labels only, same label and container
   ids, tags and attributes kept; None when nothing was approved) and written
   with ``set_values``, in batches. Rerunning rewrites the same values, so a kill
   in the middle is repaired by running again. When all batches are written,
   the counts go to ``dataset.info["autolabel_finalized"][<run uid>]``; from then
   on promote is never redone (the staging field may already be gone).
2. **remove**: the run's saved views and brain run are deleted, then the staging
   and marker fields are unset on every sample (a raw ``$unset``, repeated
   on rerun, so a kill inside FiftyOne's own field deletion leaves nothing
   behind) and dropped from the schema.

Labels in other fields, and the embeddings field, are never touched. Prints
``{"promoted": n, "discarded": m}``. ``AUTOLABEL_FINALIZE_PAUSE_S`` (tests
only) sleeps after each batch and step, so a test can kill it mid-way.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from inference.config import WorkerConfig
from inference.review import (
    ReviewConfig,
    apply_rules,
    label_list_field,
    load_labels,
    run_view,
)
from inference.review_aids import remove_aids

INFO_KEY = "autolabel_finalized"
PAUSE_ENV = "AUTOLABEL_FINALIZE_PAUSE_S"
log = logging.getLogger("autolabel.finalize")


def _step(message: str) -> None:
    """Progress on stderr (tests wait for these lines), then the optional test pause."""
    print(f"finalize: {message}", file=sys.stderr, flush=True)
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    if pause:
        time.sleep(pause)


def _keep(label: Any) -> bool:
    tags = label.tags or []
    return "autolabel:approved" in tags and "autolabel:rejected" not in tags


def _promoted_value(value: Any, list_field: str | None) -> Any:
    """The labelField value for one sample: the staging value with only its approved labels."""
    if value is None:
        return None
    if list_field is None:
        return value if _keep(value) else None
    kept = [label for label in getattr(value, list_field) or [] if _keep(label)]
    if not kept:
        return None
    setattr(value, list_field, kept)
    return value


def _ensure_label_field(dataset: Any, config: WorkerConfig) -> None:
    """Declares labelField with the staging field's label type (even when no sample gets a label)."""
    import fiftyone as fo

    if dataset.has_sample_field(config.label_field):
        return
    staging = dataset.get_field_schema()[config.staging]
    dataset.add_sample_field(
        config.label_field, fo.EmbeddedDocumentField, embedded_doc_type=staging.document_type
    )


def _promote(dataset: Any, config: WorkerConfig, batch_size: int) -> dict[str, int]:
    records = load_labels(dataset, config)
    promoted = sum(1 for r in records if r.approved)
    counts = {"promoted": promoted, "discarded": len(records) - promoted}
    if not dataset.has_sample_field(config.staging):
        return counts
    _ensure_label_field(dataset, config)
    list_field = label_list_field(dataset, config.staging)
    sample_ids = run_view(dataset, config).values("id")
    for start in range(0, len(sample_ids), batch_size):
        batch = sample_ids[start : start + batch_size]
        ids, values = dataset.select(batch).values(["id", config.staging])
        promoted_values = {
            sample_id: _promoted_value(value, list_field)
            for sample_id, value in zip(ids, values, strict=True)
        }
        dataset.set_values(config.label_field, promoted_values, key_field="id")
        _step(f"promoted batch {start // batch_size + 1}")
    return counts


def _remove(dataset: Any, config: WorkerConfig) -> None:
    remove_aids(dataset, config)
    _step("removed review aids")
    fields = [config.staging, config.marker_field]
    # Raw $unset first: idempotent, and it also clears values left behind by a delete killed half-way.
    dataset._sample_collection.update_many({}, {"$unset": {field: "" for field in fields}})
    _step("unset staging values")
    present = [field for field in fields if dataset.has_sample_field(field)]
    if present:
        dataset.delete_sample_fields(present)
    _step("dropped staging fields")


def finalize(
    config: WorkerConfig, review: ReviewConfig | None = None, batch_size: int = 1000
) -> dict[str, int]:
    """Promote approved labels (applying `review`'s rules first when given), then remove the rest."""
    import fiftyone as fo

    if not fo.dataset_exists(config.dataset):
        raise RuntimeError(f"dataset {config.dataset!r} does not exist")
    dataset = fo.load_dataset(config.dataset)
    done = (dataset.info.get(INFO_KEY) or {}).get(config.run.uid)
    if done is None:
        if review is not None and dataset.has_sample_field(config.staging):
            apply_rules(dataset, config, review)
            _step("applied rules")
        counts = _promote(dataset, config, batch_size)
        dataset.info[INFO_KEY] = {**(dataset.info.get(INFO_KEY) or {}), config.run.uid: counts}
        dataset.save()
        _step("recorded promotion")
    else:
        counts = {"promoted": int(done["promoted"]), "discarded": int(done["discarded"])}
    _remove(dataset, config)
    return counts
