"""Reading the shard's work from FiftyOne: the shard's sample IDs, what is already done, filepaths in pages.

The shard's IDs and the IDs this run already marked are selected by the
database (`inference.partition.shard_expression` in the query) and streamed
into a compact `ShardIds`; filepaths are read a page at a time. So a shard's
memory and start-up grow with the shard, never with the dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from contract.worker import Target
from inference.partition import ShardIds, shard_expression, shard_of
from runtime.errors import FatalError
from runtime.view_guard import check_saved_view

LOG = logging.getLogger(__name__)
INVALID_PIPELINE_OPERATOR = 168  # the server error for an unknown aggregation expression


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


def _stream_ids(collection: Any, stages: list[dict[str, Any]]) -> ShardIds:
    """The ``_id`` of every document of ``collection`` (dataset or view) after ``stages``, in raw batches."""
    pipeline = collection._pipeline(post_pipeline=[*stages, {"$project": {"_id": 1}}])
    samples = collection._dataset._sample_collection
    return ShardIds.from_raw_batches(samples.aggregate_raw_batches(pipeline, allowDiskUse=True))


def _ids_in_shard(collection: Any, stages: list[dict[str, Any]], shard: int, shards: int) -> ShardIds:
    """IDs of ``collection`` (a dataset or view) after ``stages`` that belong to ``shard``."""
    if shards == 1:
        return _stream_ids(collection, stages)
    from pymongo.errors import OperationFailure

    try:
        return _stream_ids(collection, [*stages, {"$match": {"$expr": shard_expression(shard, shards)}}])
    except OperationFailure as error:
        if error.code != INVALID_PIPELINE_OPERATOR and "toHashedIndexKey" not in str(error):
            raise
    # A server without $toHashedIndexKey: the same rule applied here, still holding only the shard's IDs.
    LOG.warning("the database has no $toHashedIndexKey; the shard filters the target's IDs itself")
    cursor = collection._aggregate(post_pipeline=[*stages, {"$project": {"_id": 1}}])
    return ShardIds.from_ids(doc["_id"] for doc in cursor if shard_of(str(doc["_id"]), shards) == shard)


def shard_sample_ids(dataset: Any, target: Target, shard: int, shards: int) -> ShardIds:
    """The IDs of the target's samples that belong to ``shard`` (selected by the database, streamed)."""
    return _ids_in_shard(target_view(dataset, target), [], shard, shards)


def done_ids(dataset: Any, marker_field: str, run_uid: str, shard: int, shards: int) -> ShardIds:
    """The IDs of ``shard``'s samples whose marker says this run already wrote their prediction.

    Read over the whole dataset, not the target view: a sample written by this run
    counts as done even when it left the view meanwhile.
    """
    if not dataset.has_sample_field(marker_field):
        return ShardIds.from_ids(())
    return _ids_in_shard(dataset, [{"$match": {marker_field: run_uid}}], shard, shards)


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
