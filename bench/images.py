"""Real JPEGs around 640x480 for the benchmarks, made from the photos that ship inside scikit-image.

Each image is a different view of one of the skimage photos: scaled to cover
640x480, cropped at an offset that changes with the index, and mirrored every
other time, then saved as a quality-90 JPEG. Decoding cost is what matters here,
so sizes and JPEG settings match what a camera dataset looks like.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry", "hubble_deep_field")
WIDTH, HEIGHT = 640, 480


def _source(name: str) -> npt.NDArray[Any]:
    from skimage import data

    pixels = getattr(data, name)()
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3], dtype=np.uint8)


def _variant(source: Image.Image, index: int) -> Image.Image:
    """Scale ``source`` to cover a little more than 640x480 and crop a window that moves with ``index``."""
    zoom = 1.0 + 0.1 * (index % 5)
    scale = max(WIDTH / source.width, HEIGHT / source.height) * zoom
    size = (max(WIDTH, round(source.width * scale)), max(HEIGHT, round(source.height * scale)))
    resized = source.resize(size, Image.Resampling.BILINEAR)
    spare_x, spare_y = resized.width - WIDTH, resized.height - HEIGHT
    left = (index * 37) % (spare_x + 1)
    top = (index * 53) % (spare_y + 1)
    image = resized.crop((left, top, left + WIDTH, top + HEIGHT))
    if (index // len(SOURCES)) % 2:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


def write_bench_images(directory: Path, count: int) -> list[Path]:
    """``count`` distinct 640x480 JPEGs in ``directory`` (reused when already there)."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = [Image.fromarray(_source(name)) for name in SOURCES]
    paths = []
    for index in range(count):
        name = SOURCES[index % len(SOURCES)]
        path = directory / f"{name}-{index:05d}.jpg"
        if not path.exists():
            partial = path.with_suffix(".partial")
            _variant(sources[index % len(sources)], index // len(SOURCES)).save(
                partial, format="JPEG", quality=90
            )
            partial.replace(path)
        paths.append(path)
    return paths
