"""``model.input: encoded`` end to end: file bytes to a real Triton ensemble (python-backend decode -> model).

The worker sends each file as it is; ``models/light_classifier_encoded`` decodes
with the worker's own steps (``models/image_decoder``), so the labels must be
the ones the decoded path writes for the same images. A file that is not an
image is counted as failed by the worker before any request, as with decoded
input; a decoded-input model named with ``input: encoded`` fails preflight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.worker_helpers import make_dataset, run_worker, worker_config, write_images

pytestmark = pytest.mark.integration


def _model(url: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": url,
        "name": name,
        "outputFormat": "probabilities",
        "tensors": {"output": "PROBABILITIES"},
    } | extra


def test_encoded_input_labels_as_the_decoded_path(mongo: Any, triton: Any, tmp_path: Path) -> None:
    images = write_images(tmp_path / "images", 12)
    (tmp_path / "images" / "notes.jpg").write_text("not an image")
    dataset = make_dataset([*images, tmp_path / "images" / "notes.jpg"])
    decoded = worker_config(
        dataset.name,
        _model(triton.grpc_url, "light_classifier"),
        "classification",
        label_field="decoded",
        batchSize=4,
    )
    encoded = worker_config(
        dataset.name,
        _model(triton.grpc_url, "light_classifier_encoded", input="encoded"),
        "classification",
        label_field="encoded",
        batchSize=4,
    )
    for config in (decoded, encoded):
        code, output = run_worker(config, 0, tmp_path)
        assert code == 0, output
        assert "processed=12/13 failed=1" in output and "not an image" in output
    dataset.reload()
    by_decoded = dataset.values("decoded_in_review.label")
    by_encoded = dataset.values("encoded_in_review.label")
    assert by_encoded == by_decoded and sum(label is not None for label in by_encoded) == 12
    confidences = zip(
        dataset.values("decoded_in_review.confidence"),
        dataset.values("encoded_in_review.confidence"),
        strict=True,
    )
    assert all(a == b for a, b in confidences if a is not None)


def test_encoded_input_to_a_pixel_model_fails_preflight(mongo: Any, triton: Any, tmp_path: Path) -> None:
    dataset = make_dataset(write_images(tmp_path / "images", 2))
    config = worker_config(
        dataset.name, _model(triton.grpc_url, "light_classifier", input="encoded"), "classification"
    )
    code, output = run_worker(config, 0, tmp_path)
    assert code == 1, output
    assert "model.input is encoded" in output and "UINT8" in output
    dataset.reload()
    assert "auto_in_review_run" not in dataset.get_field_schema() or set(
        dataset.values("auto_in_review_run")
    ) == {None}
