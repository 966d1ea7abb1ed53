"""Triton python-backend model: scores each text prompt (a colour name) against the image's mean colour."""

import numpy as np
import triton_python_backend_utils as pb_utils

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 40),
    "white": (245, 245, 245),
    "black": (10, 10, 10),
}


def scores(image, prompts):
    mean = image.reshape(-1, 3).astype(np.float32).mean(axis=0)
    logits = np.full(len(prompts), -np.inf, dtype=np.float32)
    for index, prompt in enumerate(prompts):
        text = prompt.decode() if isinstance(prompt, bytes) else str(prompt)
        colour = COLOURS.get(text.strip().lower().removeprefix("a photo of ").removesuffix("."))
        if colour is not None:
            logits[index] = -np.linalg.norm(mean - np.array(colour, np.float32)) / 20.0
    if not np.isfinite(logits).any():
        return np.zeros(len(prompts), np.float32)
    exp = np.exp(logits - logits[np.isfinite(logits)].max())
    return (exp / exp.sum()).astype(np.float32)


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            prompts = pb_utils.get_input_tensor_by_name(request, "PROMPTS").as_numpy()
            result = np.stack([scores(image, prompts[row]) for row, image in enumerate(images)])
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("SCORES", result)]))
        return responses
