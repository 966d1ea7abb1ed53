"""A decompression bomb among a shard's images is counted as one failed image; the shard goes on and succeeds.

The worker runs as a Job pod runs it, against the session's real Triton and mongod.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.worker_helpers import (
    classifier_model,
    make_dataset,
    run_worker,
    worker_config,
    write_images,
)
from tests.unit.test_decode_limits import png_claiming

pytestmark = pytest.mark.integration


def test_a_decompression_bomb_fails_one_image_not_the_shard(mongo: Any, triton: Any, tmp_path: Path) -> None:
    good = write_images(tmp_path / "images", 5)
    bomb = png_claiming(tmp_path / "images" / "bomb.png", 20000, 20000)  # 400 Mpixel in a few bytes
    dataset = make_dataset([*good[:2], bomb, *good[2:]])
    config = worker_config(dataset.name, classifier_model(triton.grpc_url), "classification")
    code, output = run_worker(config, 0, tmp_path)
    assert code == 0, output
    assert "state=Succeeded processed=5/6 failed=1" in output, output
    assert "reason='image too large'" in output and str(bomb) in output
    dataset.reload()
    by_path = dict(zip(dataset.values("filepath"), dataset.values("auto_in_review_run"), strict=True))
    assert by_path[str(bomb)] is None
    assert all(by_path[str(path)] == config["run"]["uid"] for path in good)
