"""The review agent's change feed against the real database: a replica set tells it what changed, a
standalone server says it cannot (and the agent then checks per interval).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pymongo import MongoClient

from review.change_feed import DATASETS_COLLECTION, ChangeFeed
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


class Seen:
    def __init__(self) -> None:
        self.changes: list[tuple[str, Any]] = []
        self.gaps = 0
        self.lock = threading.Lock()

    def change(self, collection: str, document_id: Any) -> None:
        with self.lock:
            self.changes.append((collection, document_id))

    def gap(self) -> None:
        self.gaps += 1


def test_a_replica_set_reports_changes_of_fiftyone_collections_only(mongo: Any) -> None:
    assert mongo.replica_set, "the test database is a replica set (AUTOLABEL_MONGO_REPLSET unset)"
    database: Any = MongoClient(mongo.uri)["change-feed-test"]
    seen = Seen()
    feed = ChangeFeed(seen.change, seen.gap, database=lambda: database)
    feed.start()
    wait_until("the change stream open", feed.healthy.is_set, 30)
    assert seen.gaps == 1  # opening counts as "anything may have changed"
    database["other"].insert_one({"x": 1})  # not FiftyOne's
    database["datasets.copy"].insert_one({"x": 1})  # nor this
    inserted = database["samples.a"].insert_one({"x": 1}).inserted_id
    dataset_id = database[DATASETS_COLLECTION].insert_one({"name": "a"}).inserted_id
    database[DATASETS_COLLECTION].update_one({"_id": dataset_id}, {"$set": {"info.x": 1}})
    # A last change: the stream reports in the order of the writes, so once it is seen, every
    # change before it that the feed would report has been reported.
    last = database["samples.b"].insert_one({"x": 1}).inserted_id
    wait_until("the last change", lambda: ("samples.b", last) in seen.changes, 30)
    assert seen.changes == [
        ("samples.a", inserted),
        (DATASETS_COLLECTION, dataset_id),
        (DATASETS_COLLECTION, dataset_id),
        ("samples.b", last),
    ]
    assert seen.gaps == 1


def test_a_standalone_server_has_no_change_feed(standalone_mongo: Any) -> None:
    database: Any = MongoClient(standalone_mongo.uri)["change-feed-test"]
    seen = Seen()
    feed = ChangeFeed(seen.change, seen.gap, database=lambda: database)
    feed.start()
    wait_until("the feed giving up", lambda: feed.unsupported, 30)
    assert not feed.healthy.is_set()
