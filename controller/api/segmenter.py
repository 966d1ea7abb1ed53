"""The second stage of two-stage instance segmentation: a model segmenting each detected box's crop."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from contract.worker import OutputFormat, SegmenterFormat
from controller.api.common import (
    LIST_OF_UNIQUE_VALUES,
    ApiModel,
    Channels,
    TensorName,
    TritonName,
    cel_rule,
    cel_rules,
)


class SegmenterTensors(ApiModel):
    """Tensor names of the segmenter, where its configuration leaves them ambiguous."""

    input: TensorName | None = Field(default=None, description="The crop input; default: the only input.")
    output: TensorName | None = Field(default=None, description="The mask output; default: the only output.")


class SegmenterSpec(ApiModel):
    """Two-stage instance segmentation: a second model on the same Triton server segments each box."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.mean) == has(self.std)",
                "segmenter.mean and segmenter.std go together: set both or neither",
                field_path=".mean",
            ),
        )
    )

    name: TritonName = Field(description="The segmentation model in the Triton repository.")
    version: str | None = Field(
        default=None, pattern=r"^[0-9]+$", description="Model version; default: the latest ready."
    )
    output_format: SegmenterFormat = Field(
        default=OutputFormat.PROBABILITIES,
        description="How its output reads, as for task segmentation: mask (class ids, or a float tensor read "
        "as probabilities), logits or probabilities; a box's mask is its non-background pixels.",
    )
    tensors: SegmenterTensors | None = Field(default=None, description="Its tensor names, where ambiguous.")
    classes: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(
        default=None,
        max_length=4096,
        description="Detection classes whose boxes are segmented (default all), e.g. [person].",
        json_schema_extra=LIST_OF_UNIQUE_VALUES,
    )
    scale: bool = Field(
        default=True, description="FP16/FP32 input: pixels / 255 first (as preprocess.scale)."
    )
    mean: Channels | None = Field(default=None, description="FP16/FP32 input: per-channel mean (with std).")
    std: Channels | None = Field(default=None, description="FP16/FP32 input: per-channel std (with mean).")

    @model_validator(mode="after")
    def _paired(self) -> Self:
        if (self.mean is None) != (self.std is None):
            raise ValueError("segmenter.mean and segmenter.std go together: set both or neither")
        return self
