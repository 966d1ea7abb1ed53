"""What the worker knows about a Triton model: tensor specs from its metadata and the resolved input layout.

Kept free of any client library so the checks are unit-testable on plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contract.worker import InputLayout, InputMode, ModelConfig
from runtime.errors import PreflightError

IMAGE_INPUT_DATATYPES = ("UINT8", "FP32", "FP16")
FLOAT_DATATYPES = ("FP16", "FP32", "FP64", "BF16")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # as Triton reports it: the batch dimension included when batching, -1 = any


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int  # 0: the model does not batch; shapes carry no batch dimension

    def output(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.outputs if spec.name == name), None)

    def item_shape(self, spec: TensorSpec) -> tuple[int, ...]:
        """The shape of one image's slice of a tensor (batch dimension removed)."""
        return spec.shape[1:] if self.max_batch_size > 0 else spec.shape

    @classmethod
    def from_triton(cls, metadata: dict[str, Any], config: dict[str, Any]) -> ModelMetadata:
        """Build from the JSON-like dicts of ``get_model_metadata`` and ``get_model_config``."""

        def specs(key: str) -> tuple[TensorSpec, ...]:
            return tuple(
                TensorSpec(str(t["name"]), str(t["datatype"]), tuple(int(d) for d in t["shape"]))
                for t in metadata.get(key, [])
            )

        return cls(
            name=str(metadata.get("name", "")),
            inputs=specs("inputs"),
            outputs=specs("outputs"),
            max_batch_size=int(config.get("max_batch_size", 0) or 0),
        )


@dataclass(frozen=True)
class TextInput:
    """A zero-shot model's prompt input: a BYTES tensor of one string per prompt, sent with every batch."""

    name: str
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class InputSpec:
    """How to build the input tensors: name, datatype, layout and the image size the model takes."""

    name: str
    datatype: str
    layout: InputLayout
    height: int
    width: int
    batched: bool
    text: TextInput | None = None


def resolve_input(metadata: ModelMetadata, model: ModelConfig) -> InputSpec:
    """Pick the image input and its size and layout, from config where given, else from metadata."""
    wanted = model.tensors.input
    if wanted is not None:
        candidates = [spec for spec in metadata.inputs if spec.name == wanted]
        if not candidates:
            names = [spec.name for spec in metadata.inputs]
            raise PreflightError(f"model {metadata.name!r} has no input {wanted!r}; its inputs are {names}")
    else:
        # Pixels go to a non-BYTES input; with model.input encoded the file's bytes go to a BYTES one.
        encoded = model.input == InputMode.ENCODED
        candidates = [spec for spec in metadata.inputs if (spec.datatype == "BYTES") == encoded]
        if not candidates and len(metadata.inputs) == 1:
            candidates = list(metadata.inputs)  # the one input, refused below naming its type
        if len(candidates) != 1:
            names = [spec.name for spec in candidates]
            raise PreflightError(
                f"model {metadata.name!r} has inputs {names}: name the image input in model.tensors.input"
            )
    spec = candidates[0]
    if model.input == InputMode.ENCODED:
        return _encoded_input(metadata, spec)
    if spec.datatype not in IMAGE_INPUT_DATATYPES:
        raise PreflightError(
            f"input {spec.name!r} of {metadata.name!r} is {spec.datatype}; "
            f"the worker sends {IMAGE_INPUT_DATATYPES}"
            + ("; for file bytes set model.input: encoded" if spec.datatype == "BYTES" else "")
        )
    if spec.datatype == "UINT8" and model.normalize_mean is not None:
        raise PreflightError(
            f"input {spec.name!r} of {metadata.name!r} is UINT8: the worker sends raw 0-255 pixels, so "
            "preprocess.mean/std cannot apply; remove them, or serve a model with an FP32/FP16 input"
        )
    shape = metadata.item_shape(spec)
    if len(shape) != 3:
        raise PreflightError(
            f"input {spec.name!r} of {metadata.name!r} has shape {list(shape)}; expected one image (3 dims)"
        )
    layout = model.input_layout or (InputLayout.NCHW if shape[0] == 3 and shape[2] != 3 else InputLayout.NHWC)
    channels, height, width = (
        (shape[0], shape[1], shape[2])
        if layout == InputLayout.NCHW
        else (
            shape[2],
            shape[0],
            shape[1],
        )
    )
    if channels not in (3, -1):
        raise PreflightError(
            f"input {spec.name!r} of {metadata.name!r} has {channels} channels; expected RGB (3)"
        )
    if model.input_size is not None:
        config_height, config_width = model.input_size
        if (height not in (-1, config_height)) or (width not in (-1, config_width)):
            raise PreflightError(
                f"model.inputSize {list(model.input_size)} does not match input {spec.name!r} "
                f"of {metadata.name!r} ({height}x{width})"
            )
        height, width = config_height, config_width
    if height <= 0 or width <= 0:
        raise PreflightError(
            f"input {spec.name!r} of {metadata.name!r} has a variable size: "
            "set model.inputSize [height, width]"
        )
    text = resolve_text_input(metadata, model, image=spec.name)
    return InputSpec(
        spec.name, spec.datatype, layout, height, width, batched=metadata.max_batch_size > 0, text=text
    )


def resolve_text_input(metadata: ModelMetadata, model: ModelConfig, image: str) -> TextInput | None:
    """The prompt input of a zero-shot model (None for others); refuses a model without one."""
    texts = [spec for spec in metadata.inputs if spec.datatype == "BYTES" and spec.name != image]
    if not model.zero_shot:
        if texts:
            names = [spec.name for spec in texts]
            raise PreflightError(
                f"model {metadata.name!r} takes text inputs {names}: set model.zeroShot true and the "
                "prompts in model.classes"
            )
        return None
    wanted = model.tensors.text
    chosen = [spec for spec in texts if wanted is None or spec.name == wanted]
    if len(chosen) != 1:
        names = [spec.name for spec in texts]
        detail = f"no BYTES input {wanted!r}" if wanted else f"BYTES inputs {names}"
        raise PreflightError(
            f"zeroShot model {metadata.name!r} has {detail}: the prompts go into one BYTES input, "
            "named by model.tensors.text"
        )
    shape = metadata.item_shape(chosen[0])
    if len(shape) != 1 or shape[0] not in (-1, len(model.classes or [])):
        raise PreflightError(
            f"text input {chosen[0].name!r} of {metadata.name!r} has shape {list(shape)} per image; "
            f"the prompts need [-1] (or [{len(model.classes or [])}], one per class)"
        )
    return TextInput(chosen[0].name, tuple(model.classes or ()))


def _encoded_input(metadata: ModelMetadata, spec: TensorSpec) -> InputSpec:
    """``model.input: encoded``: one BYTES element per image (the file as it is), the model decodes."""
    shape = metadata.item_shape(spec)
    if spec.datatype != "BYTES" or shape not in ((1,), (-1,)):
        raise PreflightError(
            f"model.input is encoded, but input {spec.name!r} of {metadata.name!r} is {spec.datatype} "
            f"{list(shape)}; an encoded-input model takes BYTES of shape [1] per image (the file's bytes)"
        )
    return InputSpec(spec.name, "BYTES", InputLayout.NHWC, 0, 0, batched=metadata.max_batch_size > 0)
