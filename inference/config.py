"""The worker's configuration, as the worker imports it: re-exported from the shared `contract.worker`.

The document itself (fields, enums, suffixes) is defined once in `contract/worker.py`,
which the controller imports too; see there for how it travels to the pods.
"""

from __future__ import annotations

from contract.worker import (
    BOX_OUTPUT_FORMATS,
    EMBEDDINGS_FIELD_SUFFIX,
    LABEL_TYPES,
    LETTERBOX_FILL,
    MARKER_FIELD_SUFFIX,
    OUTPUT_FORMATS_BY_TASK,
    RUN_ATTRIBUTE,
    STAGING_FIELD_SUFFIX,
    BoxFormat,
    DatabaseWrites,
    EmbeddingsConfig,
    InputLayout,
    ModelConfig,
    OutputFormat,
    PathRewrite,
    ProgressChannel,
    Protocol,
    ResizeMode,
    RunIdentity,
    SourceConfig,
    Target,
    Task,
    TensorNames,
    WorkerConfig,
    WriteConcernMode,
)

__all__ = [
    "BOX_OUTPUT_FORMATS",
    "EMBEDDINGS_FIELD_SUFFIX",
    "LABEL_TYPES",
    "LETTERBOX_FILL",
    "MARKER_FIELD_SUFFIX",
    "OUTPUT_FORMATS_BY_TASK",
    "RUN_ATTRIBUTE",
    "STAGING_FIELD_SUFFIX",
    "BoxFormat",
    "DatabaseWrites",
    "EmbeddingsConfig",
    "InputLayout",
    "ModelConfig",
    "OutputFormat",
    "PathRewrite",
    "ProgressChannel",
    "Protocol",
    "ResizeMode",
    "RunIdentity",
    "SourceConfig",
    "Target",
    "Task",
    "TensorNames",
    "WorkerConfig",
    "WriteConcernMode",
]
