"""Mask PNGs of a run (``<maskDir>/<run uid>/<sample id>.png``): written, removed once unreferenced.

``maskDir`` is a directory or an ``s3://bucket/prefix`` URL. A file is written
to a partial name and renamed; an object is one PUT, which S3 makes visible
whole or not at all. Either way the label that references a mask is written
only after the mask exists.

Finalize and discard call `remove_unreferenced_masks` after the dataset no longer
holds the labels they removed: the set of masks to keep is read from the dataset
each time (every segmentation field's ``mask_path``), so a kill at any point is
repaired by running the command again, and a mask is never deleted while a kept
label points at it. Only the run's own directory (or key prefix) is looked at.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy.typing as npt

from contract.worker import WorkerConfig, is_object_url
from runtime.durable import retried
from runtime.storage import ObjectStore

LOG = logging.getLogger(__name__)


def run_mask_dir(config: WorkerConfig) -> str | None:
    """The run's own mask directory or key prefix (no trailing slash), or None without a maskDir."""
    if not config.mask_dir:
        return None
    return f"{config.mask_dir.rstrip('/')}/{config.run.uid}"


def _normal(path: str) -> str:
    return path if is_object_url(path) else os.path.normpath(path)


class MaskStore:
    """Writes the run's mask PNGs under its mask directory or key prefix."""

    def __init__(self, config: WorkerConfig, store: ObjectStore | None = None) -> None:
        self.directory = run_mask_dir(config)
        self.store = store or ObjectStore(config.object_store)

    def save_all(self, masks: Mapping[str, npt.NDArray[Any]]) -> dict[str, str]:
        """`save` for each (sample id, mask); objects are PUT ``objectStore.fetchConcurrency`` at a time."""
        if not masks:
            return {}
        if self.directory is None or not is_object_url(self.directory) or len(masks) == 1:
            return {sample_id: self.save(sample_id, mask) for sample_id, mask in masks.items()}
        workers = min(len(masks), self.store.config.fetch_concurrency)
        with ThreadPoolExecutor(workers, thread_name_prefix="mask-put") as pool:
            saved = pool.map(lambda item: (item[0], self.save(*item)), masks.items())
            return dict(saved)

    def save(self, sample_id: str, mask: npt.NDArray[Any]) -> str:
        """The mask as a PNG at ``<run dir>/<sample id>.png``; returns its path or URL once it exists."""
        from PIL import Image

        assert self.directory is not None
        location = f"{self.directory}/{sample_id}.png"
        if is_object_url(location):
            buffer = io.BytesIO()
            Image.fromarray(mask).save(buffer, format="PNG")
            self.store.put(location, buffer.getvalue(), "image/png")
            return location
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial_path = path.with_suffix(".png.partial")
        Image.fromarray(mask).save(partial_path, format="PNG")
        partial_path.replace(path)  # atomic: a killed worker never leaves a half-written mask behind
        return str(path)


def referenced_masks(dataset: Any, config: WorkerConfig) -> set[str]:
    """Normalised mask paths (and URLs) that a segmentation label of any field of the dataset holds."""
    import fiftyone.core.labels as fol

    dataset.reload()
    paths: set[str] = set()
    for name, field in dataset.get_field_schema().items():
        if getattr(field, "document_type", None) is not fol.Segmentation:
            continue
        distinct = partial(dataset.distinct, f"{name}.mask_path")
        values = retried("reading mask paths", config.database, distinct)
        paths.update(_normal(value) for value in values if value)
    return paths


def remove_unreferenced_masks(dataset: Any, config: WorkerConfig) -> int:
    """Deletes the run's masks (and partial writes) that no label references; returns how many."""
    directory = run_mask_dir(config)
    if directory is None:
        return 0
    if is_object_url(directory):
        return _remove_objects(dataset, config, directory)
    local = Path(directory)
    if not local.is_dir():
        return 0
    keep = referenced_masks(dataset, config)
    removed = 0
    for path in local.iterdir():
        if path.is_file() and os.path.normpath(path) not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    if not any(local.iterdir()):
        local.rmdir()
    LOG.info("removed %d mask files of run %s", removed, config.run.uid)
    return removed


def _remove_objects(dataset: Any, config: WorkerConfig, prefix: str) -> int:
    """The same for a key prefix: list the run's objects, delete those no label references."""
    store = ObjectStore(config.object_store)
    keep = referenced_masks(dataset, config)
    unreferenced = [url for url in store.list(f"{prefix}/") if url not in keep]
    store.delete(unreferenced)
    LOG.info("removed %d mask objects of run %s under %s", len(unreferenced), config.run.uid, prefix)
    return len(unreferenced)
