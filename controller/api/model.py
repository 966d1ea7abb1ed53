"""The model part of the spec: which Triton server and model, and how to read the model's outputs."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from controller.api.common import (
    LIST_OF_UNIQUE_VALUES,
    NORMAL_PATH_MESSAGE,
    ApiModel,
    FieldName,
    PersistentVolumeMount,
    ResourceRequirements,
    cel_rule,
    cel_rules,
    is_under,
    section,
    under_rule,
)
from controller.api.constants import OutputFormat

TritonName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
# 1 to 65535, no leading zero.
PORT_PATTERN = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# The sidecar serves HTTP on grpcPort + 1 and metrics on grpcPort + 2.
SIDECAR_DERIVED_PORTS = 2
TensorName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


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
    protocol: Literal["grpc", "http"] = Field(default="grpc", description="grpc (default) or http.")


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


class Preprocess(ApiModel):
    """Image preprocessing when the model's configuration does not say it."""

    layout: Literal["NCHW", "NHWC"] | None = Field(
        default=None,
        description="Input tensor layout; default: from the model's input shape.",
    )
    width: int | None = Field(
        default=None, ge=1, le=8192, description="Input width; default: from the model's input shape."
    )
    height: int | None = Field(
        default=None, ge=1, le=8192, description="Input height; default: from the model's input shape."
    )
    resize: Literal["stretch", "letterbox"] = Field(
        default="stretch",
        description="stretch (default) or letterbox (keep aspect).",
    )


class TensorNames(ApiModel):
    """Names of the model's tensors, for models whose configuration leaves them ambiguous."""

    input: TensorName | None = Field(default=None, description="The image input tensor.")
    output: TensorName | None = Field(
        default=None, description="The single output tensor (yolo, logits, probabilities, mask)."
    )
    boxes: TensorName | None = Field(default=None, description="Boxes output tensor (outputFormat boxes).")
    scores: TensorName | None = Field(default=None, description="Scores output tensor (outputFormat boxes).")
    labels: TensorName | None = Field(
        default=None, description="Class index output tensor (outputFormat boxes)."
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


class ModelSpec(ApiModel):
    """The Triton model that produces the labels, and how to read its outputs."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.endpoint) != has(self.sidecar)", "exactly one of endpoint or sidecar must be set"
            ),
            cel_rule(
                "!self.zeroShot || (has(self.classes) && size(self.classes) > 0)",
                "zeroShot models need at least one text prompt in classes",
                field_path=".classes",
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
        description="Output adapter: boxes or yolo (detection), logits or probabilities (classification), "
        "mask (segmentation)."
    )
    tensors: TensorNames | None = Field(
        default=None, description="Tensor names, where the model configuration does not tell."
    )
    preprocess: Preprocess = section(Preprocess, "Image preprocessing overrides.")
    input: Literal["decoded", "encoded"] = Field(
        default="decoded",
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
    zero_shot: bool = Field(default=False, description="The model takes the classes as text prompts.")
    embeddings: EmbeddingsSpec | None = Field(
        default=None, description="Also compute and store an embedding per sample."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.endpoint is None) == (self.sidecar is None):
            raise ValueError("exactly one of endpoint or sidecar must be set")
        if self.zero_shot and not self.classes:
            raise ValueError("zeroShot models need at least one text prompt in classes")
        return self
