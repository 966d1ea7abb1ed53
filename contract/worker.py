"""The worker's configuration: one JSON document written by the controller (or by hand for local runs).

The controller builds it (`controller.worker_contract.worker_config`) and writes it as
the key ``worker.json`` of the run's snapshot ConfigMap, mounted into every pod of the
run and read with ``--config FILE`` (an environment variable, ``AUTOLABEL_WORKER_CONFIG``,
still works for local runs, but Linux caps one at 128 KiB: about 4,800 sampleIds). Keys
are camelCase like the CRD. The database URI never travels here: it comes from the env
var ``FIFTYONE_DATABASE_URI`` (a secretKeyRef in the pod). The shard index comes from
``JOB_COMPLETION_INDEX``.

Predictions go to ``stagingField`` (default ``<labelField>_in_review``), never
straight to ``labelField``: finalize copies approved labels over later. Each
processed sample also gets the run's uid in ``<stagingField>_run`` (the resume
marker, also set when a classification fell below the threshold and no label
was written); finalize and discard should drop that field with the staging one.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

STAGING_FIELD_SUFFIX = "_in_review"
MARKER_FIELD_SUFFIX = "_run"
EMBEDDINGS_FIELD_SUFFIX = "_embeddings"
"""Default embeddings field: ``<labelField>_embeddings``."""
RUN_ATTRIBUTE = "autolabel_run"
"""Attribute set on every predicted label (and its container): the run's uid. Resume keys on it."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Task(StrEnum):
    """The kind of labels a run produces."""

    DETECTION = "detection"
    CLASSIFICATION = "classification"
    SEGMENTATION = "segmentation"


class Protocol(StrEnum):
    GRPC = "grpc"
    HTTP = "http"


class OutputFormat(StrEnum):
    """How the model's output tensors are laid out (the output adapter); which fit depends on the task."""

    BOXES = "boxes"  # detection: boxes [N, 4], scores [N], labels [N]
    YOLO = "yolo"  # detection: one [N, 4 + C] (v8) or [N, 5 + C] (v5) tensor, NMS done by the worker
    EFFICIENT_NMS = "efficient_nms"  # detection: TensorRT EfficientNMS num_dets, det_boxes/scores/classes
    LOGITS = "logits"  # classification, segmentation: scores before softmax (sigmoid for one channel)
    PROBABILITIES = "probabilities"  # classification, segmentation: scores after softmax/sigmoid
    MASK = "mask"  # segmentation: class ids per pixel (integer tensor) or class scores (float tensor)


OUTPUT_FORMATS_BY_TASK: Final[dict[Task, tuple[OutputFormat, ...]]] = {
    Task.DETECTION: (OutputFormat.BOXES, OutputFormat.YOLO, OutputFormat.EFFICIENT_NMS),
    Task.CLASSIFICATION: (OutputFormat.LOGITS, OutputFormat.PROBABILITIES),
    Task.SEGMENTATION: (OutputFormat.MASK, OutputFormat.LOGITS, OutputFormat.PROBABILITIES),
}
SegmenterFormat = Literal[OutputFormat.MASK, OutputFormat.LOGITS, OutputFormat.PROBABILITIES]
"""The formats a segmenter's output may have: task segmentation's (OUTPUT_FORMATS_BY_TASK)."""
BOX_OUTPUT_FORMATS: Final = (OutputFormat.BOXES, OutputFormat.YOLO, OutputFormat.EFFICIENT_NMS)
"""The formats whose boxes boxFormat and boxCoordinates describe."""
LEGACY_OUTPUT_FORMATS: Final = {"boxes_scores_labels": OutputFormat.BOXES, "class_ids": OutputFormat.MASK}
"""Worker-only names of earlier versions, still read from hand-written configurations."""


class BoxFormat(StrEnum):
    XYXY = "xyxy"
    XYWH = "xywh"
    CXCYWH = "cxcywh"


class InputLayout(StrEnum):
    NHWC = "NHWC"
    NCHW = "NCHW"


class InputMode(StrEnum):
    """What the worker sends Triton for each image (``model.input``)."""

    DECODED = "decoded"  # the worker decodes and resizes; pixels go to Triton
    ENCODED = "encoded"  # the file's bytes go to Triton (a BYTES tensor); the model repository decodes


class ResizeMode(StrEnum):
    """How an image is fitted to the model's input size."""

    STRETCH = "stretch"  # the whole image resized to the input (aspect not kept)
    LETTERBOX = "letterbox"  # aspect kept, centred, the rest padded with LETTERBOX_FILL


LETTERBOX_FILL: Final = 114
"""Grey level (0-255, before scaling and normalisation) of the letterbox padding, as YOLO trains with."""


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

    input: str | None = None  # the image input
    text: str | None = None  # zero-shot: the BYTES input taking the prompts; default: the only BYTES input
    output: str | None = None  # classification, segmentation, yolo
    boxes: str | None = None  # boxes: BOXES; efficient_nms: det_boxes
    scores: str | None = None  # boxes: SCORES; efficient_nms: det_scores
    labels: str | None = None  # boxes: LABELS; efficient_nms: det_classes
    count: str | None = None  # efficient_nms: num_dets
    masks: str | None = None  # boxes: per-box instance masks [N, h, w] (box-relative, or the whole input)

    def detection_outputs(self, output_format: OutputFormat) -> tuple[str, str, str, str | None]:
        """(boxes, scores, labels, count) tensor names, the format's usual names where none is set."""
        if output_format == OutputFormat.EFFICIENT_NMS:
            return (
                self.boxes or "det_boxes",
                self.scores or "det_scores",
                self.labels or "det_classes",
                self.count or "num_dets",
            )
        return (self.boxes or "BOXES", self.scores or "SCORES", self.labels or "LABELS", None)


class EmbeddingsConfig(_Model):
    """Embeddings stored per sample: a tensor of the main model, or of a second model fed the same input."""

    tensor: str
    field: str
    model: str | None = None  # None: the main model
    version: str = ""


class SegmenterConfig(_Model):
    """Two-stage instance segmentation: a second model on the same server segments each detected box.

    Each box (of ``classes``, default all) is cut from the full-resolution image, stretched to the
    segmenter's input and preprocessed as set here; its mask (non-zero class ids, or scores over
    0.5) becomes the box's instance mask.
    """

    name: str
    version: str = ""
    output_format: SegmenterFormat = OutputFormat.PROBABILITIES
    tensors: TensorNames = TensorNames()  # input and output
    scale: bool = True
    normalize_mean: tuple[float, float, float] | None = None
    normalize_std: tuple[float, float, float] | None = None
    classes: list[str] | None = None

    @model_validator(mode="after")
    def _paired(self) -> Self:
        if (self.normalize_mean is None) != (self.normalize_std is None):
            raise ValueError("segmenter mean and std go together: set both or neither")
        return self


class ModelConfig(_Model):
    url: str
    protocol: Protocol = Protocol.GRPC
    name: str
    version: str = ""
    output_format: OutputFormat
    tensors: TensorNames = TensorNames()
    input_size: tuple[int, int] | None = None  # (height, width); default: the model's fixed input dims
    input_layout: InputLayout | None = None  # default: guessed from the input shape (channels of 3)
    input: InputMode = InputMode.DECODED
    resize: ResizeMode = ResizeMode.STRETCH
    scale: bool = True  # float inputs: pixels divided by 255 (0-1) before normalisation; False keeps 0-255
    normalize_mean: tuple[float, float, float] | None = None  # float inputs: (x - mean) / std per channel
    normalize_std: tuple[float, float, float] | None = None
    classes: list[str] | None = None  # class names by index; default: the model's label file
    keep_classes: list[str] | None = None  # keep only labels of these classes
    zero_shot: bool = False  # classes are sent as text prompts; output index i is prompt i
    confidence_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    box_format: BoxFormat | None = None  # default: cxcywh for yolo, xyxy otherwise
    boxes_normalized: bool | None = None  # False: pixels of the model input; default: normalized for boxes
    nms_iou_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.45  # yolo only
    store_logits: bool = False  # classification only
    embeddings: EmbeddingsConfig | None = None
    segmenter: SegmenterConfig | None = None  # detection: masks for the boxes from a second model
    timeout_s: Annotated[float, Field(gt=0)] = 60.0

    @model_validator(mode="before")
    @classmethod
    def _legacy_format_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            key = "outputFormat" if "outputFormat" in data else "output_format"
            legacy = LEGACY_OUTPUT_FORMATS.get(str(data.get(key)))
            if legacy is not None:
                data = {**data, key: legacy}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.normalize_mean is None) != (self.normalize_std is None):
            raise ValueError("normalizeMean and normalizeStd go together: set both or neither")
        if self.zero_shot and not self.classes:
            raise ValueError("zeroShot needs the prompts in classes")
        if self.normalize_std is not None and any(value <= 0 for value in self.normalize_std):
            raise ValueError(f"normalizeStd must be positive; got {list(self.normalize_std)}")
        return self

    @property
    def resolved_box_format(self) -> BoxFormat:
        """The layout of one box: as configured, else what the output format's models usually emit."""
        if self.box_format is not None:
            return self.box_format
        return BoxFormat.CXCYWH if self.output_format == OutputFormat.YOLO else BoxFormat.XYXY

    @property
    def resolved_boxes_normalized(self) -> bool:
        """Whether boxes are relative (0-1) to the model input; YOLO and TensorRT NMS exports give pixels."""
        if self.boxes_normalized is not None:
            return self.boxes_normalized
        return self.output_format == OutputFormat.BOXES


class PathRewrite(_Model):
    """Rewrite sample filepaths that start with ``from`` (as stored) to start with ``to`` (as mounted)."""

    from_: str = Field(alias="from")
    to: str


OBJECT_URL_SCHEMES: Final = ("s3://", "https://", "http://")
"""Sample filepaths (and a maskDir: s3 only) starting so are objects the worker reads over the network."""


def is_object_url(path: str) -> bool:
    return path.startswith(OBJECT_URL_SCHEMES)


class ObjectStoreConfig(_Model):
    """How the worker reaches ``s3://`` URLs: the endpoint and region; credentials never travel here.

    The credentials are the standard variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, optionally
    AWS_SESSION_TOKEN) that the pod takes from the Secret named in the spec, or the pod's workload
    identity when none is named. ``credentials_secret`` is that Secret's name, only for messages.
    """

    endpoint: str | None = None  # None: AWS S3 of the region
    region: str | None = None
    path_style: bool = True  # bucket in the path (MinIO, Ceph); False: virtual-hosted (bucket.host)
    credentials_secret: str | None = None
    fetch_concurrency: Annotated[int, Field(ge=1, le=256)] = 32  # GETs in flight per worker


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


class SourceConfig(_Model):
    """Labels taken from an existing field of the dataset instead of a model (review existing labels).

    The field is only read: its labels are copied, as the run's predictions, into the staging field.
    """

    field: str
    confidence_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0  # labels below it are not copied


LABEL_TYPES: Final = {
    Task.CLASSIFICATION: "Classification",
    Task.DETECTION: "Detections",
    Task.SEGMENTATION: "Segmentation",
}
"""The FiftyOne label type each task writes (and a source field must hold)."""


class WorkerConfig(_Model):
    run: RunIdentity
    dataset: str
    target: Target = Target()
    shards: Annotated[int, Field(ge=1)] = 1
    label_field: str
    staging_field: str | None = None
    task: Task
    model: ModelConfig | None = None  # exactly one of model and source
    source: SourceConfig | None = None
    batch_size: Annotated[int, Field(ge=1, le=1024)] = 1  # images per Triton request
    max_in_flight: Annotated[int, Field(ge=1, le=1024)] = 16
    decode_threads: Annotated[int, Field(ge=1, le=64)] = 2
    write_batch_size: Annotated[int, Field(ge=1, le=10000)] = 128
    page_size: Annotated[int, Field(ge=1, le=100000)] = 1000
    media_path_rewrite: list[PathRewrite] = []
    mask_dir: str | None = None  # segmentation: write masks as PNG files (or s3:// objects) here
    object_store: ObjectStoreConfig = ObjectStoreConfig()
    progress: ProgressChannel = ProgressChannel()
    database: DatabaseWrites = DatabaseWrites()

    @model_validator(mode="after")
    def _format_fits_task(self) -> Self:
        if (self.model is None) == (self.source is None):
            raise ValueError("exactly one of model and source must be set")
        if self.source is not None and self.source.field in (self.label_field, self.staging):
            raise ValueError("source.field must differ from labelField and the staging field")
        allowed = OUTPUT_FORMATS_BY_TASK[self.task]
        if self.model is not None and self.model.segmenter is not None and self.task != Task.DETECTION:
            raise ValueError("model.segmenter applies only to task detection (it segments the boxes)")
        if self.model is not None and self.model.output_format not in allowed:
            names = ", ".join(allowed)
            raise ValueError(
                f"outputFormat {self.model.output_format} does not fit task {self.task}: use {names}"
            )
        if self.staging_field == self.label_field:
            raise ValueError("stagingField must differ from labelField")
        return self

    @property
    def embeddings(self) -> EmbeddingsConfig | None:
        """Where embeddings are stored, when the run's model computes them."""
        return self.model.embeddings if self.model is not None else None

    def triton_model(self) -> ModelConfig:
        """The model that labels the run; a run of existing labels (source) has none."""
        if self.model is None:
            raise ValueError(f"run {self.run.name} takes its labels from source.field: it has no model")
        return self.model

    @property
    def staging(self) -> str:
        """The field predictions are written to until finalize."""
        return self.staging_field or f"{self.label_field}{STAGING_FIELD_SUFFIX}"

    @property
    def marker_field(self) -> str:
        """Sample field holding the uid of the run that wrote the sample's prediction (resume key)."""
        return f"{self.staging}{MARKER_FIELD_SUFFIX}"

    def to_json(self) -> str:
        """The camelCase JSON document the worker reads (keys sorted: the same run gives the same bytes)."""
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls.model_validate_json(text)

    @classmethod
    def from_file(cls, path: Path) -> WorkerConfig:
        return cls.from_json(path.read_text())
