"""Shards selected by the database: the query's rule is `shard_of`, for the whole dataset and for views."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from bson import ObjectId

from contract.worker import Target
from inference import reader
from inference.partition import hashed_key, shard_ids
from inference.reader import done_ids, shard_sample_ids

pytestmark = pytest.mark.integration


def _dataset(count: int, tagged_every: int = 3) -> Any:
    import fiftyone as fo

    dataset = fo.Dataset(f"partition-{uuid.uuid4().hex[:8]}")
    # Mixed ID sources: one batch (consecutive counters) and IDs made one by one elsewhere.
    samples = [
        fo.Sample(filepath=f"/images/{index}.jpg", tags=["pick"] if index % tagged_every == 0 else [])
        for index in range(count)
    ]
    dataset.add_samples(samples, progress=False)
    extra = [
        {"_id": ObjectId(f"{index:08x}" + uuid.uuid4().hex[:16]), "filepath": f"/x/{index}.jpg"}
        for index in range(50)
    ]
    dataset._sample_collection.insert_many(
        [{**doc, "tags": [], "_media_type": "image", "_dataset_id": dataset._doc.id} for doc in extra]
    )
    return dataset


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_database_selects_what_shard_of_says(mongo: Any, shards: int) -> None:
    dataset = _dataset(500)
    everything: list[str] = [str(doc["_id"]) for doc in dataset._sample_collection.find({}, {"_id": 1})]
    tagged = dataset.match_tags("pick").values("id")
    parts: list[str] = []
    for index in range(shards):
        mine = shard_sample_ids(dataset, Target(), index, shards)
        assert list(mine) == list(shard_ids(everything, index, shards))
        view_part = shard_sample_ids(dataset, Target(tags=["pick"]), index, shards)
        assert list(view_part) == list(shard_ids(tagged, index, shards))
        parts.extend(mine)
    assert sorted(parts) == sorted(everything)


def test_done_ids_are_this_runs_markers_within_the_shard(mongo: Any) -> None:
    dataset = _dataset(90)
    ids = dataset.values("id")
    assert list(done_ids(dataset, "auto_in_review_run", "uid-a", 0, 2)) == []  # no marker field yet
    dataset.set_values("auto_in_review_run", ["uid-a" if i % 2 else "uid-b" for i in range(len(ids))])
    marked_a = [sid for i, sid in enumerate(ids) if i % 2]
    for index in range(2):
        assert list(done_ids(dataset, "auto_in_review_run", "uid-a", index, 2)) == list(
            shard_ids(marked_a, index, 2)
        )


def test_python_twin_is_the_servers_hashed_key(mongo: Any) -> None:
    dataset = _dataset(300)
    keys = dataset._sample_collection.aggregate([{"$project": {"key": {"$toHashedIndexKey": "$_id"}}}])
    pairs = [(str(doc["_id"]), doc["key"]) for doc in keys]
    assert len(pairs) == 350 and all(hashed_key(sample_id) == key for sample_id, key in pairs)


def test_a_server_without_the_operator_gets_the_same_shards(mongo: Any, monkeypatch: Any) -> None:
    dataset = _dataset(200)
    expected = [list(shard_sample_ids(dataset, Target(), index, 3)) for index in range(3)]
    monkeypatch.setattr(reader, "shard_expression", lambda shard, shards: {"$noSuchOperator": "$_id"})
    assert [list(shard_sample_ids(dataset, Target(), index, 3)) for index in range(3)] == expected
