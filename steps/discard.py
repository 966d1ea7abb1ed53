"""`python -m worker discard`: remove a run's staged predictions and markers from its dataset.

Only what this run wrote goes, with the durable write concern: values are
unset on the samples whose marker names this run's uid (the embeddings too
when the run created that field; embeddings in a field that existed before the
run stay), a fresh count must find none of the run's markers left, the run's
mask files that no label references are deleted, and the staging, marker and
embeddings fields are dropped from the schema only when the run created them
(its field claim says so) and no value remains. Then the run's claims are
released. Running it twice gives the same dataset. Prints `{"removed": <labels>}`.
"""

from __future__ import annotations

from typing import Any

from contract.worker import WorkerConfig


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

    from runtime.claims import created_by_run, release, run_fields
    from runtime.masks import remove_unreferenced_masks
    from steps.run_values import drop_created_fields, unset_run_values

    if not fo.dataset_exists(config.dataset):
        return {"removed": 0}
    dataset = fo.load_dataset(config.dataset)
    marker = config.marker_field
    removed = 0
    if dataset.has_sample_field(marker):
        removed = _label_count(dataset.match(ViewField(marker) == config.run.uid), config.staging)
    embeddings = config.embeddings.field if config.embeddings else None
    fields = [config.staging, marker]
    if embeddings and created_by_run(dataset, config, embeddings):
        fields.append(embeddings)
    unset_run_values(dataset, config, fields)
    dataset.reload()
    remove_unreferenced_masks(dataset, config)
    drop_created_fields(dataset, config, fields)
    release(dataset, config, [field.name for field in run_fields(config)])
    return {"removed": removed}
