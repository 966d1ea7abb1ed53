"""Deterministic shard partition of sample IDs.

A sample's shard depends only on its own ID and the shard count (a stable hash),
so a retried index gets exactly the same samples, whatever order the database
returns them in and even if other samples were added meanwhile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def shard_of(sample_id: str, shard_count: int) -> int:
    """The shard (0-based) that owns ``sample_id``."""
    digest = hashlib.blake2b(sample_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_count


def shard_ids(sample_ids: Iterable[str], shard_index: int, shard_count: int) -> list[str]:
    """The IDs owned by ``shard_index``, sorted so every attempt processes them in the same order."""
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard index {shard_index} is outside 0..{shard_count - 1}")
    return sorted({sid for sid in sample_ids if shard_of(sid, shard_count) == shard_index})
