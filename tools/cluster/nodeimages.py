"""Container images for the real node, built locally: no registry is reachable here.

Images are built with Debian's buildah (overlay storage under the cache, no daemon)
and written as OCI archives into a cache outside the repository, keyed by what
they are made of; `import_image` loads an archive into the node's containerd
(`k8s.io` namespace, the one the CRI plugin serves) unless it is already there.
Pods name them with `imagePullPolicy: Never` or `IfNotPresent`.

The busybox image (Debian's static busybox) serves the harness's own tests and,
with its default command (sleep until SIGTERM), as the pod sandbox ("pause") image.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGES_CACHE = Path(
    os.environ.get("AUTOLABEL_IMAGES_CACHE", Path.home() / ".cache" / "autolabel-operator" / "node-images")
)
BUSYBOX = Path("/bin/busybox")
# Sleeps until told to stop, and stops at once on SIGTERM (a plain `sleep` as PID 1 ignores it).
PAUSE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait"]


class ImageBuildError(RuntimeError):
    """buildah or ctr failed; the message carries what it printed."""


@dataclass(frozen=True)
class LocalImage:
    """An image reference and the OCI archive that holds it."""

    ref: str
    archive: Path


def run_checked(argv: Sequence[str], timeout: float = 3600) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise ImageBuildError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result.stdout


def buildah_argv(*args: str) -> list[str]:
    """buildah with the cache's own storage, no system config touched. The overlay driver, not vfs: vfs
    stores a full copy of the root filesystem per layer (20 GB for the project's 1.5 GB image)."""
    storage = IMAGES_CACHE / "buildah"
    return [
        "buildah",
        "--root",
        str(storage / "root"),
        "--runroot",
        str(storage / "runroot"),
        "--storage-driver",
        "overlay",
        *args,
    ]


def package_version(package: str) -> str:
    """The installed Debian package's version (a cache key)."""
    return run_checked(["dpkg-query", "-W", "-f", "${Version}", package]).strip()


def busybox_image() -> LocalImage:
    """Debian's static busybox with its applets linked in /bin; built once per busybox version."""
    version = re.sub(r"[^\w.-]", "_", package_version("busybox-static"))  # a valid image tag
    image = LocalImage(f"localhost/autolabel/busybox:{version}", IMAGES_CACHE / f"busybox-{version}.tar")
    if image.archive.exists():
        return image
    with tempfile.TemporaryDirectory(prefix="busybox-rootfs-") as tmp:
        rootfs = Path(tmp)
        (rootfs / "bin").mkdir()
        (rootfs / "tmp").mkdir(mode=0o1777)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        for applet in run_checked([str(BUSYBOX), "--list"]).split():
            if applet != "busybox":
                (rootfs / "bin" / applet).symlink_to("busybox")
        build_from_rootfs(image, rootfs, PAUSE_COMMAND)
    return image


def build_from_rootfs(image: LocalImage, rootfs: Path, cmd: Sequence[str], env: Sequence[str] = ()) -> None:
    """`FROM scratch` + the folder's content, committed straight into the image's OCI archive."""
    image.archive.parent.mkdir(parents=True, exist_ok=True)
    container = run_checked(buildah_argv("from", "scratch")).strip()
    try:
        run_checked(buildah_argv("copy", container, f"{rootfs}/", "/"))
        config = ["config", "--cmd", json.dumps(list(cmd))]
        for item in env:
            config += ["--env", item]
        run_checked(buildah_argv(*config, container))
        partial = image.archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        run_checked(buildah_argv("commit", "--rm", container, f"oci-archive:{partial}:{image.ref}"))
        container = ""
        partial.rename(image.archive)
    finally:
        if container:
            with contextlib.suppress(ImageBuildError):
                run_checked(buildah_argv("rm", container))


def image_present(ctr: Sequence[str], ref: str) -> bool:
    return ref in run_checked([*ctr, "-n", "k8s.io", "images", "ls", "-q"]).split()


def import_image(ctr: Sequence[str], image: LocalImage) -> None:
    """Loads the archive into containerd's `k8s.io` namespace under its reference (no-op when present)."""
    if image_present(ctr, image.ref):
        return
    # The archive names its image (annotation org.opencontainers.image.ref.name, a full reference).
    run_checked([*ctr, "-n", "k8s.io", "images", "import", str(image.archive)])
    if not image_present(ctr, image.ref):
        raise ImageBuildError(f"{image.archive} imported but containerd has no image {image.ref}")
