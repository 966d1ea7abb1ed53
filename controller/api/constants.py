"""Names and fixed values of the AutoLabelRun API: identity, phases, condition types, reasons, defaults.

Every condition type and reason the controller writes is a named constant here, so the
status vocabulary is documented in one place and typos are caught by the type checker;
the reasons of ``Validated`` that the probe pod reports are the contract's
(`contract.verdicts.ValidationReason`), and the tasks and output formats are the
worker configuration's (`contract.worker`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from contract.verdicts import ValidationReason

GROUP: Final = "autolabel.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "AutoLabelRun"
PLURAL: Final = "autolabelruns"
SINGULAR: Final = "autolabelrun"
SHORT_NAMES: Final = ("alr",)
CATEGORIES: Final = ("autolabel",)
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# Label Kueue reads to admit a Job into a LocalQueue.
KUEUE_QUEUE_LABEL: Final = "kueue.x-k8s.io/queue-name"

# Sample fields FiftyOne manages itself; a run may never write its labels into them.
RESERVED_FIELD_NAMES: Final = (
    "id",
    "_id",
    "filepath",
    "tags",
    "metadata",
    "created_at",
    "last_modified_at",
    "frames",
    "_rand",
    "_media_type",
    "_dataset_id",
)

# FiftyOne field names: a letter or underscore, then letters, digits, underscores (no dots, no `$`).
FIELD_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
FIELD_NAME_MAX_LENGTH: Final = 63


class Phase(StrEnum):
    """Where a run is in its life; derived from the conditions and shown by `kubectl get alr`."""

    PENDING = "Pending"
    INFERRING = "Inferring"
    REVIEW = "Review"
    FINALIZING = "Finalizing"
    FINALIZED = "Finalized"
    DISCARDING = "Discarding"
    DISCARDED = "Discarded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"
    QUEUED = "Queued"  # Kueue holds the worker Job: waiting for quota, or preempted


TERMINAL_PHASES: Final = frozenset({Phase.FINALIZED, Phase.DISCARDED})


class ShardState(StrEnum):
    """State of one shard (one completion index of the run's Indexed Job)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ConditionStatus(StrEnum):
    """metav1.Condition status values."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """The condition types of an AutoLabelRun; each is True, False or Unknown."""

    VALIDATED = "Validated"  # the spec, the dataset, the Secret and the Triton model were checked
    INFERENCE_COMPLETE = "InferenceComplete"  # every shard succeeded
    SUSPENDED = "Suspended"  # spec.suspend holds the Job
    QUEUED = "Queued"  # Kueue holds the Job (spec.execution.queueName): no quota yet, or preempted
    REVIEW_READY = "ReviewReady"  # predictions are in the dataset and review statistics are current
    FINALIZED = "Finalized"  # approved labels promoted, the rest removed
    DISCARDED = "Discarded"  # the run's predictions were removed on request
    FAILED = "Failed"  # the run cannot progress without a change to its spec or environment


class Reason(StrEnum):
    """Machine-readable reasons the controller gives (CamelCase, as metav1.Condition requires)."""

    # Validated (besides the probe's ValidationReason)
    VALIDATION_PENDING = "ValidationPending"
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"  # an image outside the operator's allow-list
    VALIDATION_CRASHED = "ValidationCrashed"  # the validation step ended without a verdict
    # InferenceComplete / Failed
    JOB_CREATED = "JobCreated"
    SHARDS_RUNNING = "ShardsRunning"
    ALL_SHARDS_SUCCEEDED = "AllShardsSucceeded"
    SHARD_FAILED = "ShardFailed"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    STARTUP_TIMEOUT = "StartupTimeout"  # no worker started within execution.startupTimeoutSeconds
    JOB_DELETED = "JobDeleted"
    CHILD_REFUSED = "ChildRefused"  # the API server refused the Job or ConfigMap as built (a 4xx)
    # Warning Events (no condition): a progress ConfigMap entry left out or clamped
    INVALID_PROGRESS_REPORT = "InvalidProgressReport"
    # Suspended
    SUSPENDED_BY_SPEC = "SuspendedBySpec"
    RESUMED = "Resumed"
    # Queued (Kueue) / Failed
    WAITING_FOR_QUOTA = "WaitingForQuota"
    PREEMPTED = "Preempted"
    ADMITTED = "Admitted"
    QUEUE_NOT_FOUND = "QueueNotFound"
    # ReviewReady / Finalized / Discarded
    REVIEW_STATISTICS_UPDATED = "ReviewStatisticsUpdated"
    REVIEW_STATISTICS_FAILED = "ReviewStatisticsFailed"
    FINALIZE_REQUESTED = "FinalizeRequested"
    FINALIZE_SUCCEEDED = "FinalizeSucceeded"
    FINALIZE_FAILED = "FinalizeFailed"
    DISCARD_REQUESTED = "DiscardRequested"
    DISCARD_SUCCEEDED = "DiscardSucceeded"
    DISCARD_FAILED = "DiscardFailed"


AnyReason = Reason | ValidationReason
"""A condition's reason: the controller's own, or one the probe reported."""
