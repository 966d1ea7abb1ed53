"""Where an image sits in the model input, and predictions mapped from the input back onto the image.

A stretched image fills the whole input, so relative coordinates of the input are
relative coordinates of the image. A letterboxed image keeps its aspect: it is
scaled by one factor, centred, and the rest is padding; boxes and masks found in
the input are mapped back through that window exactly (padding cut off, the
content rescaled), so labels land on the original image whatever its shape.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from inference.adapters.base import BoxPrediction, DetectionPrediction, Prediction, SegmentationPrediction
from inference.adapters.instances import crop_to_fraction


@dataclass(frozen=True)
class Window:
    """The image's content rectangle inside a model input of ``input_width`` x ``input_height`` pixels."""

    x: int
    y: int
    width: int
    height: int
    input_width: int
    input_height: int

    @property
    def fills_input(self) -> bool:
        return (self.x, self.y, self.width, self.height) == (0, 0, self.input_width, self.input_height)


def stretch_window(input_width: int, input_height: int) -> Window:
    return Window(0, 0, input_width, input_height, input_width, input_height)


def letterbox_window(image_width: int, image_height: int, input_width: int, input_height: int) -> Window:
    """Scale to fit (aspect kept, at least a pixel each way), centred; odd padding: the extra pixel right."""
    factor = min(input_width / image_width, input_height / image_height)
    width = min(input_width, max(1, round(image_width * factor)))
    height = min(input_height, max(1, round(image_height * factor)))
    return Window(
        (input_width - width) // 2, (input_height - height) // 2, width, height, input_width, input_height
    )


Box = tuple[float, float, float, float]


def box_to_image(box: Box, window: Window) -> Box | None:
    """A relative [x, y, w, h] of the input -> relative to the image, clipped; None when only padding."""
    x, y, w, h = box
    x1 = (x * window.input_width - window.x) / window.width
    y1 = (y * window.input_height - window.y) / window.height
    x2 = ((x + w) * window.input_width - window.x) / window.width
    y2 = ((y + h) * window.input_height - window.y) / window.height
    x1, x2 = min(max(x1, 0.0), 1.0), min(max(x2, 0.0), 1.0)
    y1, y2 = min(max(y1, 0.0), 1.0), min(max(y2, 0.0), 1.0)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2 - x1, y2 - y1)


def _kept_fraction(box: Box, mapped: Box, window: Window) -> Box:
    """Which part (x, y, w, h as fractions of ``box``) of an input box its clipped image box covers."""
    x, y, w, h = box
    mx, my, mw, mh = mapped
    left = (mx * window.width + window.x) / window.input_width
    top = (my * window.height + window.y) / window.input_height
    width = mw * window.width / window.input_width
    height = mh * window.height / window.input_height
    return ((left - x) / w, (top - y) / h, width / w, height / h)


def to_image(prediction: Prediction, window: Window) -> Prediction:
    """``prediction`` (made on the model input) as it lies on the image."""
    if prediction is None or window.fills_input:
        return prediction
    if isinstance(prediction, DetectionPrediction):
        boxes: list[BoxPrediction] = []
        for box in prediction.boxes:
            mapped = box_to_image(box.bounding_box, window)
            if mapped is None:
                continue
            instance = box.mask
            if instance is not None:  # the box lost what lay on the padding: its mask loses the same part
                instance = crop_to_fraction(instance, _kept_fraction(box.bounding_box, mapped, window))
            boxes.append(replace(box, bounding_box=mapped, mask=instance))
        return DetectionPrediction(boxes=tuple(boxes))
    if isinstance(prediction, SegmentationPrediction):
        mask = prediction.mask
        rows, columns = mask.shape[:2]
        # A mask at a size other than the input's is scaled onto it first (integer pixel window).
        top, left = window.y * rows // window.input_height, window.x * columns // window.input_width
        bottom = (window.y + window.height) * rows // window.input_height
        right = (window.x + window.width) * columns // window.input_width
        return replace(prediction, mask=mask[top : max(bottom, top + 1), left : max(right, left + 1)].copy())
    return prediction
