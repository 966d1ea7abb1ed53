"""Triton python-backend model: MediaPipe face detection (tflite model inside the mediapipe wheel).

Returns relative x1, y1, x2, y2 boxes, scores and labels (0 = face) per image,
padded with label -1 to the largest detection count in the response.
"""

import json

import mediapipe as mp
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        min_confidence = float(
            config.get("parameters", {}).get("min_confidence", {}).get("string_value", "0.3")
        )
        self.detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )

    def _detect(self, image):
        result = self.detector.process(np.ascontiguousarray(image))
        boxes, scores = [], []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            x1, y1 = max(0.0, box.xmin), max(0.0, box.ymin)
            x2, y2 = min(1.0, box.xmin + box.width), min(1.0, box.ymin + box.height)
            if x2 > x1 and y2 > y1:
                boxes.append([x1, y1, x2, y2])
                scores.append(detection.score[0])
        return boxes, scores

    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            found = [self._detect(image) for image in images]
            width = max(1, max(len(scores) for _, scores in found))
            boxes = np.zeros((len(images), width, 4), dtype=np.float32)
            scores = np.zeros((len(images), width), dtype=np.float32)
            labels = np.full((len(images), width), -1, dtype=np.int32)
            for row, (image_boxes, image_scores) in enumerate(found):
                count = len(image_scores)
                if count:
                    boxes[row, :count] = image_boxes
                    scores[row, :count] = image_scores
                    labels[row, :count] = 0
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("BOXES", boxes),
                        pb_utils.Tensor("SCORES", scores),
                        pb_utils.Tensor("LABELS", labels),
                    ]
                )
            )
        return responses
