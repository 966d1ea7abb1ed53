"""The worker's configuration: one JSON document written by the controller (or by hand for local runs).

The controller writes it as the key ``worker.json`` of the run's snapshot
ConfigMap, mounted into every pod of the run and read with ``--config FILE``
(an environment variable, ``AUTOLABEL_WORKER_CONFIG``, still works for local
runs, but Linux caps one at 128 KiB: about 4,800 sampleIds). Keys are camelCase
like the CRD. The database URI never travels here: it comes from the env var
``FIFTYONE_DATABASE_URI`` (a secretKeyRef in the pod). The shard index comes
from ``JOB_COMPLETION_INDEX``.

Predictions go to ``stagingField`` (default ``<labelField>_in_review``), never
straight to ``labelField``: finalize copies approved labels over later. Each
processed sample also gets the run's uid in ``<stagingField>_run`` (the resume
marker, also set when a classification fell below the threshold and no label
was written); finalize and discard should drop that field with the staging one.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

STAGING_FIELD_SUFFIX = "_in_review"
MARKER_FIELD_SUFFIX = "_run"
RUN_ATTRIBUTE = "autolabel_run"
"""Attribute set on every predicted label (and its container): the run's uid. Resume keys on it."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Task(StrEnum):
    CLASSIFICATION = "classification"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"


class Protocol(StrEnum):
    GRPC = "grpc"
    HTTP = "http"


class OutputFormat(StrEnum):
    """How the model's output tensors are laid out; which ones fit depends on the task."""

    LOGITS = "logits"  # classification, segmentation: scores before softmax
    PROBABILITIES = "probabilities"  # classification, segmentation: scores after softmax/sigmoid
    CLASS_IDS = "class_ids"  # segmentation: one integer class per pixel
    BOXES_SCORES_LABELS = "boxes_scores_labels"  # detection: three tensors
    YOLO = "yolo"  # detection: one tensor [N, 4 + C] (v8) or [N, 5 + C] (v5), NMS done here


class BoxFormat(StrEnum):
    XYXY = "xyxy"
    XYWH = "xywh"
    CXCYWH = "cxcywh"


class InputLayout(StrEnum):
    NHWC = "NHWC"
    NCHW = "NCHW"


class InputMode(StrEnum):
    DECODED = "decoded"  # the worker decodes and resizes; pixels go to Triton
    ENCODED = "encoded"  # the file's bytes go to Triton (a BYTES tensor); the model repository decodes


class RunIdentity(_Model):
    namespace: str
    name: str
    uid: str


class Target(_Model):
    """Which samples to label: at most one of view / tags / sampleIds; none means the whole dataset."""

    view: str | None = None
    tags: list[str] | None = None
    sample_ids: list[str] | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        chosen = [key for key in ("view", "tags", "sample_ids") if getattr(self, key) is not None]
        if len(chosen) > 1:
            raise ValueError(f"target takes at most one of view, tags, sampleIds; got {chosen}")
        return self


class TensorNames(_Model):
    """Tensor names; any left empty are taken from the model's metadata when unambiguous."""

    input: str | None = None
    output: str | None = None  # classification, segmentation, yolo
    boxes: str = "BOXES"
    scores: str = "SCORES"
    labels: str = "LABELS"


class EmbeddingsConfig(_Model):
    """Embeddings stored per sample: a tensor of the main model, or of a second model fed the same input."""

    tensor: str
    field: str
    model: str | None = None  # None: the main model
    version: str = ""


class ModelConfig(_Model):
    url: str
    protocol: Protocol = Protocol.GRPC
    name: str
    version: str = ""
    output_format: OutputFormat
    tensors: TensorNames = TensorNames()
    input: InputMode = InputMode.DECODED
    input_size: tuple[int, int] | None = None  # (height, width); default: the model's fixed input dims
    input_layout: InputLayout | None = None  # default: guessed from the input shape (channels of 3)
    normalize_mean: tuple[float, float, float] | None = None  # float inputs: (x/255 - mean) / std
    normalize_std: tuple[float, float, float] | None = None
    classes: list[str] | None = None  # class names by index; default: the model's label file
    keep_classes: list[str] | None = None  # keep only labels of these classes
    confidence_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    box_format: BoxFormat = BoxFormat.XYXY
    boxes_normalized: bool = True  # False: box coordinates are pixels of the model input
    nms_iou_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.45  # yolo only
    store_logits: bool = False  # classification only
    embeddings: EmbeddingsConfig | None = None
    timeout_s: Annotated[float, Field(gt=0)] = 60.0


class PathRewrite(_Model):
    """Rewrite sample filepaths that start with ``from`` (as stored) to start with ``to`` (as mounted)."""

    from_: str = Field(alias="from")
    to: str


class ProgressChannel(_Model):
    """Where progress goes: a key ``shard-<index>`` in a ConfigMap, or nowhere but stdout."""

    kind: str = Field(default="none", pattern="^(configmap|none)$")
    config_map: str | None = None
    namespace: str | None = None  # default: the run's namespace
    interval_s: Annotated[float, Field(gt=0, le=5.0)] = 5.0

    @model_validator(mode="after")
    def _configmap_named(self) -> Self:
        if self.kind == "configmap" and not self.config_map:
            raise ValueError("progress kind configmap needs configMap")
        return self


class WriteConcernMode(StrEnum):
    MAJORITY = "majority"  # w=majority, j=true: journaled on a standalone server, majority on a replica set
    JOURNALED = "journaled"  # w=1, j=true: journaled on the primary only


class DatabaseWrites(_Model):
    """How the run's writes reach the database: the write concern and how long errors are retried."""

    write_concern: WriteConcernMode = WriteConcernMode.MAJORITY
    patience_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


class WorkerConfig(_Model):
    run: RunIdentity
    dataset: str
    target: Target = Target()
    shards: Annotated[int, Field(ge=1)] = 1
    label_field: str
    staging_field: str | None = None
    task: Task
    model: ModelConfig
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 1  # images per Triton request
    max_in_flight: Annotated[int, Field(ge=1, le=1024)] = 16
    decode_threads: Annotated[int, Field(ge=1, le=64)] = 2
    write_batch_size: Annotated[int, Field(ge=1, le=10000)] = 128
    page_size: Annotated[int, Field(ge=1, le=100000)] = 1000
    media_path_rewrite: list[PathRewrite] = []
    mask_dir: str | None = None  # segmentation: write masks as PNG files here instead of inline
    progress: ProgressChannel = ProgressChannel()
    database: DatabaseWrites = DatabaseWrites()

    @model_validator(mode="after")
    def _format_fits_task(self) -> Self:
        allowed = {
            Task.CLASSIFICATION: {OutputFormat.LOGITS, OutputFormat.PROBABILITIES},
            Task.DETECTION: {OutputFormat.BOXES_SCORES_LABELS, OutputFormat.YOLO},
            Task.SEGMENTATION: {OutputFormat.LOGITS, OutputFormat.PROBABILITIES, OutputFormat.CLASS_IDS},
        }[self.task]
        if self.model.output_format not in allowed:
            names = ", ".join(sorted(allowed))
            raise ValueError(
                f"outputFormat {self.model.output_format} does not fit task {self.task}: use {names}"
            )
        if self.staging_field == self.label_field:
            raise ValueError("stagingField must differ from labelField")
        return self

    @property
    def staging(self) -> str:
        """The field predictions are written to until finalize."""
        return self.staging_field or f"{self.label_field}{STAGING_FIELD_SUFFIX}"

    @property
    def marker_field(self) -> str:
        """Sample field holding the uid of the run that wrote the sample's prediction (resume key)."""
        return f"{self.staging}{MARKER_FIELD_SUFFIX}"

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls.model_validate_json(text)

    @classmethod
    def from_file(cls, path: Path) -> WorkerConfig:
        return cls.from_json(path.read_text())
