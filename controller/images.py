"""The operator's image allow-list: which worker and Triton images a run may name.

Creating an AutoLabelRun creates pods in its namespace; without a list, anyone who
may create a run could run any image there. The operator's administrator sets the
list (chart value `allowedImages`, env AUTOLABEL_ALLOWED_IMAGES: comma-separated
glob patterns, `*` allowing any image); the operator's own worker image is always
allowed. A run naming another image fails with ImageNotAllowed, nothing created.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

from controller.api import AutoLabelRunSpec

ALLOWED_IMAGES_ENV = "AUTOLABEL_ALLOWED_IMAGES"
DEFAULT_ALLOWED_IMAGES = ("ghcr.io/autolabel/autolabel-operator:*", "nvcr.io/nvidia/tritonserver:*")
"""The chart's default list too: the project's worker images and NVIDIA's Triton server images."""


def allowed_images_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The patterns of AUTOLABEL_ALLOWED_IMAGES, or the defaults when it is unset."""
    raw = environ.get(ALLOWED_IMAGES_ENV)
    if raw is None:
        return DEFAULT_ALLOWED_IMAGES
    return tuple(pattern.strip() for pattern in raw.split(",") if pattern.strip())


def is_allowed(image: str, patterns: Sequence[str], default_image: str) -> bool:
    return image == default_image or any(fnmatch.fnmatchcase(image, pattern) for pattern in patterns)


def image_refusal(spec: AutoLabelRunSpec, patterns: Sequence[str], default_image: str) -> str | None:
    """Why the run's images are refused (naming the image and the setting), or None when all are allowed."""
    named = [("spec.execution.image", spec.execution.image)]
    if spec.model is not None and spec.model.sidecar is not None:
        named.append(("spec.model.sidecar.image", spec.model.sidecar.image))
    for setting, image in named:
        if image is not None and not is_allowed(image, patterns, default_image):
            allowed = ", ".join([default_image, *patterns]) or default_image
            return (
                f"{setting} {image!r} is not in the operator's image allow-list "
                f"({ALLOWED_IMAGES_ENV}, chart value allowedImages: {allowed}); "
                "name an allowed image, or ask the operator's administrator to allow this one"
            )
    return None
