"""The model part of the spec: which Triton server and model, and how to read the model's outputs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from contract.worker import (
    BOX_OUTPUT_FORMATS,
    LETTERBOX_FILL,
    BoxFormat,
    InputLayout,
    InputMode,
    OutputFormat,
    Protocol,
    ResizeMode,
)
from controller.api.common import (
    LIST_OF_UNIQUE_VALUES,
    NORMAL_PATH_MESSAGE,
    ApiModel,
    Channels,
    FieldName,
    PersistentVolumeMount,
    ResourceRequirements,
    TensorName,
    TritonName,
    cel_rule,
    cel_rules,
    is_under,
    section,
    under_rule,
)
from controller.api.segmenter import SegmenterSpec

# 1 to 65535, no leading zero.
PORT_PATTERN = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# The sidecar serves HTTP on grpcPort + 1 and metrics on grpcPort + 2.
SIDECAR_DERIVED_PORTS = 2


REPOSITORY_ON_VOLUME = (
    f"modelRepository must lie under volume.mountPath when a volume is given and {NORMAL_PATH_MESSAGE}"
)


class TritonEndpoint(ApiModel):
    """An existing Triton Inference Server the workers call."""

    address: str = Field(
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:" + PORT_PATTERN + "$",
        description="host:port of the server, e.g. triton.inference.svc:8001 (port 1 to 65535).",
    )
    protocol: Protocol = Field(default=Protocol.GRPC, description="grpc (default) or http.")


class TritonSidecar(ApiModel):
    """A Triton server started next to each worker (a native sidecar holding the GPU)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "!has(self.volume) || " + under_rule("self.modelRepository", "self.volume.mountPath"),
                REPOSITORY_ON_VOLUME,
                field_path=".modelRepository",
            )
        )
    )

    image: str = Field(min_length=1, max_length=1024, description="Triton server image.")
    model_repository: str = Field(
        min_length=1,
        max_length=1024,
        description="Model repository passed as --model-repository: a path or an s3://, gs://, as:// URI.",
    )
    volume: PersistentVolumeMount | None = Field(
        default=None, description="A PVC holding the model repository."
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Resources of the Triton container; put the GPU here (nvidia.com/gpu: 1)."
    )
    grpc_port: int = Field(
        default=8001,
        ge=1024,
        le=65535 - SIDECAR_DERIVED_PORTS,
        description="Port of Triton's gRPC endpoint on localhost; HTTP and metrics use the next two ports.",
    )
    args: list[Annotated[str, StringConstraints(max_length=1024)]] = Field(
        default_factory=list, max_length=32, description="Extra tritonserver arguments."
    )
    startup_timeout_seconds: int = Field(
        default=300, ge=10, le=3600, description="How long the worker waits for the sidecar to become ready."
    )

    @model_validator(mode="after")
    def _repository_on_volume(self) -> Self:
        if self.volume is not None and not is_under(self.model_repository, self.volume.mount_path):
            raise ValueError(REPOSITORY_ON_VOLUME)
        return self


class BoxCoordinates(StrEnum):
    """Whether box coordinates are relative to the model input (0-1) or its pixels."""

    NORMALIZED = "normalized"
    PIXELS = "pixels"


class Preprocess(ApiModel):
    """How each image becomes the model's input tensor; the input datatype (UINT8, FP16, FP32) is the model's.

    UINT8 inputs get the 0-255 pixels as they are; FP16/FP32 inputs get
    (pixel / 255 - mean) / std with scale true (the default), (pixel - mean) / std with
    scale false, and no mean/std step when mean and std are unset.
    """

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.width) == has(self.height)",
                "preprocess.width and preprocess.height go together: set both or neither",
                field_path=".width",
            ),
            cel_rule(
                "has(self.mean) == has(self.std)",
                "preprocess.mean and preprocess.std go together: set both or neither",
                field_path=".mean",
            ),
            cel_rule(
                "!has(self.std) || self.std.all(value, value > 0.0)",
                "preprocess.std values must be greater than 0",
                field_path=".std",
            ),
        )
    )

    layout: InputLayout | None = Field(
        default=None,
        description="Input tensor layout, NCHW or NHWC; default: from the model's input shape.",
    )
    width: int | None = Field(
        default=None,
        ge=1,
        le=8192,
        description="Input width (with height); default: from the model's input shape. Needed when the "
        "model takes any size.",
    )
    height: int | None = Field(
        default=None, ge=1, le=8192, description="Input height (with width); default: from the model's input."
    )
    resize: ResizeMode = Field(
        default=ResizeMode.STRETCH,
        description="stretch (default): the whole image resized to the input; letterbox: aspect kept, "
        f"centred, padded with grey {LETTERBOX_FILL} (boxes and masks are mapped back to the original "
        "image).",
    )
    scale: bool = Field(
        default=True,
        description="FP16/FP32 inputs: divide pixels by 255 (0-1) before mean/std (default true); false "
        "keeps 0-255. Ignored for UINT8 inputs.",
    )
    mean: Channels | None = Field(
        default=None,
        description="FP16/FP32 inputs: per-channel (R, G, B) mean subtracted after scaling, e.g. ImageNet's "
        "[0.485, 0.456, 0.406]; set with std.",
    )
    std: Channels | None = Field(
        default=None,
        description="FP16/FP32 inputs: per-channel (R, G, B) standard deviation divided by after the mean, "
        "e.g. ImageNet's [0.229, 0.224, 0.225]; set with mean.",
    )

    @model_validator(mode="after")
    def _paired(self) -> Self:
        errors = []
        if (self.width is None) != (self.height is None):
            errors.append("preprocess.width and preprocess.height go together: set both or neither")
        if (self.mean is None) != (self.std is None):
            errors.append("preprocess.mean and preprocess.std go together: set both or neither")
        if self.std is not None and any(value <= 0 for value in self.std):
            errors.append("preprocess.std values must be greater than 0")
        if errors:
            raise ValueError("; ".join(errors))
        return self


class TensorNames(ApiModel):
    """Names of the model's tensors, for models whose configuration leaves them ambiguous."""

    input: TensorName | None = Field(
        default=None, description="The image input tensor; default: the model's only non-BYTES input."
    )
    text: TensorName | None = Field(
        default=None,
        description="zeroShot: the BYTES input tensor the prompts (classes) are sent in, one string each; "
        "default: the model's only BYTES input.",
    )
    output: TensorName | None = Field(
        default=None, description="The single output tensor (yolo, logits, probabilities, mask)."
    )
    boxes: TensorName | None = Field(
        default=None,
        description="Boxes output [N, 4] per image (outputFormat boxes: default BOXES; efficient_nms: "
        "det_boxes).",
    )
    scores: TensorName | None = Field(
        default=None,
        description="Scores output [N] (outputFormat boxes: default SCORES; efficient_nms: det_scores).",
    )
    labels: TensorName | None = Field(
        default=None,
        description="Class index output [N] (outputFormat boxes: default LABELS; efficient_nms: "
        "det_classes); rows with a negative index are padding.",
    )
    masks: TensorName | None = Field(
        default=None,
        description="outputFormat boxes: per-box instance masks [N, h, w], each covering its box (any "
        "size, e.g. Mask R-CNN's 28 x 28) or, when h x w is the model input's size, the whole input (cut to "
        "the box); float scores are thresholded at 0.5. The detections then carry masks (instance "
        "segmentation).",
    )
    count: TensorName | None = Field(
        default=None,
        description="efficient_nms: the number of valid rows per image [1] (default num_dets); rows past it "
        "are ignored.",
    )


class EmbeddingsSpec(ApiModel):
    """An embedding per sample, stored for the review's embeddings plot."""

    model: TritonName | None = Field(
        default=None, description="Triton model computing embeddings; default: spec.model.name."
    )
    version: str | None = Field(
        default=None, pattern=r"^[0-9]+$", description="Model version; default: the latest ready."
    )
    output: TensorName = Field(description="Output tensor holding the embedding vector.")
    field: FieldName | None = Field(
        default=None, description="Sample field to store embeddings in; default <labelField>_embeddings."
    )


ZERO_SHOT_NAMES_MESSAGE = (
    "classNames does not apply to zeroShot models: the prompts in classes name the outputs"
)
_BOX_FORMAT_LIST = ", ".join(f.value for f in BOX_OUTPUT_FORMATS)
_TENSOR_CONDITIONS = (  # tensors read by one output format or mode only: (name, CEL condition, meaning)
    ("masks", "self.outputFormat == 'boxes'", "outputFormat boxes (instance masks)"),
    ("count", "self.outputFormat == 'efficient_nms'", "outputFormat efficient_nms (num_dets)"),
    ("text", "self.zeroShot", "zeroShot models (the prompts input)"),
)
_BOX_FORMAT_NAMES = ", ".join(repr(f.value) for f in BOX_OUTPUT_FORMATS)
_BOX_FORMATS_RULE = "!has(self.{field}) || self.outputFormat in [" + _BOX_FORMAT_NAMES + "]"


class ModelSpec(ApiModel):
    """The Triton model that produces the labels, and how to read its outputs."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.endpoint) != has(self.sidecar)", "exactly one of endpoint or sidecar must be set"
            ),
            cel_rule(
                _BOX_FORMATS_RULE.format(field="boxFormat"),
                "boxFormat applies only to outputFormat " + _BOX_FORMAT_LIST,
                field_path=".boxFormat",
            ),
            cel_rule(
                _BOX_FORMATS_RULE.format(field="boxCoordinates"),
                "boxCoordinates applies only to outputFormat " + _BOX_FORMAT_LIST,
                field_path=".boxCoordinates",
            ),
            *(
                cel_rule(
                    f"!has(self.tensors) || !has(self.tensors.{tensor}) || {condition}",
                    f"tensors.{tensor} applies only to {meaning}",
                    field_path=f".tensors.{tensor}",
                )
                for tensor, condition, meaning in _TENSOR_CONDITIONS
            ),
            cel_rule(
                "!self.zeroShot || (has(self.classes) && size(self.classes) > 0)",
                "zeroShot models need at least one text prompt in classes",
                field_path=".classes",
            ),
            cel_rule(
                "!self.zeroShot || !has(self.classNames)",
                ZERO_SHOT_NAMES_MESSAGE,
                field_path=".classNames",
            ),
        )
    )

    endpoint: TritonEndpoint | None = Field(
        default=None, description="Use an existing Triton server (xor sidecar)."
    )
    sidecar: TritonSidecar | None = Field(
        default=None, description="Start Triton next to each worker (xor endpoint)."
    )
    name: TritonName = Field(description="Model name in the Triton repository.")
    version: str | None = Field(
        default=None, pattern=r"^[0-9]+$", description="Model version; default: the latest ready."
    )
    output_format: OutputFormat = Field(
        description="Output adapter. detection: boxes (boxes [N, 4], scores [N], labels [N] tensors), yolo "
        "(one [N, 4 + classes] v8 or [N, 5 + classes] v5 tensor, either transposed, NMS done by the worker) "
        "or efficient_nms (TensorRT's EfficientNMS plugin: num_dets, det_boxes, det_scores, det_classes); "
        "classification: "
        "logits (softmax applied) or probabilities; segmentation: mask (class ids per pixel from an integer "
        "tensor, class scores from a float one), logits or probabilities ([classes, H, W] scores, or [H, W] "
        "for one foreground class)."
    )
    box_format: BoxFormat | None = Field(
        default=None,
        description="boxes, yolo, efficient_nms: how a box's four numbers are laid out: xyxy (corners), xywh "
        "(corner, size) or cxcywh (centre, size); default cxcywh for yolo, xyxy otherwise.",
    )
    box_coordinates: BoxCoordinates | None = Field(
        default=None,
        description="boxes, yolo, efficient_nms: normalized (0-1 of the model input) or pixels (of the model "
        "input); default normalized for boxes, pixels for yolo and efficient_nms.",
    )
    nms_iou_threshold: float = Field(
        default=0.45,
        gt=0,
        le=1,
        description="yolo: boxes of one class overlapping a better one by more than this IoU are dropped.",
    )
    tensors: TensorNames | None = Field(
        default=None, description="Tensor names, where the model configuration does not tell."
    )
    preprocess: Preprocess = section(Preprocess, "Image preprocessing overrides.")
    input: InputMode = Field(
        default=InputMode.DECODED,
        description="decoded (default): the worker decodes and resizes each image and sends pixels. "
        "encoded: it sends each file's bytes as they are (a BYTES tensor of shape [1] per image) and the "
        "model decodes, e.g. a Triton ensemble of a DALI or nvJPEG decode step and the network.",
    )
    class_names: list[Annotated[str, StringConstraints(max_length=256)]] | None = Field(
        default=None,
        max_length=100000,
        description="Class name of each output index, when the model does not publish them.",
    )
    classes: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(
        default=None,
        max_length=4096,
        description="Classes to keep (default all), or the text prompts of a zero-shot model.",
        json_schema_extra=LIST_OF_UNIQUE_VALUES,
    )
    zero_shot: bool = Field(
        default=False,
        description="The model is open-vocabulary: classes are sent as text prompts in a BYTES input "
        "(tensors.text), shaped [prompts] (or [batch, prompts] when the model batches); output class index i "
        "is prompt i. classNames does not apply.",
    )
    embeddings: EmbeddingsSpec | None = Field(
        default=None, description="Also compute and store an embedding per sample."
    )
    segmenter: SegmenterSpec | None = Field(
        default=None,
        description="Task detection: a second model segmenting each detected box's crop (cut from the full "
        "image, stretched to its input); the detections then carry masks (two-stage instance segmentation).",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.endpoint is None) == (self.sidecar is None):
            raise ValueError("exactly one of endpoint or sidecar must be set")
        if self.zero_shot and not self.classes:
            raise ValueError("zeroShot models need at least one text prompt in classes")
        if self.zero_shot and self.class_names is not None:
            raise ValueError(ZERO_SHOT_NAMES_MESSAGE)
        for name, value in (("boxFormat", self.box_format), ("boxCoordinates", self.box_coordinates)):
            if value is not None and self.output_format not in BOX_OUTPUT_FORMATS:
                raise ValueError(f"{name} applies only to outputFormat {_BOX_FORMAT_LIST}")
        tensors = self.tensors
        applies = {
            "masks": self.output_format == OutputFormat.BOXES,
            "count": self.output_format == OutputFormat.EFFICIENT_NMS,
            "text": self.zero_shot,
        }
        for tensor, _, meaning in _TENSOR_CONDITIONS:
            if tensors is not None and getattr(tensors, tensor) is not None and not applies[tensor]:
                raise ValueError(f"tensors.{tensor} applies only to {meaning}")
        return self
