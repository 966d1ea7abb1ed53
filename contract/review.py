"""The review configuration a run's review and finalize steps get, the decisions and the tags they write.

The controller builds `ReviewConfig` from ``spec.review`` and passes it as JSON
(env ``AUTOLABEL_REVIEW_CONFIG``, camelCase keys, or inside the review agent's
request); the worker's review commands read it. Its lists and names are bounded as
spec.review's are.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from contract.wire import ClassName, FieldName, Tag


class Decision(StrEnum):
    """What the rules of a spec decide for one label."""

    APPROVED = "approved"
    REJECTED = "rejected"


class VisualizationMethod(StrEnum):
    """Dimensionality reduction of the embeddings plot (fiftyone-brain compute_visualization)."""

    PCA = "pca"
    TSNE = "tsne"
    UMAP = "umap"


APPROVED_TAG: Final = "autolabel:approved"
REJECTED_TAG: Final = "autolabel:rejected"
DECISION_TAGS: Final[dict[str, str]] = {Decision.APPROVED: APPROVED_TAG, Decision.REJECTED: REJECTED_TAG}
DECISION_ATTRIBUTE: Final = "autolabel_decision"
"""Label attribute naming the decision a spec rule made (absent on labels no rule decided)."""
APPROVED_BY_ATTRIBUTE: Final = "autolabel_approved_by"
"""Set by finalize on every kept label: ``person``, ``rule`` or ``calibration`` (who approved it)."""
DEFAULT_PROBLEM_TAGS: Final = (
    "needs_correction",
    "false_positive",
    "wrong_class",
    "poor_bbox",
    "missing_object",
    "low_confidence",
    "ambiguous",
)
"""The seven problem tags of the reference workflow guide."""
MAX_RULES: Final = 64
MAX_RULE_CLASSES: Final = 256
MAX_PROBLEM_TAGS: Final = 32
"""The bounds of spec.review: what the controller sends always fits them."""


class _Model(BaseModel):
    # extra="ignore": the controller may pass settings only it uses (refreshIntervalSeconds).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


def rule_matches(
    classes: Collection[str] | None,
    min_confidence: float | None,
    max_confidence: float | None,
    label: str,
    confidence: float | None,
) -> bool:
    """The rule semantics, once for both sides: classes (default all), min <= confidence < max.

    A max of 1 includes 1; a rule with a confidence bound never selects a label without confidence.
    """
    if classes is not None and label not in classes:
        return False
    if min_confidence is None and max_confidence is None:
        return True
    if confidence is None:
        return False
    if min_confidence is not None and confidence < min_confidence:
        return False
    if max_confidence is None or max_confidence >= 1:
        return True
    return confidence < max_confidence


class Rule(_Model):
    """One approve/reject rule: classes (default all), minConfidence <= confidence < maxConfidence."""

    classes: Annotated[list[ClassName], Field(max_length=MAX_RULE_CLASSES)] | None = None
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    max_confidence: float | None = Field(default=None, ge=0, le=1)

    def matches(self, label: str, confidence: float | None) -> bool:
        return rule_matches(self.classes, self.min_confidence, self.max_confidence, label, confidence)


class AutoApproveConfig(_Model):
    """``spec.review.autoApprove``: calibrated auto-approval (see review/auto_approve.py)."""

    target_precision: float = Field(gt=0, lt=1)
    confidence_level: float = Field(default=0.95, ge=0.5, lt=1)
    min_reviewed_per_class: int = Field(default=30, ge=1, le=10000)
    sample_per_class: int = Field(default=100, ge=1, le=10000)
    confidence_bands: int = Field(default=5, ge=1, le=20)


class ReviewConfig(_Model):
    """The run's ``spec.review`` as the controller passes it (env ``AUTOLABEL_REVIEW_CONFIG``, camelCase)."""

    approve: Annotated[list[Rule], Field(max_length=MAX_RULES)] = []
    reject: Annotated[list[Rule], Field(max_length=MAX_RULES)] = []
    problem_tags: Annotated[list[Tag], Field(max_length=MAX_PROBLEM_TAGS)] = list(DEFAULT_PROBLEM_TAGS)
    ground_truth_field: FieldName | None = None
    iou_threshold: float = Field(default=0.5, gt=0, le=1)
    visualization_method: VisualizationMethod = VisualizationMethod.PCA
    auto_approve: AutoApproveConfig | None = None

    def decide(self, label: str, confidence: float | None) -> Decision | None:
        """The decision the rules make for one label (reject rules first); None when no rule matches."""
        if any(rule.matches(label, confidence) for rule in self.reject):
            return Decision.REJECTED
        if any(rule.matches(label, confidence) for rule in self.approve):
            return Decision.APPROVED
        return None

    def document(self) -> dict[str, Any]:
        """The camelCase JSON-compatible form the worker's review commands read."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        return json.dumps(self.document(), sort_keys=True)
