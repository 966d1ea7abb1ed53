"""Triton python-backend model: MediaPipe selfie segmentation (tflite model inside the mediapipe wheel).

Returns, per image, the probability that each pixel shows a person.
"""

import mediapipe as mp
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            masks = np.stack(
                [self.segmenter.process(np.ascontiguousarray(image)).segmentation_mask for image in images]
            ).astype(np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("MASK", masks)]))
        return responses
