"""Triton python-backend model: logistic regression on scikit-learn's digits, trained at load time.

The training half is fixed (`split`, seed 0), so every load gives the same weights and the
benchmark can label exactly the images the model never saw. Each training image is also
used shifted by one pixel in the 8 directions, as the benchmark shifts the held-out ones.
"""

import numpy as np
import triton_python_backend_utils as pb_utils
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

SEED = 0
SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def split(count):
    """Indices of the training half and the held-out half of load_digits (seed 0)."""
    order = np.random.default_rng(SEED).permutation(count)
    return np.sort(order[: count // 2]), np.sort(order[count // 2 :])


def shifted(image, dy, dx):
    """`image` moved by (dy, dx) pixels, blank where it moved from."""
    out = np.zeros_like(image)
    height, width = image.shape
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


class TritonPythonModel:
    def initialize(self, args):
        digits = load_digits()
        train, _ = split(len(digits.target))
        features = np.array(
            [shifted(digits.images[i], dy, dx).reshape(64) for i in train for dy, dx in SHIFTS]
        )
        # A linear model is not shift-invariant: informative but imperfect confidences, the
        # case a confidence threshold alone gets wrong. Features scaled to 0-1 (fast to fit).
        self.model = LogisticRegression(C=0.2, max_iter=500)
        self.model.fit(features / 16.0, np.repeat(digits.target[train], len(SHIFTS)))

    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            features = images[..., 0].reshape(len(images), 64).astype(np.float64) / 255.0
            probabilities = self.model.predict_proba(features).astype(np.float32)
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("PROBABILITIES", probabilities)])
            )
        return responses
