"""The two benchmark models: their Triton names and tensors, and the worker settings they are tried with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """A client pattern: ``batch`` images per request, ``in_flight`` requests outstanding."""

    batch: int
    in_flight: int
    decode_threads: int = 2  # worker only (its default)
    write_batch: int = 128  # worker only (its default writeBatchSize)
    encoded: bool = False  # worker only: model.input encoded, to the model's "<name>_encoded" ensemble

    def __str__(self) -> str:
        text = f"batch {self.batch} x {self.in_flight} in flight"
        if self.encoded:
            text += ", encoded input"
        if self.decode_threads != 2:
            text += f", {self.decode_threads} decode threads"
        if self.write_batch != 128:
            text += f", writes of {self.write_batch}"
        return text


@dataclass(frozen=True)
class BenchModel:
    name: str
    kind: str  # "heavy" or "light"
    output: str
    output_format: str
    raw_settings: tuple[Setting, ...]
    raw_images: int  # images sent per raw-Triton setting
    samples: int  # samples in (b) and (c): the distinct JPEGs cycled, so a light run lasts seconds
    apply_model_settings: tuple[tuple[int, int], ...]  # (batch_size, num_workers)


HEAVY = BenchModel(
    name="efficientnet_lite0",
    kind="heavy",
    output="LOGITS",
    output_format="logits",
    raw_settings=(Setting(1, 8), Setting(1, 16), Setting(1, 32), Setting(4, 4), Setting(8, 2)),
    raw_images=192,
    samples=512,
    apply_model_settings=((4, 0), (4, 2), (16, 0), (16, 2)),
)

LIGHT = BenchModel(
    name="light_classifier",
    kind="light",
    output="PROBABILITIES",
    output_format="probabilities",
    raw_settings=(Setting(1, 16), Setting(1, 64), Setting(16, 4), Setting(32, 4), Setting(64, 2)),
    raw_images=2048,
    samples=2048,
    apply_model_settings=((16, 0), (16, 2), (64, 2), (64, 4)),
)

MODELS = (HEAVY, LIGHT)
