"""`python -m inference discard`: remove a run's staged predictions and markers from its dataset.

Only what this run wrote goes: values are cleared on the samples whose marker
names this run's uid, and the staging, marker and embeddings fields are
dropped from the schema only when no other run's values remain in them.
Running it twice gives the same dataset. Prints `{"removed": <labels>}`.
"""

from __future__ import annotations

from typing import Any

from inference.config import WorkerConfig


def _label_count(view: Any, field: str) -> int:
    schema = view.get_field_schema()
    if field not in schema:
        return 0
    document_type = getattr(schema[field], "document_type", None)
    list_field = getattr(document_type, "_LABEL_LIST_FIELD", None) if document_type else None
    if list_field:
        return int(view.count(f"{field}.{list_field}"))
    return int(view.count(field))


def discard(config: WorkerConfig) -> dict[str, int]:
    import fiftyone as fo
    from fiftyone import ViewField

    if not fo.dataset_exists(config.dataset):
        return {"removed": 0}
    dataset = fo.load_dataset(config.dataset)
    marker = config.marker_field
    if not dataset.has_sample_field(marker):
        return {"removed": 0}
    fields = [
        f
        for f in (config.staging, config.model.embeddings.field if config.model.embeddings else None)
        if f and dataset.has_sample_field(f)
    ]
    ours = dataset.match(ViewField(marker) == config.run.uid)
    removed = _label_count(ours, config.staging)
    others = dataset.exists(marker).match(ViewField(marker) != config.run.uid).count()
    if others == 0:
        for field in [*fields, marker]:
            dataset.delete_sample_field(field)
    else:
        for field in [*fields, marker]:
            ours.set_field(field, None).save(field)
    return {"removed": removed}
