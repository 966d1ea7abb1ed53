"""The database's change stream, where it offers one: which collections changed, without polling.

The review agent follows FiftyOne's sample collections and its ``datasets``
collection (run records, finalize requests) and keeps the changes of the
datasets it serves. On a replica set (production MongoDB, Atlas, the test
database) one change stream of the database, filtered on the server to those
collections and cut to each change's collection and key, tells it what changed;
with nothing changing it costs one idle ``getMore`` a second and no query. A
standalone server has no change streams: `healthy` stays unset and the agent
falls back to checking each dataset once per refresh interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)
NO_CHANGE_STREAMS = 40573  # "The $changeStream stage is only supported on replica sets"
DATASETS_COLLECTION = "datasets"
SAMPLES_PATTERN = r"^(datasets$|samples\.)"  # FiftyOne's datasets and its sample collections


def _fiftyone_database() -> Any:
    from fiftyone.core.odm import get_db_conn

    return get_db_conn()


class ChangeFeed:
    """Calls `on_change(collection, document_id)` for each change of FiftyOne's collections."""

    def __init__(
        self,
        on_change: Callable[[str, Any], None],
        on_gap: Callable[[], None],
        database: Callable[[], Any] | None = None,
    ) -> None:
        self.database = database or _fiftyone_database  # the pymongo Database to follow
        self.on_change = on_change
        self.on_gap = on_gap  # changes may have gone unseen: everything counts as changed
        self.healthy = threading.Event()
        self.unsupported = False

    def start(self) -> None:
        threading.Thread(target=self._run, name="change-feed", daemon=True).start()

    def _run(self) -> None:
        from pymongo.errors import OperationFailure

        # One filter for the life of the stream (the caller keeps what it serves), so a new run
        # never reopens it; only the namespace and the key of each change travel.
        pipeline = [
            {"$match": {"ns.coll": {"$regex": SAMPLES_PATTERN}}},
            {"$project": {"ns": 1, "documentKey": 1}},
        ]
        while True:
            try:
                with self.database().watch(pipeline, max_await_time_ms=1000) as stream:
                    # The stream sees what changes from now on; what changed before it opened (at
                    # start, or while it was broken) is a gap.
                    self.healthy.set()
                    self.on_gap()
                    while True:
                        change = stream.try_next()
                        if change is not None:
                            self.on_change(change["ns"]["coll"], (change.get("documentKey") or {}).get("_id"))
            except OperationFailure as error:
                if error.code == NO_CHANGE_STREAMS:
                    LOG.info("the database has no change streams: datasets are checked per interval")
                    self.unsupported = True
                    self.healthy.clear()
                    return
                self._broken(error)
            except Exception as error:  # a lost connection, an unreachable server: open it again
                self._broken(error)

    def _broken(self, error: Exception) -> None:
        if self.healthy.is_set():
            LOG.warning("the change stream broke (%s); checking per interval until it is back", error)
        self.healthy.clear()
        self.on_gap()
        time.sleep(2)
