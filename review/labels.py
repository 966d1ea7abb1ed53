"""A run's predictions as review reads them: its samples, its label paths, every label in one query."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contract.review import APPROVED_TAG, DECISION_ATTRIBUTE, REJECTED_TAG
from contract.worker import WorkerConfig

MASK_CLASS = "mask"
"""Class name reported for segmentation masks (they carry no class of their own)."""


@dataclass(frozen=True)
class LabelRecord:
    """One predicted label of the run, as read in bulk."""

    sample_id: str
    label_id: str
    label: str
    confidence: float | None
    tags: tuple[str, ...]
    decision: str | None

    @property
    def approved(self) -> bool:
        return APPROVED_TAG in self.tags and REJECTED_TAG not in self.tags

    @property
    def rejected(self) -> bool:
        return REJECTED_TAG in self.tags


def run_view(dataset: Any, config: WorkerConfig) -> Any:
    """The samples this run processed (marker field holds the run's uid)."""
    from fiftyone import ViewField

    if not dataset.has_sample_field(config.marker_field):
        return dataset.limit(0)
    return dataset.match(ViewField(config.marker_field) == config.run.uid)


def label_list_field(dataset: Any, field: str) -> str | None:
    """The list attribute of a label-list field (``detections``), or None for a single label."""
    schema = dataset.get_field_schema()
    document_type = getattr(schema.get(field), "document_type", None)
    list_field = getattr(document_type, "_LABEL_LIST_FIELD", None) if document_type else None
    return str(list_field) if list_field else None


def label_path(dataset: Any, field: str) -> str:
    """``field.detections`` for label lists, ``field`` for single labels."""
    list_field = label_list_field(dataset, field)
    return f"{field}.{list_field}" if list_field else field


def _rows(value: Any, is_list: bool) -> Iterator[Any]:
    """One entry per label: a list field's items, or the single value (None included, kept aligned)."""
    if is_list:
        yield from value or []
    else:
        yield value


def load_labels(dataset: Any, config: WorkerConfig) -> list[LabelRecord]:
    """Every label of the run in the staging field, in one bulk query."""
    if not dataset.has_sample_field(config.staging):
        return []
    is_list = label_list_field(dataset, config.staging) is not None
    path = label_path(dataset, config.staging)
    columns = [f"{path}.{name}" for name in ("id", "label", "confidence", "tags", DECISION_ATTRIBUTE)]
    sample_ids, *values = run_view(dataset, config).values(["id", *columns])
    records = []
    for index, sample_id in enumerate(sample_ids):
        per_column = [list(_rows(column[index], is_list)) for column in values]
        for label_id, label, confidence, tags, decision in zip(*per_column, strict=True):
            if label_id is None:
                continue
            records.append(
                LabelRecord(
                    sample_id=str(sample_id),
                    label_id=str(label_id),
                    label=str(label) if label is not None else MASK_CLASS,
                    confidence=float(confidence) if confidence is not None else None,
                    tags=tuple(tags or ()),
                    decision=decision,
                )
            )
    return records
