"""The verdicts of the dataset steps: what each ``python -m worker`` command answers, and how it is read.

A step pod (probe, review, finalize, discard) prints its verdict as one JSON line and
writes it into the key ``$AUTOLABEL_RESULT_KEY`` of the run's result ConfigMap
(`runtime.kube.publish`); the controller reads that key with `read_verdict`
(`controller.steps.read_step_verdict`). `VERDICTS` names the model of each command's
verdict, for both. A command that fails answers a `StepFailure` (``{"error": ...}``) instead.

A worker that stops on an error (a shard's, or a step's) also says why in one line of
its log, `fatal_line`: the pod's termination message, which the controller searches
for that line (`controller.shards`).

The probe's reasons (`ValidationReason`) are the reasons of the run's ``Validated``
condition that a pod may report; the controller adds its own (`controller.api.Reason`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

from pydantic import Field, ValidationError, field_validator

from contract.env import Command
from contract.review_stats import ReviewStats
from contract.wire import Count, ErrorText, Flag, Message, Name, ShortText, Stamp, WireModel

UNREADABLE_SHOWN: Final = 200
"""Characters of an unreadable verdict quoted in the failure that replaces it."""
MAX_SAVED_VIEWS: Final = 16
"""Saved views one run makes (status.review.savedViews)."""
FATAL_PREFIX: Final = "fatal:"
"""Start of the log line in which a worker says why it stopped."""


def fatal_line(reason: str) -> str:
    """The log line (on stderr) in which a worker says why it stops."""
    return f"{FATAL_PREFIX} {reason}"


class ValidationReason(StrEnum):
    """Why the probe accepted or refused a run (the ``Validated`` condition's reason)."""

    VALIDATION_PASSED = "ValidationPassed"
    INVALID_SPEC = "InvalidSpec"  # e.g. a source field holding labels of another type
    DATABASE_SECRET_MISSING = "DatabaseSecretMissing"
    DATABASE_UNREACHABLE = "DatabaseUnreachable"
    DATASET_NOT_FOUND = "DatasetNotFound"
    VIEW_NOT_FOUND = "ViewNotFound"
    VIEW_NOT_SUPPORTED = "ViewNotSupported"
    DATABASE_MIGRATION_REQUIRED = "DatabaseMigrationRequired"
    EMPTY_TARGET = "EmptyTarget"
    LABEL_FIELD_EXISTS = "LabelFieldExists"
    TRITON_UNREACHABLE = "TritonUnreachable"
    MODEL_NOT_READY = "ModelNotReady"
    MODEL_OUTPUT_MISMATCH = "ModelOutputMismatch"


class StepFailure(WireModel):
    """A command that failed: what went wrong (a non-text ``error`` is taken as its JSON text)."""

    error: ErrorText

    @field_validator("error", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)


class ProbeVerdict(WireModel):
    """``probe``: whether the run may start, why, and how many samples its target holds."""

    ok: Flag
    reason: ValidationReason
    message: Message
    total: Count | None = None


class DiscardVerdict(WireModel):
    """``discard``: the run's labels removed."""

    removed: Count = 0


class FinalizeVerdict(WireModel):
    """``finalize``: approved labels kept in labelField, and the run's other labels removed."""

    promoted: Count
    discarded: Count


class RuleCounts(WireModel):
    """``apply-rules``: labels whose decision changed, and how many the rules approve and reject."""

    changed: Count = 0
    approved: Count = 0
    rejected: Count = 0


class ReviewAids(WireModel):
    """``visualize``: the saved views and the embeddings visualization (brain key) made for the run."""

    brain_key: Name | None = None
    saved_views: Annotated[list[Name], Field(max_length=MAX_SAVED_VIEWS)] = []
    error: ErrorText | None = None


class FinalizeRequest(WireModel):
    """A reviewer's request to finalize, recorded in the dataset from the App (see runtime.run_record)."""

    requested_at: Stamp | None = None
    requested_by: ShortText | None = None
    approved: Count = 0
    removed: Count = 0


class ReviewVerdict(WireModel):
    """``review``: the rules applied, the review aids made, the numbers, and a finalize request if any."""

    rules: RuleCounts | None = None
    aids: ReviewAids | None = None
    stats: ReviewStats = ReviewStats()
    finalize_requested: FinalizeRequest | None = None


VERDICTS: Final[Mapping[Command, type[WireModel]]] = {
    Command.PROBE: ProbeVerdict,
    Command.DISCARD: DiscardVerdict,
    Command.FINALIZE: FinalizeVerdict,
    Command.REVIEW: ReviewVerdict,
    Command.REVIEW_STATS: ReviewStats,
    Command.APPLY_RULES: RuleCounts,
    Command.VISUALIZE: ReviewAids,
}
"""The verdict of each one-shot command of the worker's entry point."""

Verdict = TypeVar("Verdict", bound=WireModel)


def read_verdict(raw: str | None, model: type[Verdict]) -> Verdict | StepFailure | None:
    """What a step wrote into its key: None while nothing; its failure; else its verdict as `model`.

    Never raises: text that is no JSON object, or no `model`, is read as a failure naming it.
    An object with a non-empty ``error`` is the step's failure, whatever else it holds.
    """
    if raw is None:
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        return StepFailure(error=f"the step wrote an unreadable verdict: {raw[:UNREADABLE_SHOWN]!r}")
    if document.get("error"):
        return StepFailure.model_validate(document, by_alias=True, by_name=False)
    try:
        return model.model_validate(document, by_alias=True, by_name=False)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_url=False)[:3]
        )
        return StepFailure(
            error=f"the step wrote an unreadable verdict ({problems}): {raw[:UNREADABLE_SHOWN]!r}"
        )
