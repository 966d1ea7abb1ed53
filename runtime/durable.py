"""Durable writes: the write concern of every write that matters, and bounded retries of database errors.

Every write of a run (predictions, markers, embeddings, rule tags, finalize's
promotion and record, discard) goes with ``w=majority, j=true`` by default
(`DatabaseWrites` in the worker config): on a standalone mongod that is "in the
journal", on a replica set "on a majority of members, journaled", so neither a
crash nor a failover takes back a write that was acknowledged. FiftyOne's own
client gets the same concern (`configure_process`, before it connects); the raw
writes of this package use `database()` / `samples()`, which set it explicitly.

A transient error (connection lost, no primary, write concern not met) is
retried with backoff until ``patienceS`` has passed (`retried`); then
`DatabaseUnavailable` names the database and ends the step. Every write retried
here is idempotent ($set of a whole value, $unset, a conditional $push), so a
write repeated after an ambiguous error cannot double anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from contract.worker import DatabaseWrites, WriteConcernMode
from runtime.errors import FatalError

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# Server error codes that mean "not now" (shutdown, stepdown, no primary, write concern timeout).
RETRYABLE_CODES = frozenset({6, 7, 64, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 133})


class DatabaseUnavailable(FatalError):
    """The database did not accept a write (or answer a read) within the configured patience."""


def write_concern(settings: DatabaseWrites) -> Any:
    """The pymongo WriteConcern for `settings` (30 s for a majority to answer, then retried)."""
    from pymongo import WriteConcern

    if settings.write_concern == WriteConcernMode.JOURNALED:
        return WriteConcern(w=1, j=True)
    return WriteConcern(w="majority", j=True, wtimeout=30000)


def configure_process(settings: DatabaseWrites) -> None:
    """FiftyOne's client of this process writes with the durable concern too (effective before it connects).

    Also shortens server selection to a third of the patience, so a database that is
    down is noticed and retried within the patience instead of pymongo's 30 s.
    """
    import fiftyone.core.odm.database as foodb

    concern = write_concern(settings)
    options: dict[str, Any] = {"w": concern.document["w"], "journal": True}
    if "wtimeout" in concern.document:
        options["wTimeoutMS"] = concern.document["wtimeout"]
    options["serverSelectionTimeoutMS"] = int(min(30.0, max(1.0, settings.patience_s / 3)) * 1000)
    foodb._connection_kwargs.update(options)


def database(settings: DatabaseWrites) -> Any:
    """FiftyOne's pymongo database, with the durable write concern."""
    import fiftyone.core.odm as foo

    return foo.get_db_conn().with_options(write_concern=write_concern(settings))


def samples(dataset: Any, settings: DatabaseWrites) -> Any:
    """The dataset's sample collection, with the durable write concern."""
    return database(settings)[dataset._sample_collection_name]


def describe_database() -> str:
    """Hosts and database name of FiftyOne's database, never credentials (for error messages)."""
    import fiftyone as fo
    from pymongo.uri_parser import parse_uri

    uri = fo.config.database_uri
    hosts = "the local FiftyOne service"
    if uri:
        try:
            hosts = ",".join(f"{host}:{port}" for host, port in parse_uri(uri, connect_timeout=1)["nodelist"])
        except Exception:
            hosts = "the configured URI"
    return f"the FiftyOne database at {hosts} (database {fo.config.database_name!r})"


def is_transient(error: BaseException) -> bool:
    """Whether `error` may go away when the same idempotent operation is tried again."""
    from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, WriteConcernError

    if isinstance(error, ConnectionFailure | WriteConcernError):
        return True
    if isinstance(error, BulkWriteError):
        write_errors = (error.details or {}).get("writeErrors") or []
        return all(item.get("code") in RETRYABLE_CODES for item in write_errors)
    if isinstance(error, OperationFailure):
        return error.code in RETRYABLE_CODES or error.has_error_label("RetryableWriteError")
    return False


def retried(
    what: str,
    settings: DatabaseWrites,
    action: Callable[[], T],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``action()``, retried on transient database errors with backoff for ``patience_s`` in all.

    Raises `DatabaseUnavailable` (naming the database and `what`) once the patience is spent;
    any other error is raised as it is.
    """
    deadline = time.monotonic() + settings.patience_s
    delay = 0.2
    attempt = 1
    while True:
        try:
            return action()
        except Exception as error:
            if not is_transient(error):
                raise
            if time.monotonic() + delay >= deadline:
                raise DatabaseUnavailable(
                    f"{describe_database()} did not complete {what} within "
                    f"{settings.patience_s:.0f}s ({attempt} attempts): {type(error).__name__}: {error}"
                ) from error
            LOG.warning("%s failed (attempt %d), retrying in %.1fs: %s", what, attempt, delay, error)
        sleep(delay)
        delay = min(delay * 2, 5.0)
        attempt += 1
