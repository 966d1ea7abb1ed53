"""Real photographs for tests, benchmarks and the demo: the images that ship with scikit-image.

``skimage.data`` bundles a handful of real photos (an astronaut, a cat, a coffee
cup, a rocket, ...) inside the wheel, so no download is needed. ``write_images``
cycles through them, mirroring and cropping each cycle a little so every file
differs, and saves them as JPEGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SKIMAGE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry")


def skimage_rgb(name: str) -> np.ndarray[Any, Any]:
    """The skimage.data image ``name`` as uint8 RGB (grey images stacked to three channels)."""
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.asarray(image[..., :3], dtype=np.uint8)


def write_images(
    directory: Path, count: int, max_side: int = 320, names: tuple[str, ...] = SKIMAGE_IMAGES
) -> list[Path]:
    """``count`` real JPEGs: the skimage photos, cycled, each variant mirrored or cropped a little."""
    directory.mkdir(parents=True, exist_ok=True)
    sources = [skimage_rgb(name) for name in names]
    paths = []
    for index in range(count):
        pixels = sources[index % len(sources)]
        variant = index // len(sources)
        if variant % 2:
            pixels = pixels[:, ::-1]
        crop = (variant // 2) * 4
        if crop:
            pixels = pixels[crop:-crop, crop:-crop]
        image = Image.fromarray(np.ascontiguousarray(pixels))
        image.thumbnail((max_side, max_side))
        path = directory / f"{names[index % len(sources)]}-{index:04d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths
