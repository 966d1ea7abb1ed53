"""Bad input at decode time: a decompression bomb is one failed image; decoded pixels held stay in budget."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from contract.worker import InputLayout
from inference.decode import DECODE_BUFFER_BYTES, Preprocessor, decode_budget
from inference.model_spec import InputSpec
from runtime.errors import DecodeError


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file whose header claims width x height pixels (what a bomb looks like to PIL)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def spec(width: int, height: int, datatype: str = "FP32") -> InputSpec:
    return InputSpec("input", datatype, InputLayout.NCHW, height, width, True)


def test_a_decompression_bomb_is_a_failed_image_with_its_reason(tmp_path: Path) -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    side = int((2 * Image.MAX_IMAGE_PIXELS) ** 0.5) + 100  # past PIL's hard limit
    bomb = png_claiming(tmp_path / "bomb.png", side, side)
    with pytest.raises(DecodeError) as raised:
        Preprocessor(spec(224, 224)).load(str(bomb))
    assert raised.value.reason == "image too large"
    assert str(bomb) in raised.value.detail


@pytest.mark.parametrize(
    "size", [(224, 224, "FP32"), (640, 640, "FP32"), (1024, 1024, "UINT8"), (8192, 8192, "FP32")]
)
@pytest.mark.parametrize("batch_size", [1, 8, 256])
@pytest.mark.parametrize("max_in_flight", [1, 16, 1024])
def test_decoded_pixels_held_stay_within_the_budget(
    size: tuple[int, int, str], batch_size: int, max_in_flight: int
) -> None:
    width, height, datatype = size
    per_image = width * height * 3 * {"UINT8": 1, "FP32": 4}[datatype]
    budget = decode_budget(spec(width, height, datatype), batch_size, max_in_flight, 64)
    assert (
        1 <= budget.batch_size <= batch_size and 1 <= budget.in_flight <= max_in_flight and budget.window >= 1
    )
    held = budget.window + budget.in_flight * budget.batch_size
    assert held * per_image <= max(DECODE_BUFFER_BYTES, 2 * per_image)


def test_small_settings_are_kept_as_given() -> None:
    budget = decode_budget(spec(224, 224), batch_size=4, max_in_flight=16, decode_threads=2)
    assert (budget.batch_size, budget.in_flight, budget.window) == (4, 16, 128)


def test_the_limits_of_the_settings_are_cut_to_fit() -> None:
    """batchSize 256 x maxInFlight 1024 asked for a 524,288-image window before."""
    budget = decode_budget(spec(640, 640), batch_size=256, max_in_flight=1024, decode_threads=64)
    assert budget.window < 2 * 256 * 1024 and budget.in_flight < 1024
