"""Retries of database errors: transient ones until the patience is spent, others at once."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError, OperationFailure, WTimeoutError

from contract.worker import DatabaseWrites, WriteConcernMode
from runtime.durable import DatabaseUnavailable, is_transient, retried, write_concern


def _failing(errors: list[Exception], result: str = "done") -> Any:
    def action() -> str:
        if errors:
            raise errors.pop(0)
        return result

    return action


def test_transient_errors_are_retried_until_the_action_succeeds() -> None:
    sleeps: list[float] = []
    errors: list[Exception] = [AutoReconnect("gone"), WTimeoutError("slow majority"), AutoReconnect("gone")]
    assert retried("writing", DatabaseWrites(patience_s=60), _failing(errors), sleep=sleeps.append) == "done"
    assert sleeps == [0.2, 0.4, 0.8]


def test_other_errors_are_raised_at_once() -> None:
    with pytest.raises(DuplicateKeyError):
        retried("claiming", DatabaseWrites(), _failing([DuplicateKeyError("dup")]), sleep=lambda _: None)


def test_a_database_down_past_the_patience_names_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    import fiftyone as fo

    monkeypatch.setattr(fo.config, "database_uri", "mongodb://user:secret@db.example:27017/?replicaSet=rs0")
    monkeypatch.setattr(fo.config, "database_name", "fiftyone")
    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr("runtime.durable.time.monotonic", lambda: float(next(clock)))
    with pytest.raises(DatabaseUnavailable) as raised:
        retried(
            "writing 8 predictions",
            DatabaseWrites(patience_s=20),
            _failing([AutoReconnect("x")] * 99),
            sleep=lambda _: None,
        )
    message = str(raised.value)
    assert "the FiftyOne database at db.example:27017 (database 'fiftyone')" in message
    assert "writing 8 predictions" in message and "secret" not in message


def test_which_errors_are_transient() -> None:
    assert is_transient(OperationFailure("stepdown", code=189))
    assert not is_transient(OperationFailure("bad query", code=2))
    assert is_transient(BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64}]}))
    assert not is_transient(BulkWriteError({"writeErrors": [{"code": 11000}]}))


def test_write_concerns() -> None:
    assert write_concern(DatabaseWrites()).document == {"w": "majority", "j": True, "wtimeout": 30000}
    journaled = DatabaseWrites(write_concern=WriteConcernMode.JOURNALED)
    assert write_concern(journaled).document == {"w": 1, "j": True}
