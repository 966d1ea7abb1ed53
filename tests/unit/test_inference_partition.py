"""Shard partition: deterministic, complete, disjoint, independent of input order."""

import random

import pytest

from inference.partition import shard_ids, shard_of


def _ids(count: int) -> list[str]:
    rng = random.Random(7)
    return [f"{rng.getrandbits(96):024x}" for _ in range(count)]


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_shards_cover_every_id_once(shards):
    ids = _ids(500)
    parts = [shard_ids(ids, index, shards) for index in range(shards)]
    assert sorted(sid for part in parts for sid in part) == sorted(ids)
    assert sum(len(part) for part in parts) == len(ids)


def test_same_shard_whatever_the_order_and_other_samples():
    ids = _ids(300)
    shuffled = list(reversed(ids))
    assert shard_ids(ids, 1, 4) == shard_ids(shuffled, 1, 4)
    grown = ids + _ids(600)[300:]
    assert set(shard_ids(ids, 1, 4)) <= set(shard_ids(grown, 1, 4))


def test_shards_are_roughly_balanced():
    sizes = [len(shard_ids(_ids(4000), index, 4)) for index in range(4)]
    assert min(sizes) > 850


def test_index_out_of_range():
    with pytest.raises(ValueError):
        shard_ids(["a"], 2, 2)
    assert shard_of("a", 1) == 0
