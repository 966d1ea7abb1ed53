"""Mask PNGs of a run (``<maskDir>/<run uid>/<sample id>.png``) that no label references any more.

Finalize and discard call `remove_unreferenced_masks` after the dataset no longer
holds the labels they removed: the set of files to keep is read from the dataset
each time (every segmentation field's ``mask_path``), so a kill at any point is
repaired by running the command again, and a file is never deleted while a kept
label points at it. Only the run's own directory is looked at.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Any

from inference.config import WorkerConfig
from inference.durable import retried

LOG = logging.getLogger(__name__)


def run_mask_dir(config: WorkerConfig) -> Path | None:
    return Path(config.mask_dir) / config.run.uid if config.mask_dir else None


def referenced_masks(dataset: Any, config: WorkerConfig) -> set[str]:
    """Normalised mask paths that a segmentation label of any field of the dataset holds."""
    import fiftyone.core.labels as fol

    dataset.reload()
    paths: set[str] = set()
    for name, field in dataset.get_field_schema().items():
        if getattr(field, "document_type", None) is not fol.Segmentation:
            continue
        distinct = partial(dataset.distinct, f"{name}.mask_path")
        values = retried("reading mask paths", config.database, distinct)
        paths.update(os.path.normpath(value) for value in values if value)
    return paths


def remove_unreferenced_masks(dataset: Any, config: WorkerConfig) -> int:
    """Deletes the run's mask files (and partial writes) that no label references; returns how many."""
    directory = run_mask_dir(config)
    if directory is None or not directory.is_dir():
        return 0
    keep = referenced_masks(dataset, config)
    removed = 0
    for path in directory.iterdir():
        if path.is_file() and os.path.normpath(path) not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    if not any(directory.iterdir()):
        directory.rmdir()
    LOG.info("removed %d mask files of run %s", removed, config.run.uid)
    return removed
