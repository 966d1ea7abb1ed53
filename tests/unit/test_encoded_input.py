"""``model.input: encoded``: the input it needs, what it sends per image, and how bad files still count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.worker import InputLayout, InputMode, ModelConfig
from inference.decode import Preprocessor, decode_budget
from inference.model_spec import InputSpec, ModelMetadata, TensorSpec, resolve_input
from runtime.errors import DecodeError, PreflightError

ENCODED = ModelConfig.model_validate(
    {"url": "u:1", "name": "m", "outputFormat": "logits", "input": "encoded"}
)
BYTES_SPEC = InputSpec("ENCODED", "BYTES", InputLayout.NHWC, 0, 0, batched=True)


def _metadata(datatype: str, shape: tuple[int, ...], max_batch: int = 8) -> ModelMetadata:
    return ModelMetadata("m", (TensorSpec("ENCODED", datatype, shape),), (), max_batch)


def test_an_encoded_model_takes_one_bytes_element_per_image() -> None:
    assert ENCODED.input == InputMode.ENCODED
    assert resolve_input(_metadata("BYTES", (-1, 1)), ENCODED) == BYTES_SPEC
    assert not resolve_input(_metadata("BYTES", (1,), max_batch=0), ENCODED).batched
    with pytest.raises(PreflightError, match=r"model.input is encoded.*UINT8"):
        resolve_input(_metadata("UINT8", (-1, 224, 224, 3)), ENCODED)
    with pytest.raises(PreflightError, match=r"set model.input: encoded"):
        resolve_input(_metadata("BYTES", (-1, 1)), ENCODED.model_copy(update={"input": InputMode.DECODED}))


def test_the_files_bytes_go_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.new("RGB", (640, 480), (200, 10, 10)).save(path, quality=90)
    row = Preprocessor(BYTES_SPEC).load(str(path))
    assert row.dtype == np.object_ and row.shape == (1,) and row[0] == path.read_bytes()
    batch = np.stack([row, row])
    assert batch.shape == (2, 1)


def test_missing_and_non_image_files_fail_with_their_reason(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("not an image")
    preprocessor = Preprocessor(BYTES_SPEC)
    with pytest.raises(DecodeError) as missing:
        preprocessor.load(str(tmp_path / "absent.jpg"))
    with pytest.raises(DecodeError) as text:
        preprocessor.load(str(tmp_path / "notes.jpg"))
    assert (missing.value.reason, text.value.reason) == ("file not found", "not an image")


def test_the_budget_counts_files_not_pixels() -> None:
    budget = decode_budget(BYTES_SPEC, batch_size=64, max_in_flight=8, decode_threads=2)
    assert budget.batch_size == 64 and budget.in_flight == 8 and budget.window >= 64
