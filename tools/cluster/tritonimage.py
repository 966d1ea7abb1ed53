"""The Triton image for the sidecar mode on the real node, built here from `tools/cluster/triton.Dockerfile`.

No registry is reachable here, so NVIDIA's `nvcr.io/nvidia/tritonserver` cannot be
pulled. `python -m tools.cluster.tritonimage` builds (or finds in the cache) an image
that runs the way the controller's sidecar runs one (controller/builders.py): plain
`tritonserver --model-repository=/models --grpc-port=P --http-port=P+1 --metrics-port=P+2`
as user 1000, ready on `/v2/health/ready`. It holds

- `tritonserver` and the python backend from the `nvidia-pytriton` wheel, laid out as
  tools/services/triton.py lays them out for the host server (the stub matching the
  image's Python 3.11, `python3` on PATH the venv's, the wheel's libraries on
  LD_LIBRARY_PATH) but under tritonserver's default `/opt/tritonserver/backends`;
- numpy, Pillow, mediapipe and onnxruntime, pinned by `requirements/lock.txt`;
- under `/models`, the demo models that need nothing else (the Dockerfile's
  `COPY models/...` lines, `bundled_models()`).

Not torch (about 4 GB with its CUDA libraries): efficientnet_lite0 (and its `_encoded`
ensemble), efficientnet_lite0_onnx (its graph is exported with torch) and
face_detector_mtcnn stay out, as does digits_classifier (scikit-learn). The base is
`debian_python_base()`; buildah's layer cache (`bud --layers`, its storage kept) makes a
change to the models or the Dockerfile's tail rebuild only the layers after it. The
image's OCI archive lives in the node-images cache, keyed by the
Dockerfile, the lock file, the model folders copied and the base's reference.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
from pathlib import Path

from tools.cluster.nodeimages import IMAGES_CACHE, LocalImage, buildah_argv, run_checked
from tools.cluster.projectimage import REPO_ROOT, build_with_buildah, debian_python_base

DOCKERFILE = Path(__file__).with_name("triton.Dockerfile")
IGNORE_FILE = Path(__file__).with_name("triton.dockerignore")
LOCK_FILE = REPO_ROOT / "requirements" / "lock.txt"
IMAGE_NAME = "localhost/autolabel/tritonserver"
ARCHIVE_PREFIX = "tritonserver-"
MODEL_COPY = re.compile(r"^COPY\s+models/([\w.-]+)/?\s+/models/\1/?\s*$", re.MULTILINE)


def bundled_models(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The model folders the Dockerfile copies into /models, in its order."""
    return MODEL_COPY.findall(dockerfile.read_text())


def image_key(base_ref: str) -> str:
    """Digest of what the image is made of; files named by their path in the repository."""
    hasher = hashlib.sha256(base_ref.encode())
    inputs = [DOCKERFILE, IGNORE_FILE, LOCK_FILE, *(REPO_ROOT / "models" / m for m in bundled_models())]
    for path in inputs:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            hasher.update(str(file.relative_to(REPO_ROOT)).encode() + b"\0")
            hasher.update(file.read_bytes())
    return hasher.hexdigest()[:12]


def _stored_refs() -> set[str]:
    listing = run_checked(buildah_argv("images", "--format", "{{.Name}}:{{.Tag}}"))
    return set(listing.split())


def triton_image() -> LocalImage:
    """The image on the Debian Python base, from the cache when its inputs are unchanged."""
    base = debian_python_base()
    key = image_key(base.ref)
    image = LocalImage(f"{IMAGE_NAME}:{key}", IMAGES_CACHE / f"{ARCHIVE_PREFIX}{key}.tar")
    if image.archive.exists():
        return image
    build_with_buildah(DOCKERFILE, image.ref, base, "--ignorefile", str(IGNORE_FILE))
    partial = image.archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    # As projectimage pushes: buildah 1.28 gzips the layers (343 MiB for 966 MB), about 40 s here.
    run_checked(buildah_argv("push", image.ref, f"oci-archive:{partial}:{image.ref}"))
    partial.rename(image.archive)
    # Older builds: their archives and tags go; their layers stay only where the cache still uses them.
    for stale in IMAGES_CACHE.glob(f"{ARCHIVE_PREFIX}*.tar"):
        if stale != image.archive:
            stale.unlink()
    for ref in _stored_refs():
        if ref.startswith(f"{IMAGE_NAME}:") and ref != image.ref:
            subprocess.run(buildah_argv("rmi", ref), capture_output=True)
    return image


def main() -> int:
    start = time.monotonic()
    image = triton_image()
    size_mib = image.archive.stat().st_size / 2**20
    print(f"image {image.ref} {image.archive} ({size_mib:.0f} MiB, {time.monotonic() - start:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
