"""Instance masks: a model's per-box mask output -> the boolean mask FiftyOne keeps on each Detection.

FiftyOne's `Detection.mask` covers the detection's bounding box. Models give either
that already (Mask R-CNN's fixed-size per-box masks, any size: FiftyOne stretches it
over the box) or one mask per box over the whole input (YOLOv8-seg after its
prototype step, torchvision's Mask R-CNN), which is cut to the box here. Float
scores are thresholded at 0.5; integer or boolean masks are taken as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

MASK_THRESHOLD = 0.5

Box = tuple[float, float, float, float]


def binary(mask: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    if np.issubdtype(mask.dtype, np.floating):
        return np.asarray(mask > MASK_THRESHOLD)
    return np.asarray(mask != 0)


def box_mask(
    raw: npt.NDArray[Any], box: Box, input_width: int, input_height: int
) -> npt.NDArray[np.bool_] | None:
    """The part of ``raw`` covering ``box`` (relative x, y, w, h of the input); None when empty."""
    mask = raw[0] if raw.ndim == 3 and raw.shape[0] == 1 else raw
    if mask.ndim != 2 or mask.size == 0:
        return None
    if mask.shape != (input_height, input_width):  # already the box's own mask
        return binary(mask)
    x, y, w, h = box
    left, top = int(np.floor(x * input_width)), int(np.floor(y * input_height))
    right = max(left + 1, int(np.ceil((x + w) * input_width)))
    bottom = max(top + 1, int(np.ceil((y + h) * input_height)))
    return binary(mask[top:bottom, left:right])


def crop_to_fraction(mask: npt.NDArray[np.bool_], kept: Box) -> npt.NDArray[np.bool_]:
    """What of a box's mask is left when the box is clipped to ``kept`` (x, y, w, h of the box, 0-1)."""
    rows, columns = mask.shape
    x, y, w, h = kept
    left, top = round(x * columns), round(y * rows)
    right = max(left + 1, round((x + w) * columns))
    bottom = max(top + 1, round((y + h) * rows))
    return mask[top:bottom, left:right]
