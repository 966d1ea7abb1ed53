"""Image decode and preprocess: file -> the model's input array, in a worker thread.

JPEGs are decoded at reduced scale when the model input is much smaller (PIL's
``draft``), which is most of the decode cost saved. The image is resized whole:
stretched over the input (relative box coordinates map straight back), or
letterboxed (aspect kept, centred, padded grey); the `Window` returned with the
pixels maps predictions back onto the image (inference/geometry.py). Float inputs
are scaled to 0-1 (unless ``scale`` is off) and normalised by mean/std when given.

An image over PIL's decompression-bomb limit is a failed image like any unreadable
file. `decode_budget` sizes the decode-ahead window and the requests in flight by
bytes, so what a worker holds in decoded pixels stays near DECODE_BUFFER_BYTES
whatever batchSize and maxInFlight say.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from contract.worker import LETTERBOX_FILL, InputLayout, ModelConfig, PathRewrite, ResizeMode
from inference.geometry import Window, letterbox_window, stretch_window
from inference.model_spec import InputSpec
from runtime.errors import DecodeError

DECODE_BUFFER_BYTES = 1 << 30
"""Decoded pixels a worker holds at once, decoded ahead plus in requests (about; copies aside)."""
_ITEM_BYTES = {"UINT8": 1, "FP16": 2, "FP32": 4}
ENCODED_FILE_BYTES = 1 << 20
"""What the budget counts per image with ``model.input: encoded`` (a large JPEG; most are far smaller)."""


@dataclass(frozen=True)
class DecodeBudget:
    """Images per request, how far decoding runs ahead, and how many requests may be outstanding."""

    batch_size: int
    window: int
    in_flight: int
    fetch_window: int = 1  # the window when images come from object storage (GETs in flight)


def decode_budget(
    input_spec: InputSpec,
    batch_size: int,
    max_in_flight: int,
    decode_threads: int,
    budget_bytes: int = DECODE_BUFFER_BYTES,
    fetch_concurrency: int = 1,
) -> DecodeBudget:
    """The settings (a window of 2 x batchSize x maxInFlight images), cut to fit `budget_bytes` of pixels.

    Half the budget goes to requests in flight (each holds its batch until answered),
    the rest to images decoded ahead. A batch is cut too when half the budget cannot
    hold it; nothing goes below one image (so a huge model input costs two images).
    Media in object storage get a window of at least ``fetch_concurrency`` (each GET
    waits on the network), within the same cut.
    """
    per_image = input_spec.width * input_spec.height * 3 * _ITEM_BYTES.get(input_spec.datatype, 4)
    if input_spec.datatype == "BYTES":
        per_image = ENCODED_FILE_BYTES
    images = max(2, budget_bytes // max(per_image, 1))
    batch = max(1, min(batch_size, images // 2))
    in_flight = max(1, min(max_in_flight, images // 2 // batch))
    wanted = max(2 * batch * in_flight, 4 * decode_threads)
    room = images - in_flight * batch
    window = max(1, min(wanted, room))
    fetch_window = max(1, min(max(wanted, fetch_concurrency), room))
    return DecodeBudget(batch_size=batch, window=window, in_flight=in_flight, fetch_window=fetch_window)


@dataclass(frozen=True)
class Preprocessor:
    """Turns a file path into one input row for the model."""

    input_spec: InputSpec
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    scale: bool = True
    resize: ResizeMode = ResizeMode.STRETCH

    @classmethod
    def for_model(cls, input_spec: InputSpec, model: ModelConfig) -> Preprocessor:
        return cls(input_spec, model.normalize_mean, model.normalize_std, model.scale, model.resize)

    def load(self, path: str) -> npt.NDArray[Any]:
        """Decode and convert; raises DecodeError with a reason on any unreadable image."""
        return self.decode(path)[0]

    def decode(self, path: str, data: bytes | None = None) -> tuple[npt.NDArray[np.generic], Window]:
        """The input row and where the image lies in it; raises DecodeError on any unreadable image.

        ``data``: the file's bytes, already fetched (an object in storage); else ``path`` is opened.
        """
        if self.input_spec.datatype == "BYTES":
            row, (width, height) = self._encoded(path, data)
            return row, stretch_window(width, height)  # the model sees the image as it is
        try:
            with _open(path, data) as image:
                window = self._window(image.width, image.height)
                image.draft("RGB", (window.width, window.height))
                pixels = self._fit(image.convert("RGB"), window)
        except FileNotFoundError as error:
            raise DecodeError("file not found", path) from error
        except (Image.DecompressionBombError, MemoryError) as error:
            raise DecodeError("image too large", f"{path}: {error}") from error
        except UnidentifiedImageError as error:
            raise DecodeError("not an image", path) from error
        except (OSError, ValueError, SyntaxError) as error:
            raise DecodeError("decode error", f"{path}: {error}") from error
        return self._to_tensor_layout(pixels), window

    def crops(
        self, path: str, boxes: list[tuple[float, float, float, float]], data: bytes | None = None
    ) -> list[npt.NDArray[np.generic]]:
        """One input row per box (relative x, y, w, h of the image), cut from the full-resolution image."""
        with _open(path, data) as image:
            rgb = image.convert("RGB")
        rows = []
        for x, y, w, h in boxes:
            left, top = int(x * rgb.width), int(y * rgb.height)
            right = max(left + 1, round((x + w) * rgb.width))
            bottom = max(top + 1, round((y + h) * rgb.height))
            crop = rgb.crop((left, top, right, bottom))
            rows.append(self._to_tensor_layout(self._fit(crop, self._window(crop.width, crop.height))))
        return rows

    def _window(self, width: int, height: int) -> Window:
        size = (self.input_spec.width, self.input_spec.height)
        if self.resize == ResizeMode.LETTERBOX:
            return letterbox_window(width, height, *size)
        return stretch_window(*size)

    def _fit(self, rgb: Image.Image, window: Window) -> npt.NDArray[np.uint8]:
        """The RGB image resized into ``window`` of the input, padded grey around it."""
        content = rgb.resize((window.width, window.height), Image.Resampling.BILINEAR)
        if not window.fills_input:
            padded = Image.new("RGB", (window.input_width, window.input_height), (LETTERBOX_FILL,) * 3)
            padded.paste(content, (window.x, window.y))
            content = padded
        return np.asarray(content, dtype=np.uint8)

    def _encoded(self, path: str, data: bytes | None) -> tuple[npt.NDArray[Any], tuple[int, int]]:
        """``model.input: encoded``: the file's bytes as one BYTES element, after a header-only check.

        The header check (no decode) counts missing and non-image files as failed here,
        as the decoded path does; a file whose data is corrupt past the header fails in
        the model's decode step, which fails that request.
        """
        try:
            if data is None:
                with open(path, "rb") as file:
                    data = file.read()
            with Image.open(io.BytesIO(data)) as image:
                size = image.size  # the header is parsed by open; nothing is decoded
        except FileNotFoundError as error:
            raise DecodeError("file not found", path) from error
        except UnidentifiedImageError as error:
            raise DecodeError("not an image", path) from error
        except (Image.DecompressionBombError, MemoryError) as error:
            raise DecodeError("image too large", f"{path}: {error}") from error
        except (OSError, ValueError, SyntaxError) as error:
            raise DecodeError("decode error", f"{path}: {error}") from error
        return np.array([data], dtype=np.object_), size

    def _to_tensor_layout(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.generic]:
        array: npt.NDArray[np.generic] = pixels
        if self.input_spec.datatype != "UINT8":
            scaled = pixels.astype(np.float32)
            if self.scale:
                scaled /= 255.0
            if self.mean is not None and self.std is not None:
                scaled = (scaled - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
            array = scaled.astype(np.float16 if self.input_spec.datatype == "FP16" else np.float32)
        if self.input_spec.layout == InputLayout.NCHW:
            array = np.ascontiguousarray(array.transpose(2, 0, 1))
        return array


def _open(path: str, data: bytes | None) -> Image.Image:
    return Image.open(io.BytesIO(data) if data is not None else path)


def rewrite_path(path: str, rewrites: list[PathRewrite]) -> str:
    """Apply the first rewrite whose ``from`` prefixes ``path`` (stored path -> path mounted in the pod)."""
    for rule in rewrites:
        if path.startswith(rule.from_):
            return rule.to + path[len(rule.from_) :]
    return path
