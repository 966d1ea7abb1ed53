"""The review part of the spec: declarative approve/reject rules, problem tags and quality settings.

`ReviewRule.matches` and `ReviewSpec.decide` define the rule semantics once, for the
controller and the CLI alike.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from contract.review import DEFAULT_PROBLEM_TAGS, Decision, VisualizationMethod, rule_matches
from controller.api.common import LIST_OF_UNIQUE_VALUES, ApiModel, FieldName, cel_rule, cel_rules

ClassName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ProblemTag = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class ReviewRule(ApiModel):
    """Selects labels of the given classes (default all) with minConfidence <= confidence < maxConfidence.

    A maxConfidence of 1 includes confidence 1. A rule without any criterion selects every label.
    """

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "!has(self.minConfidence) || !has(self.maxConfidence)"
                " || self.minConfidence < self.maxConfidence",
                "minConfidence must be below maxConfidence",
                field_path=".minConfidence",
            )
        )
    )

    classes: list[ClassName] | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Label classes the rule applies to; default all.",
        json_schema_extra=LIST_OF_UNIQUE_VALUES,
    )
    min_confidence: float | None = Field(
        default=None, ge=0, le=1, description="Lowest confidence selected (inclusive)."
    )
    max_confidence: float | None = Field(
        default=None, ge=0, le=1, description="Confidence selected must be below this (1 includes 1)."
    )

    @model_validator(mode="after")
    def _range_ordered(self) -> Self:
        if (
            self.min_confidence is not None
            and self.max_confidence is not None
            and self.min_confidence >= self.max_confidence
        ):
            raise ValueError("minConfidence must be below maxConfidence")
        return self

    def matches(self, label: str, confidence: float | None) -> bool:
        """Whether a label of class `label` with `confidence` (None when the model gives none) is selected."""
        return rule_matches(self.classes, self.min_confidence, self.max_confidence, label, confidence)


class AutoApproveSpec(ApiModel):
    """Calibrated auto-approval: people review a random verification sample; per class, labels at or above
    the lowest confidence whose exact lower precision bound meets targetPrecision are approved for them.
    """

    target_precision: float = Field(
        gt=0,
        lt=1,
        description="Precision the auto-approved labels of a class must have, e.g. 0.98.",
    )
    confidence_level: float = Field(
        default=0.95,
        ge=0.5,
        lt=1,
        description="Probability that the promise holds: the one-sided Clopper-Pearson bound's level.",
    )
    min_reviewed_per_class: int = Field(
        default=30,
        ge=1,
        le=10000,
        description="Reviewed sample labels a class needs before any of its labels is auto-approved.",
    )
    sample_per_class: int = Field(
        default=100,
        ge=1,
        le=10000,
        description="Labels per class drawn into the verification sample (stratified by confidence).",
    )
    confidence_bands: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Confidence bands the sample is stratified over (equal-count bands of each class).",
    )


class ReviewSpec(ApiModel):
    """How the run's predictions are reviewed: rules applied by the controller, tags and quality metrics."""

    approve: list[ReviewRule] = Field(
        default_factory=list, max_length=64, description="Labels matching any of these rules are approved."
    )
    reject: list[ReviewRule] = Field(
        default_factory=list,
        max_length=64,
        description="Labels matching any of these rules are rejected; reject wins over approve.",
    )
    problem_tags: list[ProblemTag] = Field(
        default=list(DEFAULT_PROBLEM_TAGS),
        max_length=32,
        description="Label tags reviewers use to flag problems; status.review counts each.",
        json_schema_extra=LIST_OF_UNIQUE_VALUES,
    )
    ground_truth_field: FieldName | None = Field(
        default=None,
        description="A field holding ground truth; status.review.quality then reports precision and recall.",
    )
    iou_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="IoU at which a detection matches ground truth (detection quality only).",
    )
    refresh_interval_seconds: int = Field(
        default=30, ge=5, le=3600, description="How often status.review is recomputed while in Review."
    )
    visualization_method: VisualizationMethod = Field(
        default=VisualizationMethod.PCA, description="Embeddings plot method: pca (default), tsne or umap."
    )
    auto_approve: AutoApproveSpec | None = Field(
        default=None,
        description="Calibrated auto-approval from a reviewed verification sample (detection and "
        "classification).",
    )

    def decide(self, label: str, confidence: float | None) -> Decision | None:
        """The decision the rules make for one label; None when no rule matches."""
        if any(rule.matches(label, confidence) for rule in self.reject):
            return Decision.REJECTED
        if any(rule.matches(label, confidence) for rule in self.approve):
            return Decision.APPROVED
        return None
