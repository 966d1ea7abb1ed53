"""Triton python-backend model: logistic regression on scikit-learn's digits, trained at load time.

The training half is fixed (`split`, seed 0), so every load gives the same weights and the
benchmark can label exactly the images the model never saw.
"""

import numpy as np
import triton_python_backend_utils as pb_utils
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

SEED = 0


def split(count):
    """Indices of the training half and the held-out half of load_digits (seed 0)."""
    order = np.random.default_rng(SEED).permutation(count)
    return np.sort(order[: count // 2]), np.sort(order[count // 2 :])


class TritonPythonModel:
    def initialize(self, args):
        digits = load_digits()
        train, _ = split(len(digits.target))
        # Deliberately weak (strong regularisation): its confidences are informative but
        # imperfect, the case a confidence threshold alone gets wrong.
        self.model = LogisticRegression(C=0.002, max_iter=2000)
        self.model.fit(digits.data[train], digits.target[train])

    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            features = images[..., 0].reshape(len(images), 64).astype(np.float64) * (16.0 / 255.0)
            probabilities = self.model.predict_proba(features).astype(np.float32)
            responses.append(
                pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("PROBABILITIES", probabilities)])
            )
        return responses
