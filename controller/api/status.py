"""The AutoLabelRun status: phase, conditions, progress, per-shard state, review statistics, outcomes.

Every field the controller writes is declared here: the API server prunes undeclared
status fields silently, so anything missing from these models is lost on write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from controller.api.common import StatusModel
from controller.api.constants import ConditionStatus, Phase, ShardState

Count = Annotated[int, Field(ge=0)]
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)


def _list_map(*keys: str) -> dict[str, Any]:
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


class Condition(StatusModel):
    """One aspect of the run's state, shaped like metav1.Condition."""

    type: Annotated[str, StringConstraints(max_length=316, pattern=CONDITION_TYPE_PATTERN)] = Field(
        description="Condition type, one of the ConditionType constants (Validated, InferenceComplete, ...)."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation of the spec this condition was computed from."
    )
    last_transition_time: datetime = Field(description="When status last changed.")
    reason: Annotated[
        str, StringConstraints(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)
    ] = Field(description="CamelCase machine-readable reason, one of the Reason constants.")
    message: Annotated[str, StringConstraints(max_length=32768)] = Field(
        default="", description="Human-readable detail: what happened and what to do about it."
    )


class ProgressStatus(StatusModel):
    """Inference progress over all shards."""

    processed: Count = Field(default=0, description="Samples done (labeled or failed).")
    failed: Count = Field(default=0, description="Samples that could not be labeled (unreadable image, ...).")
    total: Count = Field(default=0, description="Target samples.")
    summary: str = Field(
        default="0/0", max_length=64, description='"processed/total", as shown by kubectl get.'
    )
    images_per_second: float | None = Field(
        default=None, ge=0, description="Current throughput over all shards."
    )
    updated_at: datetime | None = Field(default=None, description="When a worker last reported.")


class ShardStatus(StatusModel):
    """State of one shard, one completion index of the Job."""

    index: int = Field(ge=0, description="Completion index of the shard.")
    state: ShardState = Field(description="Pending, Running, Succeeded or Failed.")
    processed: Count = Field(default=0, description="Samples of the shard done.")
    failed: Count = Field(default=0, description="Samples of the shard that could not be labeled.")
    total: Count = Field(default=0, description="Samples in the shard.")
    attempts: Count = Field(default=0, description="Pods started for the shard (1 + retries).")
    images_per_second: float | None = Field(
        default=None, ge=0, description="Throughput of the shard's current pod."
    )
    message: str | None = Field(
        default=None, max_length=4096, description="Why the shard failed, when it did."
    )
    updated_at: datetime | None = Field(default=None, description="When the shard last reported.")


class ClassStatistics(StatusModel):
    """Review numbers of one predicted class."""

    name: str = Field(max_length=256, description="Class name.")
    count: Count = Field(default=0, description="Predicted labels of the class.")
    mean_confidence: float | None = Field(
        default=None, ge=0, le=1, description="Mean confidence of those labels."
    )
    approved: Count = Field(default=0, description="Labels of the class approved.")
    rejected: Count = Field(default=0, description="Labels of the class rejected.")


class QualityMetrics(StatusModel):
    """Agreement of predictions with the ground-truth field."""

    precision: float | None = Field(
        default=None, ge=0, le=1, description="Fraction of predictions matching ground truth."
    )
    recall: float | None = Field(
        default=None, ge=0, le=1, description="Fraction of ground truth found by predictions."
    )
    mean_average_precision: float | None = Field(
        default=None, alias="mAP", ge=0, le=1, description="COCO-style mAP (detection only)."
    )
    labels: Count = Field(default=0, description="Predicted labels evaluated.")


class QualityStatus(StatusModel):
    """Quality numbers, when spec.review.groundTruthField is set."""

    ground_truth_field: str = Field(max_length=63, description="The ground-truth field evaluated against.")
    overall: QualityMetrics | None = Field(default=None, description="All predictions of the run.")
    approved: QualityMetrics | None = Field(default=None, description="Only the approved predictions.")


class ClassCalibrationStatus(StatusModel):
    """What the verification sample proves for one class."""

    name: str = Field(max_length=256, description="Class name.")
    sampled: Count = Field(default=0, description="Labels of the class in the verification sample.")
    reviewed: Count = Field(default=0, description="Sampled labels a person approved or rejected.")
    correct: Count = Field(default=0, description="Reviewed sample labels that were approved.")
    precision: float | None = Field(
        default=None, ge=0, le=1, description="Precision of the reviewed sample labels at or above threshold."
    )
    lower_bound: float | None = Field(
        default=None, ge=0, le=1, description="One-sided exact lower bound of that precision (tested)."
    )
    interval: list[float] | None = Field(
        default=None, max_length=2, description="Two-sided Clopper-Pearson interval of that precision."
    )
    threshold: float | None = Field(
        default=None, description="Lowest certified confidence; none while nothing is certified."
    )
    auto_approved: Count = Field(default=0, description="Labels approved by calibration.")
    left_for_people: Count = Field(default=0, description="Labels of the class still undecided.")
    more_reviews_needed: Count | None = Field(
        default=None,
        description="Sample labels still to review before a threshold can be tried (none: the precision "
        "seen is below target, more reviews alone cannot certify it).",
    )


class CalibrationStatus(StatusModel):
    """Calibrated auto-approval (spec.review.autoApprove)."""

    target_precision: float = Field(ge=0, le=1, description="spec.review.autoApprove.targetPrecision.")
    confidence_level: float = Field(ge=0, le=1, description="spec.review.autoApprove.confidenceLevel.")
    sample_size: Count = Field(default=0, description="Labels in the verification sample.")
    reviewed: Count = Field(default=0, description="Sample labels reviewed by a person.")
    auto_approved: Count = Field(default=0, description="Labels approved by calibration.")
    saved_view: str | None = Field(default=None, description="Saved view of the verification sample.")
    classes: list[ClassCalibrationStatus] = Field(
        default_factory=list, max_length=1000, description="Per class.", json_schema_extra=_list_map("name")
    )


class ReviewStatus(StatusModel):
    """Review statistics, refreshed while the run is in Review."""

    total: Count = Field(default=0, description="Predicted labels of the run.")
    approved: Count = Field(default=0, description="Labels approved.")
    rejected: Count = Field(default=0, description="Labels rejected.")
    unreviewed: Count = Field(default=0, description="Labels neither approved nor rejected.")
    classes: list[ClassStatistics] = Field(
        default_factory=list,
        max_length=4096,
        description="Per-class numbers.",
        json_schema_extra=_list_map("name"),
    )
    problem_tags: dict[str, Count] = Field(
        default_factory=dict, description="Labels carrying each problem tag."
    )
    quality: QualityStatus | None = Field(
        default=None, description="Precision/recall against ground truth, when asked."
    )
    calibration: CalibrationStatus | None = Field(
        default=None, description="Calibrated auto-approval, with spec.review.autoApprove."
    )
    brain_key: str | None = Field(
        default=None, max_length=253, description="Brain key of the embeddings visualization."
    )
    saved_views: list[str] = Field(
        default_factory=list, max_length=16, description="Saved views created for this run in the dataset."
    )
    rules_applied_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation whose spec.review rules were last applied."
    )
    updated_at: datetime | None = Field(default=None, description="When these numbers were computed.")


class FinalizeStatus(StatusModel):
    """Outcome of finalize."""

    promoted: Count = Field(default=0, description="Approved labels kept in labelField.")
    discarded: Count = Field(default=0, description="Labels of the run removed.")


class DiscardStatus(StatusModel):
    """Outcome of discard."""

    removed: Count = Field(default=0, description="Labels of the run removed.")


class AutoLabelRunStatus(StatusModel):
    """Observed state of an AutoLabelRun, written by the controller only."""

    phase: Phase | None = Field(
        default=None, description="Pending, Inferring, Review, Finalizing, Finalized, Failed, ..."
    )
    message: str | None = Field(
        default=None, max_length=32768, description="What happened last, or what to fix."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation last acted upon."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=32,
        description="Conditions of the run (metav1.Condition shape).",
        json_schema_extra=_list_map("type"),
    )
    job_name: str | None = Field(default=None, max_length=63, description="Name of the worker Job.")
    review_field: str | None = Field(
        default=None,
        max_length=253,
        description="Dataset field holding the run's predictions until finalized.",
    )
    progress: ProgressStatus | None = Field(default=None, description="Inference progress over all shards.")
    shards: list[ShardStatus] = Field(
        default_factory=list,
        max_length=1000,
        description="Per-shard state.",
        json_schema_extra=_list_map("index"),
    )
    review: ReviewStatus | None = Field(default=None, description="Review statistics.")
    finalized: FinalizeStatus | None = Field(default=None, description="Finalize outcome.")
    discarded: DiscardStatus | None = Field(default=None, description="Discard outcome.")
    start_time: datetime | None = Field(default=None, description="When the worker Job was created.")
    completion_time: datetime | None = Field(default=None, description="When inference completed.")
