"""Triton python-backend model: finds red and blue rectangles, answering in the layout its config names.

A deterministic detector for the worker's output layouts and preprocessing. Its input is
float32 NCHW normalised with ImageNet's mean/std, which it undoes: a worker that scales or
normalises wrongly finds nothing. The padding of a letterbox (grey 114) is neither colour.
Classes: 0 red, 1 blue. The `layout` parameter picks the outputs:

- boxes: BOXES [N, 4] as x, y, width, height in input pixels, SCORES [N], LABELS [N] (-1 pads);
- yolov8: OUTPUT [4 + 2, N], centre x, y, w, h in pixels then per-class scores (a near
  duplicate of each box, scored lower, for NMS to remove, and low-score noise);
- yolov5: OUTPUT [N, 5 + 2], the same with an objectness column;
- efficient_nms: num_dets [1], det_boxes [K, 4] x1, y1, x2, y2 pixels, det_scores [K],
  det_classes [K], as TensorRT's EfficientNMS plugin (rows past num_dets hold junk);
- mask: MASK [H, W] INT32 class ids (0 background, 1 red, 2 blue);
- instance: the boxes layout plus MASKS [N, H, W] FP32, each box's colour mask over the whole input.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
SLOTS = 10  # efficient_nms: fixed number of rows


def colour_masks(image):
    rgb = image * STD + MEAN
    red = (rgb[0] > 0.6) & (rgb[1] < 0.35) & (rgb[2] < 0.35)
    blue = (rgb[2] > 0.6) & (rgb[0] < 0.35) & (rgb[1] < 0.35)
    return red, blue


def find(image):
    """[(class, (x1, y1, x2, y2) pixel edges, score)] of the one rectangle of each colour present."""
    found = []
    for index, mask in enumerate(colour_masks(image)):
        ys, xs = np.nonzero(mask)
        if len(xs) < 4:
            continue
        x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        found.append((index, (x1, y1, x2, y2), 0.5 + 0.5 * float(mask[y1:y2, x1:x2].mean())))
    return found


def yolo_rows(found, objectness):
    """Eight candidate rows per image: two per class (zero scores when absent) and four of noise."""
    by_class = {index: (box, score) for index, box, score in found}
    rows = []
    for index in (0, 1):
        (x1, y1, x2, y2), score = by_class.get(index, ((0, 0, 1, 1), 0.0))
        centre = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        for shift, factor in ((0, 1.0), (2, 0.8)):  # the box, and a near duplicate NMS drops
            classes = [0.0, 0.0]
            classes[index] = score * factor
            box = [centre[0] + shift, centre[1] + shift, centre[2], centre[3]]
            rows.append(box + ([1.0] if objectness else []) + classes)
    for step in range(4):  # noise below any sensible threshold
        rows.append([10.0 * step + 5, 5.0, 4.0, 4.0] + ([0.5] if objectness else []) + [0.01, 0.02])
    return np.array(rows, np.float32)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.layout = config["parameters"]["layout"]["string_value"]

    def _outputs(self, images):
        found = [find(image) for image in images]
        if self.layout == "mask":
            masks = np.zeros((len(images), *images.shape[2:]), np.int32)
            for row, image in enumerate(images):
                for index, mask in enumerate(colour_masks(image)):
                    masks[row][mask] = index + 1
            return {"MASK": masks}
        if self.layout in ("yolov8", "yolov5"):
            tables = [yolo_rows(f, self.layout == "yolov5") for f in found]
            stacked = np.stack(tables)
            return {"OUTPUT": stacked.transpose(0, 2, 1) if self.layout == "yolov8" else stacked}
        if self.layout == "efficient_nms":
            count = np.zeros((len(images), 1), np.int32)
            boxes = np.full((len(images), SLOTS, 4), 7.0, np.float32)  # junk past num_dets
            scores = np.full((len(images), SLOTS), 0.9, np.float32)
            classes = np.zeros((len(images), SLOTS), np.int32)
            for row, image_found in enumerate(found):
                count[row, 0] = len(image_found)
                for slot, (index, box, score) in enumerate(image_found):
                    boxes[row, slot], scores[row, slot], classes[row, slot] = box, score, index
            return {"num_dets": count, "det_boxes": boxes, "det_scores": scores, "det_classes": classes}
        width = max(1, max(len(f) for f in found))
        boxes = np.zeros((len(images), width, 4), np.float32)
        scores = np.zeros((len(images), width), np.float32)
        labels = np.full((len(images), width), -1, np.int32)
        for row, image_found in enumerate(found):
            for slot, (index, (x1, y1, x2, y2), score) in enumerate(image_found):
                boxes[row, slot] = (x1, y1, x2 - x1, y2 - y1)
                scores[row, slot], labels[row, slot] = score, index
        outputs = {"BOXES": boxes, "SCORES": scores, "LABELS": labels}
        if self.layout == "instance":
            masks = np.zeros((len(images), width, *images.shape[2:]), np.float32)
            for row, image_found in enumerate(found):
                colours = colour_masks(images[row])
                for slot, (index, _, _) in enumerate(image_found):
                    masks[row, slot] = colours[index]
            outputs["MASKS"] = masks
        return outputs

    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            outputs = self._outputs(images)
            tensors = [pb_utils.Tensor(name, value) for name, value in outputs.items()]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
