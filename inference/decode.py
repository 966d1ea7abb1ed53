"""Image decode and preprocess: file -> the model's input array, in a worker thread.

JPEGs are decoded at reduced scale when the model input is much smaller (PIL's
``draft``), which is most of the decode cost saved. The image is resized whole
(no crop, no letterbox) so relative box coordinates map straight back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from inference.config import InputLayout, ModelConfig, PathRewrite
from inference.model_spec import InputSpec


class DecodeError(Exception):
    """An image that cannot be read or decoded; ``reason`` is a short, countable category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Preprocessor:
    """Turns a file path into one input row for the model."""

    input_spec: InputSpec
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @classmethod
    def for_model(cls, input_spec: InputSpec, model: ModelConfig) -> Preprocessor:
        return cls(input_spec, model.normalize_mean, model.normalize_std)

    def load(self, path: str) -> npt.NDArray[np.generic]:
        """Decode and convert; raises DecodeError with a reason on any unreadable image."""
        size = (self.input_spec.width, self.input_spec.height)
        try:
            with Image.open(path) as image:
                image.draft("RGB", size)
                rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
                pixels = np.asarray(rgb, dtype=np.uint8)
        except FileNotFoundError as error:
            raise DecodeError("file not found", path) from error
        except UnidentifiedImageError as error:
            raise DecodeError("not an image", path) from error
        except (OSError, ValueError, SyntaxError) as error:
            raise DecodeError("decode error", f"{path}: {error}") from error
        return self._to_tensor_layout(pixels)

    def _to_tensor_layout(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.generic]:
        array: npt.NDArray[np.generic] = pixels
        if self.input_spec.datatype != "UINT8":
            scaled = pixels.astype(np.float32) / 255.0
            if self.mean is not None and self.std is not None:
                scaled = (scaled - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
            array = scaled.astype(np.float16 if self.input_spec.datatype == "FP16" else np.float32)
        if self.input_spec.layout == InputLayout.NCHW:
            array = np.ascontiguousarray(array.transpose(2, 0, 1))
        return array


def rewrite_path(path: str, rewrites: list[PathRewrite]) -> str:
    """Apply the first rewrite whose ``from`` prefixes ``path`` (stored path -> path mounted in the pod)."""
    for rule in rewrites:
        if path.startswith(rule.from_):
            return rule.to + path[len(rule.from_) :]
    return path
