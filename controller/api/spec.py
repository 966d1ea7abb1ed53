"""The AutoLabelRun spec as a whole: task, dataset, model, output field, execution, review, lifecycle.

Cross-field rules live twice by design: as CEL rules in the CRD (refused at apply time) and
as pydantic validators (the controller never acts on a spec the server would refuse).
Rules that compare old and new objects are in `transition_errors`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import ConfigDict, Field, model_validator

from contract.worker import OUTPUT_FORMATS_BY_TASK, Task
from controller.api.common import (
    NORMAL_PATH_MESSAGE,
    ApiModel,
    FieldName,
    MaskLocation,
    cel_rule,
    cel_rules,
    is_under,
    section,
    under_rule,
)
from controller.api.constants import RESERVED_FIELD_NAMES
from controller.api.dataset import DatasetSpec
from controller.api.execution import ExecutionSpec
from controller.api.model import ModelSpec
from controller.api.review import ReviewSpec


class DeletionPolicy(StrEnum):
    """What deleting a run does to its predictions that were not finalized."""

    RETAIN = "retain"
    DELETE = "delete"


def _output_format_rule() -> str:
    clauses = [
        f"self.task == '{task.value}' ? self.model.outputFormat in [{', '.join(repr(f.value) for f in fits)}]"
        for task, fits in OUTPUT_FORMATS_BY_TASK.items()
    ]
    return "!has(self.model) || (" + " : ".join(clauses) + " : false)"


OUTPUT_FORMAT_MESSAGE = "model.outputFormat must fit the task: " + "; ".join(
    f"{task.value} takes {' or '.join(f.value for f in fits)}"
    for task, fits in OUTPUT_FORMATS_BY_TASK.items()
)

_RESERVED_LIST = ", ".join(repr(name) for name in RESERVED_FIELD_NAMES)

STAGING_SUFFIX = "_in_review"
MASK_DIR_MESSAGE = (
    "maskDir must lie under a writable dataset.media volume (persistentVolumeClaim.mountPath, readOnly "
    "false), or be an s3://bucket/prefix URL with dataset.media.s3 set"
)
MODEL_OR_SOURCE_MESSAGE = (
    "exactly one of model (label with a Triton model) or source (review the labels of an existing field) "
    "must be set"
)

SPEC_RULES = cel_rules(
    cel_rule("has(self.model) != has(self.source)", MODEL_OR_SOURCE_MESSAGE, field_path=".model"),
    cel_rule(
        f"!has(self.source) || (self.source.field != self.labelField && "
        f"self.source.field != self.labelField + '{STAGING_SUFFIX}')",
        "source.field must differ from labelField and from labelField + '_in_review' (the run writes those)",
        field_path=".source.field",
    ),
    cel_rule(
        "!has(self.model) || !has(self.model.segmenter) || self.task == 'detection'",
        "model.segmenter applies only to task detection (it segments the detected boxes)",
        field_path=".model.segmenter",
    ),
    cel_rule(
        "!self.storeLogits || has(self.model)",
        "storeLogits needs a model: a source run copies existing labels",
        field_path=".storeLogits",
    ),
    cel_rule(
        _output_format_rule(),
        OUTPUT_FORMAT_MESSAGE,
        field_path=".model.outputFormat",
    ),
    cel_rule(
        "!has(self.maskDir) || self.task == 'segmentation'",
        "maskDir applies only to task segmentation",
        field_path=".maskDir",
    ),
    cel_rule(
        "!has(self.maskDir) || (self.maskDir.startsWith('s3://') ? "
        "(has(self.dataset.media) && has(self.dataset.media.s3)) : "
        "(has(self.dataset.media) && has(self.dataset.media.persistentVolumeClaim)"
        " && !self.dataset.media.persistentVolumeClaim.readOnly"
        " && " + under_rule("self.maskDir", "self.dataset.media.persistentVolumeClaim.mountPath") + "))",
        MASK_DIR_MESSAGE,
        field_path=".maskDir",
    ),
    cel_rule(
        "!self.storeLogits || self.task == 'classification'",
        "storeLogits applies only to task classification",
        field_path=".storeLogits",
    ),
    cel_rule(
        "!has(self.review.groundTruthField) || self.review.groundTruthField != self.labelField",
        "review.groundTruthField must differ from labelField",
        field_path=".review.groundTruthField",
    ),
    cel_rule(
        "!has(self.review.autoApprove) || self.task != 'segmentation'",
        "review.autoApprove applies to detection and classification (masks carry no per-label confidence)",
        field_path=".review.autoApprove",
    ),
    cel_rule(
        "!(self.finalize && self.discard)",
        "finalize and discard cannot both be true",
        field_path=".discard",
    ),
    cel_rule(
        "!(has(oldSelf.finalize) && oldSelf.finalize) || self.finalize",
        "finalize cannot be undone once true",
        field_path=".finalize",
    ),
    cel_rule(
        "!(has(oldSelf.discard) && oldSelf.discard) || self.discard",
        "discard cannot be undone once true",
        field_path=".discard",
    ),
)

LABEL_FIELD_RULES = cel_rules(
    cel_rule("self == oldSelf", "labelField is immutable once set"),
    cel_rule(f"!(self in [{_RESERVED_LIST}])", "labelField must not be a field FiftyOne manages itself"),
)


class SourceSpec(ApiModel):
    """Existing labels to review instead of running a model (the reference's "analyze existing labels")."""

    field: FieldName = Field(
        description="A label field of the dataset (Classification, Detections or Segmentation, as the task) "
        "whose labels, with their confidences, are copied into review; it is only read, never modified."
    )


class AutoLabelRunSpec(ApiModel):
    """Desired state of an AutoLabelRun: label a dataset's target samples with a Triton model, then review."""

    model_config = ConfigDict(json_schema_extra=SPEC_RULES)

    task: Task = Field(description="What to produce: detection, classification or segmentation.")
    dataset: DatasetSpec = Field(
        description="The FiftyOne dataset, the target samples and how to reach them."
    )
    model: ModelSpec | None = Field(
        default=None,
        description="The Triton model producing the labels and how to read its outputs (xor source).",
    )
    source: SourceSpec | None = Field(
        default=None,
        description="Review the labels of an existing field instead of running a model (xor model): "
        "predictions made elsewhere get the same review, rules and finalize. confidenceThreshold applies.",
    )
    label_field: FieldName = Field(
        description="New sample field receiving the approved labels; immutable. Letters, digits, underscore; "
        "starts with a letter or underscore; at most 63 characters.",
        json_schema_extra=LABEL_FIELD_RULES,
    )
    confidence_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Predictions below this confidence are dropped (0 to 1); default keep all.",
    )
    mask_dir: MaskLocation | None = Field(
        default=None,
        description="Segmentation only: write masks as PNG files under this directory (on the media volume) "
        f"or s3://bucket/prefix (with dataset.media.s3) instead of inline in the database; a path "
        f"{NORMAL_PATH_MESSAGE}.",
    )
    store_logits: bool = Field(
        default=False, description="Classification only: also store the logits of each prediction."
    )
    execution: ExecutionSpec = section(ExecutionSpec, "How the worker Job runs: shards, batching, resources.")
    review: ReviewSpec = section(ReviewSpec, "Review rules, problem tags and quality metrics.")
    finalize: bool = Field(
        default=False,
        description="True finalizes: approved labels stay in labelField, the rest are removed; irreversible.",
    )
    discard: bool = Field(
        default=False, description="Set true to remove every prediction of this run. Irreversible."
    )
    suspend: bool = Field(
        default=False,
        description="Suspend the worker Job (a queued run's Workload is deactivated in Kueue instead); "
        "resuming skips samples already labeled.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Delete the finished worker Job after this many seconds."
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="On deletion of the run: retain (default) or delete its unfinalized predictions. "
        "Finalized labels are always kept.",
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        errors = []
        if (self.model is None) == (self.source is None):
            errors.append(MODEL_OR_SOURCE_MESSAGE)
        written = (self.label_field, self.label_field + STAGING_SUFFIX)
        if self.source is not None and self.source.field in written:
            errors.append("source.field must differ from labelField and from labelField + '_in_review'")
        if self.model is not None and self.model.segmenter is not None and self.task is not Task.DETECTION:
            errors.append("model.segmenter applies only to task detection (it segments the detected boxes)")
        if self.store_logits and self.model is None:
            errors.append("storeLogits needs a model: a source run copies existing labels")
        if self.model is not None and self.model.output_format not in OUTPUT_FORMATS_BY_TASK[self.task]:
            errors.append(
                f"model.outputFormat {self.model.output_format.value} does not fit task {self.task.value}: "
                + OUTPUT_FORMAT_MESSAGE
            )
        if self.mask_dir is not None:
            media = self.dataset.media
            if self.task is not Task.SEGMENTATION:
                errors.append("maskDir applies only to task segmentation")
            elif self.mask_dir.startswith("s3://"):
                if media is None or media.s3 is None:
                    errors.append(MASK_DIR_MESSAGE)
            elif (
                media is None
                or media.persistent_volume_claim is None
                or media.persistent_volume_claim.read_only
                or not is_under(self.mask_dir, media.persistent_volume_claim.mount_path)
            ):
                errors.append(MASK_DIR_MESSAGE)
        if self.store_logits and self.task is not Task.CLASSIFICATION:
            errors.append("storeLogits applies only to task classification")
        if self.review.ground_truth_field == self.label_field:
            errors.append("review.groundTruthField must differ from labelField")
        if self.review.auto_approve is not None and self.task is Task.SEGMENTATION:
            errors.append("review.autoApprove applies to detection and classification")
        if self.finalize and self.discard:
            errors.append("finalize and discard cannot both be true")
        if self.label_field in RESERVED_FIELD_NAMES:
            errors.append("labelField must not be a field FiftyOne manages itself")
        if errors:
            raise ValueError("; ".join(errors))
        return self


def transition_errors(old: AutoLabelRunSpec, new: AutoLabelRunSpec) -> list[str]:
    """The update rules the CRD enforces with oldSelf, for callers that hold both versions."""
    errors = []
    if old.label_field != new.label_field:
        errors.append("labelField is immutable once set")
    if old.finalize and not new.finalize:
        errors.append("finalize cannot be undone once true")
    if old.discard and not new.discard:
        errors.append("discard cannot be undone once true")
    return errors
