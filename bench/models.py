"""The two benchmark models: their Triton names and tensors, and the worker settings they are tried with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """A client pattern: ``batch`` images per request, ``in_flight`` requests outstanding."""

    batch: int
    in_flight: int

    def __str__(self) -> str:
        return f"batch {self.batch} x {self.in_flight} in flight"


@dataclass(frozen=True)
class BenchModel:
    name: str
    kind: str  # "heavy" or "light"
    output: str
    output_format: str
    raw_settings: tuple[Setting, ...]
    raw_images: int  # images sent per raw-Triton setting
    apply_model_settings: tuple[tuple[int, int], ...]  # (batch_size, num_workers)


HEAVY = BenchModel(
    name="efficientnet_lite0",
    kind="heavy",
    output="LOGITS",
    output_format="logits",
    raw_settings=(Setting(1, 8), Setting(1, 16), Setting(1, 32), Setting(4, 4), Setting(8, 2)),
    raw_images=192,
    apply_model_settings=((4, 0), (4, 2), (16, 0), (16, 2)),
)

LIGHT = BenchModel(
    name="light_classifier",
    kind="light",
    output="PROBABILITIES",
    output_format="probabilities",
    raw_settings=(Setting(1, 16), Setting(1, 64), Setting(16, 4), Setting(32, 4), Setting(64, 2)),
    raw_images=2048,
    apply_model_settings=((16, 0), (16, 2), (64, 2), (64, 4)),
)

MODELS = (HEAVY, LIGHT)
