"""Triton python-backend model: encoded image files (JPEG, PNG, ...) -> 224x224 RGB uint8, as the worker decodes.

The same steps as the worker's `inference.decode.Preprocessor` (PIL ``draft`` for a
reduced-scale JPEG decode, RGB, a whole-image bilinear resize), so an ensemble fed
file bytes sees the pixels the worker would have sent.
"""

import io

import numpy as np
import triton_python_backend_utils as pb_utils
from PIL import Image

SIZE = (224, 224)


def decode(data):
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", SIZE)
        return np.asarray(image.convert("RGB").resize(SIZE, Image.Resampling.BILINEAR), dtype=np.uint8)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            encoded = pb_utils.get_input_tensor_by_name(request, "ENCODED").as_numpy()
            try:
                images = np.stack([decode(bytes(row[0])) for row in encoded])
            except Exception as error:  # an undecodable file fails its request, not the model
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"decode: {error}")))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("IMAGE", images)]))
        return responses
