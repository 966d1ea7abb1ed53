"""bench/gpu.sh on a machine without a GPU stops before starting anything and says what it needs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.__main__ import _parse_args, gpu_model
from bench.models import HEAVY, LIGHT, Setting

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu.sh"


def test_without_a_gpu_it_exits_2_naming_the_need(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    (fake / "nvidia-smi").chmod(0o755)
    for path in (f"{fake}:/usr/bin:/bin", "/usr/bin:/bin"):  # a broken driver, and none at all
        result = subprocess.run(
            ["bash", str(SCRIPT), "--models", "light_classifier"],
            env={**os.environ, "PATH": path},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "needs an NVIDIA GPU" in result.stderr and "bench/gpu.sh --cpu" in result.stderr


def test_gpu_mode_tries_larger_batches_and_keeps_the_cpu_ones() -> None:
    assert _parse_args(["--gpu"]).gpu and not _parse_args([]).gpu
    for model in (HEAVY, LIGHT):
        wider = gpu_model(model)
        assert set(model.raw_settings) < set(wider.raw_settings)
        assert Setting(32, 8) in wider.raw_settings and len(set(wider.raw_settings)) == len(
            wider.raw_settings
        )
