"""Triton python-backend model: MTCNN face detection (facenet-pytorch; P-, R- and O-net weights in its wheel).

Returns x1, y1, x2, y2 boxes in pixels of the input image, as MTCNN computes them
(clipped to the image here), scores and labels (0 = face) per image, padded with
label -1 to the largest detection count in the response.
"""

import json

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from facenet_pytorch import MTCNN


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"]).get("parameters", {})
        torch.set_num_threads(int(parameters.get("torch_threads", {}).get("string_value", "1")))
        min_face = int(parameters.get("min_face_size", {}).get("string_value", "20"))
        self.detector = MTCNN(keep_all=True, min_face_size=min_face, device=torch.device("cpu")).eval()

    def _detect(self, image):
        # One image at a time: MTCNN's batched result is a ragged object array.
        boxes, scores = self.detector.detect(np.ascontiguousarray(image))
        if boxes is None:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        height, width = image.shape[:2]
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        return boxes, np.asarray(scores, np.float32).reshape(-1)

    def _outputs(self, images):
        """BOXES, SCORES and LABELS for a batch, each image's rows padded to the most faces found."""
        found = [self._detect(image) for image in images]
        most = max([1] + [len(scores) for _, scores in found])
        pads = [(0, most - len(scores)) for _, scores in found]
        boxes = np.stack([np.pad(b, (pad, (0, 0))) for (b, _), pad in zip(found, pads)])
        scores = np.stack([np.pad(s, pad) for (_, s), pad in zip(found, pads)])
        labels = np.stack(
            [np.pad(np.zeros(len(s), np.int32), pad, constant_values=-1) for (_, s), pad in zip(found, pads)]
        )
        return [
            pb_utils.Tensor("BOXES", boxes.astype(np.float32)),
            pb_utils.Tensor("SCORES", scores.astype(np.float32)),
            pb_utils.Tensor("LABELS", labels),
        ]

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, "IMAGE").as_numpy() for r in requests]
        return [pb_utils.InferenceResponse(output_tensors=self._outputs(batch)) for batch in images]
