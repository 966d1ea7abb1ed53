"""Shard partition: deterministic, complete, disjoint, independent of input order."""

import random

import pytest

from inference.partition import ShardIds, shard_expression, shard_ids, shard_of


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
        shard_ids(["0" * 24], 2, 2)
    assert shard_of("0" * 24, 1) == 0


def test_ids_made_in_one_batch_spread_evenly():
    from bson import ObjectId

    ids = [str(ObjectId()) for _ in range(6000)]  # consecutive counters: the hash still spreads them
    sizes = [len(shard_ids(ids, index, 6)) for index in range(6)]
    assert sum(sizes) == 6000 and min(sizes) > 850


def test_shard_ids_are_compact_sorted_and_subtract():
    ids = _ids(1000)
    mine = ShardIds.from_ids(reversed(ids + ids[:10]))  # duplicates and order do not matter
    assert list(mine) == sorted(ids) and len(mine) == 1000
    assert mine[0] == min(ids) and mine[-1] == max(ids) and mine[2:4] == sorted(ids)[2:4]
    assert ids[5] in mine and "f" * 24 not in mine
    done = ShardIds.from_ids([*ids[:300], "0" * 24])  # an ID outside the shard is ignored
    rest = mine.without(done, {ids[400], "e" * 24})
    assert list(rest) == sorted(set(ids) - set(ids[:300]) - {ids[400]})
    assert list(ShardIds.from_ids([]).without(done)) == []


def test_shard_expression_checks_its_index():
    with pytest.raises(ValueError):
        shard_expression(3, 3)
    assert shard_expression(0, 2)["$eq"][1] == 0


def test_raw_batches_parse_like_bson():
    import bson

    ids = [bson.ObjectId() for _ in range(300)]
    fixed = b"".join(bson.encode({"_id": oid}) for oid in ids[:200])
    other = b"".join(bson.encode({"_id": oid, "x": 1}) for oid in ids[200:])  # not the 22-byte shape
    parsed = ShardIds.from_raw_batches([fixed, other, b""])
    assert list(parsed) == sorted(str(oid) for oid in ids)
