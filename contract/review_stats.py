"""The review numbers of a run, as a review pass (a step or the review agent) sends them to the controller.

The shape is status.review's (camelCase): the worker computes them
(`review.decisions.review_stats`, `review.quality`, `review.auto_approve`) and
sends a `ReviewStats`; the controller turns it into its status model. Every bound is
the status schema's, so what a pod sends always fits status.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from contract.review import MAX_PROBLEM_TAGS
from contract.wire import ClassName, Count, ErrorText, FieldName, Finite, Fraction, Name, Tag, WireModel

MAX_CLASSES: Final = 4096
"""Classes status.review lists (status.review.classes)."""
MAX_CALIBRATED_CLASSES: Final = 1000


class ClassStats(WireModel):
    """Review numbers of one predicted class."""

    name: ClassName
    count: Count = 0
    mean_confidence: Fraction | None = None
    approved: Count = 0
    rejected: Count = 0


class QualityMetrics(WireModel):
    """Agreement of predictions with the ground-truth field."""

    precision: Fraction | None = None
    recall: Fraction | None = None
    mean_average_precision: Fraction | None = Field(default=None, alias="mAP")
    labels: Count = 0


class QualityReport(WireModel):
    """Quality against spec.review.groundTruthField, or why there is none (``error``)."""

    ground_truth_field: FieldName
    overall: QualityMetrics | None = None
    approved: QualityMetrics | None = None
    error: ErrorText | None = None


class ClassCalibration(WireModel):
    """What the verification sample proves for one class."""

    name: ClassName
    sampled: Count = 0
    reviewed: Count = 0
    correct: Count = 0
    precision: Fraction | None = None
    lower_bound: Fraction | None = None
    interval: Annotated[list[Fraction], Field(max_length=2)] | None = None
    threshold: Finite | None = None
    auto_approved: Count = 0
    left_for_people: Count = 0
    more_reviews_needed: Count | None = None


class Calibration(WireModel):
    """One pass of calibrated auto-approval (spec.review.autoApprove)."""

    target_precision: Fraction
    confidence_level: Fraction
    sample_size: Count = 0
    reviewed: Count = 0
    auto_approved: Count = 0
    saved_view: Name | None = None
    changed: Count = 0
    classes: Annotated[list[ClassCalibration], Field(max_length=MAX_CALIBRATED_CLASSES)] = []


class ReviewStats(WireModel):
    """The run's review numbers: totals, per class, per problem tag, quality and calibration."""

    total: Count = 0
    approved: Count = 0
    rejected: Count = 0
    unreviewed: Count = 0
    classes: Annotated[list[ClassStats], Field(max_length=MAX_CLASSES)] = []
    problem_tags: Annotated[dict[Tag, Count], Field(max_length=MAX_PROBLEM_TAGS)] = {}
    quality: QualityReport | None = None
    calibration: Calibration | None = None
