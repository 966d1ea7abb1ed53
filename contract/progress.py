"""The progress report: what a worker writes under ``shard-<index>`` of its run's progress ConfigMap.

The worker (`inference.progress`) makes a `ProgressReport` every few seconds and writes
its `to_json()` under `progress_key(shard)`; the controller (`controller.shards`) reads
every entry with `read_report`. That ConfigMap is writable by anything running as the
worker ServiceAccount, so the reader takes an entry as untrusted input. It never raises
anything but `BadReport` (an entry it cannot read), and what it returns always fits
status:

- ``processed``, ``failed``, ``total``: numbers; absent is 0; out of 0..`MAX_SHARD_COUNT`
  clamped (a fraction cut to a whole number), and noted; not a number, NaN or infinite: bad;
- ``imagesPerSecond``: absent or null is none; out of 0..`MAX_IMAGES_PER_SECOND` clamped
  (infinity too), and noted; not a number or NaN: bad;
- ``state``, ``message``: text cut to `MAX_REPORT_TEXT` characters; another JSON value is
  taken as its JSON text;
- ``updatedAt``: an ISO 8601 time (without a zone: UTC); absent, null or empty is none;
  anything else is bad;
- other keys are ignored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import Field, ValidationError, ValidationInfo, field_serializer, field_validator

from contract.wire import MAX_COUNT, WireModel

PROGRESS_KEY_PREFIX: Final = "shard-"
MAX_SHARD_KEY_DIGITS: Final = 6
MAX_SHARD_COUNT: Final = MAX_COUNT
MAX_IMAGES_PER_SECOND: Final = 1e9
MAX_REPORT_TEXT: Final = 1024
_COUNTS = ("processed", "failed", "total")
# What the validators below make of any entry; the bounds hold for a report made by hand too.
ShardCount = Annotated[int, Field(ge=0, le=MAX_SHARD_COUNT)]
Rate = Annotated[float, Field(ge=0, le=MAX_IMAGES_PER_SECOND)]
ReportText = Annotated[str, Field(max_length=MAX_REPORT_TEXT)]


class ProgressState(StrEnum):
    """Where one shard's worker is (the ``state`` of its report)."""

    STARTING = "Starting"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class BadReport(ValueError):
    """A progress entry that cannot be read as a report."""


def progress_key(shard: int) -> str:
    """The key of the progress ConfigMap that shard `shard`'s worker writes."""
    return f"{PROGRESS_KEY_PREFIX}{shard}"


def shard_of(key: str) -> int | None:
    """The shard whose report `key` holds; None for a key of no report. Raises BadReport for ``shard-x``."""
    if not key.startswith(PROGRESS_KEY_PREFIX):
        return None
    suffix = key.removeprefix(PROGRESS_KEY_PREFIX)
    if not suffix.isdigit() or len(suffix) > MAX_SHARD_KEY_DIGITS:
        raise BadReport("not a shard index")
    return int(suffix)


def _note(info: ValidationInfo, note: str) -> None:
    if isinstance(info.context, dict) and isinstance(info.context.get("clamped"), list):
        info.context["clamped"].append(note)


class ProgressReport(WireModel):
    """One shard's progress, as its worker last wrote it; read with `read_report`."""

    processed: ShardCount = 0
    failed: ShardCount = 0
    total: ShardCount = 0
    images_per_second: Rate | None = None
    state: ReportText = ""
    message: ReportText = ""
    updated_at: datetime | None = None

    @field_validator(*_COUNTS, mode="before")
    @classmethod
    def _count(cls, value: Any, info: ValidationInfo) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{info.field_name} is not a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{info.field_name} is not finite")
        clamped = min(max(int(value), 0), MAX_SHARD_COUNT)
        if clamped != value:
            _note(info, f"{info.field_name} {value!r} clamped to {clamped}")
        return clamped

    @field_validator("images_per_second", mode="before")
    @classmethod
    def _rate(cls, value: Any, info: ValidationInfo) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ValueError("imagesPerSecond is not a number")
        clamped = min(max(float(value), 0.0), MAX_IMAGES_PER_SECOND)
        if clamped != value:
            _note(info, f"imagesPerSecond {value!r} clamped to {clamped}")
        return clamped

    @field_validator("state", "message", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return (str(value) if isinstance(value, str) else json.dumps(value))[:MAX_REPORT_TEXT]

    @field_validator("updated_at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> datetime | None:
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            parsed = value
        elif not isinstance(value, str):
            raise ValueError("updatedAt is not a string")
        else:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError as error:
                raise ValueError(f"updatedAt is not an ISO 8601 time: {error}") from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    @field_serializer("images_per_second")
    def _rounded(self, value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    @field_serializer("updated_at")
    def _utc(self, value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    return str(cause) if cause is not None else f"{'.'.join(map(str, first['loc']))}: {first['msg']}"


def read_report(entry: str) -> tuple[ProgressReport, list[str]]:
    """One entry of the progress ConfigMap -> (report, values clamped); raises BadReport when unreadable."""
    try:
        raw = json.loads(entry)
    except (ValueError, RecursionError) as error:
        raise BadReport(f"not JSON: {str(error)[:200]}") from None
    if not isinstance(raw, dict):
        raise BadReport(f"not a JSON object but {type(raw).__name__}")
    clamped: list[str] = []
    try:
        report = ProgressReport.model_validate(
            raw, by_alias=True, by_name=False, context={"clamped": clamped}
        )
    except ValidationError as error:
        raise BadReport(_problem(error)) from None
    return report, clamped
