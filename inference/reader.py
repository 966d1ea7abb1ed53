"""Reading the shard's work from FiftyOne: target sample IDs, what is already done, and filepaths in pages.

Only IDs and filepaths are read, a page at a time, so memory stays flat however
large the shard is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from inference.config import Target
from inference.errors import FatalError
from inference.view_guard import check_saved_view


def load_dataset(name: str) -> Any:
    """The FiftyOne dataset, or a FatalError naming it."""
    import fiftyone as fo

    if not fo.dataset_exists(name):
        raise FatalError(f"dataset {name!r} does not exist in the FiftyOne database")
    return fo.load_dataset(name)


def target_view(dataset: Any, target: Target) -> Any:
    """The samples the run labels."""
    if target.view is not None:
        if not dataset.has_saved_view(target.view):
            raise FatalError(f"dataset {dataset.name!r} has no saved view {target.view!r}")
        check_saved_view(dataset, target.view)
        return dataset.load_saved_view(target.view)
    if target.tags is not None:
        return dataset.match_tags(target.tags)
    if target.sample_ids is not None:
        return dataset.select(target.sample_ids)
    return dataset


def target_ids(dataset: Any, target: Target) -> list[str]:
    ids: list[str] = target_view(dataset, target).values("id")
    return ids


def done_ids(dataset: Any, sample_ids: Sequence[str], marker_field: str, run_uid: str) -> set[str]:
    """The IDs among ``sample_ids`` whose marker says this run already wrote their prediction."""
    from fiftyone import ViewField

    if not dataset.has_sample_field(marker_field):
        return set()
    done: set[str] = set()
    for start in range(0, len(sample_ids), 10000):
        page = list(sample_ids[start : start + 10000])
        view = dataset.select(page).match(ViewField(marker_field) == run_uid)
        done.update(view.values("id"))
    return done


def filepath_pages(
    dataset: Any, sample_ids: Sequence[str], page_size: int
) -> Iterator[list[tuple[str, str]]]:
    """(id, filepath) pairs in the order of ``sample_ids``, ``page_size`` at a time."""
    for start in range(0, len(sample_ids), page_size):
        yield filepath_page(dataset, sample_ids[start : start + page_size])


def filepath_page(dataset: Any, sample_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(id, filepath) pairs of ``sample_ids`` that still exist, in their order (one query)."""
    page = list(sample_ids)
    ids, paths = dataset.select(page).values(["id", "filepath"])
    by_id = dict(zip(ids, paths, strict=True))
    return [(sample_id, by_id[sample_id]) for sample_id in page if sample_id in by_id]
