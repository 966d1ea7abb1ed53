"""Deterministic shard partition of sample IDs, evaluated inside the database query.

A sample's shard depends only on its own ID and the shard count: MongoDB's own
hashed-index key of the ObjectId (``$toHashedIndexKey``, the hash of hashed
sharding: the first 8 bytes of an MD5, as a signed little-endian int64) modulo
the shard count. `shard_expression` is that rule as an aggregation expression,
so a shard asks the database for its own samples and never receives the IDs
of the whole target; `shard_of` is the same rule in Python (tests, and the
fallback for a server without ``$toHashedIndexKey``). A retried index gets
exactly the same samples, whatever order the database returns them in and
even if other samples were added meanwhile.

`ShardIds` holds a shard's IDs compactly (24 ASCII bytes each in one sorted
numpy array, ~24 MB per million), read from a cursor in chunks, so a worker's
memory grows with its shard by that much and no more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

_OBJECT_ID_HASH_PREFIX = (0).to_bytes(4, "little") + (35).to_bytes(4, "little")  # seed 0, ObjectId's type
_ID_DTYPE = "S24"
_RAW_ID_DOCUMENT = 22
_RAW_ID_PREFIX = np.frombuffer(bytes([22, 0, 0, 0, 7]) + b"_id\0", dtype=np.uint8)
CHUNK = 50_000


def hashed_key(sample_id: str) -> int:
    """MongoDB's ``$toHashedIndexKey`` of the ObjectId ``sample_id`` (24 hex digits)."""
    digest = hashlib.md5(_OBJECT_ID_HASH_PREFIX + bytes.fromhex(sample_id), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "little", signed=True)


def shard_of(sample_id: str, shard_count: int) -> int:
    """The shard (0-based) that owns ``sample_id``."""
    return hashed_key(sample_id) % shard_count


def _check(shard_index: int, shard_count: int) -> None:
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard index {shard_index} is outside 0..{shard_count - 1}")


def shard_expression(shard_index: int, shard_count: int) -> dict[str, Any]:
    """An aggregation expression, true for the samples of ``shard_index`` (for ``$match: {$expr}``).

    ``$mod`` keeps the dividend's sign; adding the count and taking it again gives
    Python's non-negative remainder.
    """
    _check(shard_index, shard_count)
    remainder = {"$mod": [{"$toHashedIndexKey": "$_id"}, shard_count]}
    return {"$eq": [{"$mod": [{"$add": [remainder, shard_count]}, shard_count]}, shard_index]}


class ShardIds(Sequence[str]):
    """A sorted, duplicate-free list of sample IDs stored as one bytes array."""

    def __init__(self, hex_ids: npt.NDArray[Any]) -> None:
        self._ids = np.unique(hex_ids.astype(_ID_DTYPE))  # sorted, duplicates dropped

    @classmethod
    def from_ids(cls, ids: Iterable[Any]) -> ShardIds:
        """From str IDs or ObjectIds, read ``CHUNK`` at a time (an iterator is never materialised whole)."""
        chunks: list[npt.NDArray[Any]] = []
        buffer: list[str] = []
        for sample_id in ids:
            buffer.append(str(sample_id))
            if len(buffer) == CHUNK:
                chunks.append(np.array(buffer, dtype=_ID_DTYPE))
                buffer = []
        if buffer:
            chunks.append(np.array(buffer, dtype=_ID_DTYPE))
        return cls(np.concatenate(chunks) if chunks else np.empty(0, dtype=_ID_DTYPE))

    @classmethod
    def from_raw_batches(cls, batches: Iterable[bytes]) -> ShardIds:
        """From raw BSON batches of ``{_id: ObjectId}`` documents (``$project: {_id: 1}``), parsed by numpy.

        Each such document is 22 bytes: length, type 0x07, ``"_id\\0"``, 12 id bytes, 0x00.
        A batch of any other shape is decoded by ``bson`` instead.
        """
        import bson

        chunks: list[npt.NDArray[Any]] = []
        for batch in batches:
            rows = np.frombuffer(batch, dtype=np.uint8)
            if len(rows) % _RAW_ID_DOCUMENT == 0:
                rows = rows.reshape(-1, _RAW_ID_DOCUMENT)
                if (rows[:, :9] == _RAW_ID_PREFIX).all() and (rows[:, 21] == 0).all():
                    chunks.append(np.frombuffer(rows[:, 9:21].tobytes().hex().encode(), dtype=_ID_DTYPE))
                    continue
            chunks.append(np.array([str(doc["_id"]) for doc in bson.decode_all(batch)], dtype=_ID_DTYPE))
        return cls(np.concatenate(chunks) if chunks else np.empty(0, dtype=_ID_DTYPE))

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [value.decode() for value in self._ids[index]]
        return str(self._ids[index].decode())

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._ids), CHUNK):
            yield from self[start : start + CHUNK]

    def __contains__(self, sample_id: object) -> bool:
        if not isinstance(sample_id, str):
            return False
        key = np.array([sample_id], dtype=_ID_DTYPE)
        position = int(np.searchsorted(self._ids, key)[0])
        return position < len(self._ids) and bool(self._ids[position] == key[0])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ShardIds):
            return bool(np.array_equal(self._ids, other._ids))
        return isinstance(other, list) and list(self) == other

    __hash__ = None  # type: ignore[assignment]

    def without(self, *others: ShardIds | Iterable[str]) -> ShardIds:
        """These IDs minus every ID of ``others``."""
        keep = np.ones(len(self._ids), dtype=bool)
        for other in others:
            values = other._ids if isinstance(other, ShardIds) else np.array(list(other), dtype=_ID_DTYPE)
            if len(values) and len(self._ids):
                positions = np.searchsorted(self._ids, values).clip(0, len(self._ids) - 1)
                keep[positions[self._ids[positions] == values]] = False
        return ShardIds(self._ids[keep])


def shard_ids(sample_ids: Iterable[str], shard_index: int, shard_count: int) -> ShardIds:
    """The IDs owned by ``shard_index``, sorted so every attempt processes them in the same order."""
    _check(shard_index, shard_count)
    return ShardIds.from_ids(sid for sid in sample_ids if shard_of(sid, shard_count) == shard_index)
