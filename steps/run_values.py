"""Removing what a run wrote: its values on its own samples, then the fields it created once empty.

Shared by finalize (staging and marker) and discard (also embeddings the run
created). Every write goes with the durable write concern, is limited to the
samples whose marker holds the run's uid, and is checked by a fresh count
before the step reports done; a field leaves the schema only when the run's
claim says the run created it and no sample holds a value in it any more.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from contract.worker import WorkerConfig
from runtime.claims import created_by_run, undeclare
from runtime.durable import retried, samples
from runtime.errors import FatalError

VERIFY_PASSES = 3


def unset_run_values(dataset: Any, config: WorkerConfig, fields: list[str]) -> None:
    """Unsets `fields` (the marker among them) on the run's samples, until a fresh count finds none."""
    collection = samples(dataset, config.database)
    mine = {config.marker_field: config.run.uid}
    unset = {"$unset": dict.fromkeys(fields, "")}
    for _ in range(VERIFY_PASSES):
        retried("unsetting the run's values", config.database, lambda: collection.update_many(mine, unset))
        left = retried(
            "counting the run's markers", config.database, lambda: collection.count_documents(mine)
        )
        if left == 0:
            return
    raise FatalError(
        f"values of run {config.run.uid} remain in dataset {config.dataset!r} after {VERIFY_PASSES} passes"
    )


def drop_created_fields(dataset: Any, config: WorkerConfig, fields: list[str]) -> None:
    """Drops from the schema the `fields` the run created, once no sample holds a value in them."""
    collection = samples(dataset, config.database)
    for field in fields:
        if not created_by_run(dataset, config, field):
            continue
        count = partial(collection.count_documents, {field: {"$exists": True}}, limit=1)
        left = retried(f"counting values of {field!r}", config.database, count)
        if left == 0:
            undeclare(dataset, config, field)
