"""The AutoLabelRun API (autolabel.dev/v1alpha1): pydantic models that are the single source of truth.

The CRD under `crds/` is generated from these models by `python -m controller.crdgen`.
"""

from controller.api.conditions import derive_phase, find_condition, is_true, set_condition
from controller.api.constants import (
    API_VERSION,
    CATEGORIES,
    CRD_NAME,
    GROUP,
    KIND,
    KUEUE_QUEUE_LABEL,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    AnyReason,
    ConditionStatus,
    ConditionType,
    Phase,
    Reason,
    ShardState,
)
from controller.api.dataset import DatasetSpec, MediaSpec, PathRewrite, SecretKeyRef, TargetSelector
from controller.api.execution import ExecutionSpec
from controller.api.model import EmbeddingsSpec, ModelSpec, TritonEndpoint, TritonSidecar
from controller.api.review import ReviewRule, ReviewSpec
from controller.api.run import AutoLabelRun, parse_spec, status_patch
from controller.api.spec import AutoLabelRunSpec, DeletionPolicy, transition_errors
from controller.api.status import (
    AutoLabelRunStatus,
    ClassStatistics,
    Condition,
    ProgressStatus,
    QualityStatus,
    ReviewStatus,
    ShardStatus,
)

__all__ = [
    "API_VERSION",
    "CATEGORIES",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "KUEUE_QUEUE_LABEL",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "AnyReason",
    "AutoLabelRun",
    "AutoLabelRunSpec",
    "AutoLabelRunStatus",
    "ClassStatistics",
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "DatasetSpec",
    "DeletionPolicy",
    "EmbeddingsSpec",
    "ExecutionSpec",
    "MediaSpec",
    "ModelSpec",
    "PathRewrite",
    "Phase",
    "ProgressStatus",
    "QualityStatus",
    "Reason",
    "ReviewRule",
    "ReviewSpec",
    "ReviewStatus",
    "SecretKeyRef",
    "ShardState",
    "ShardStatus",
    "TargetSelector",
    "TritonEndpoint",
    "TritonSidecar",
    "derive_phase",
    "find_condition",
    "is_true",
    "parse_spec",
    "set_condition",
    "status_patch",
    "transition_errors",
]
