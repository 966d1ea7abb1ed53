"""The project's image, built from `Dockerfile` here, where no registry is reachable.

`python -m tools.cluster.projectimage` builds (or finds in the cache) two images and
prints their OCI archives:

1. a Python base made from Debian packages (mmdebstrap: `python3.11`, its venv
   module, `python-is-python3`, CA certificates; from the same Debian snapshot as
   this machine's apt sources), since the Dockerfile's public base
   (`python:3.11-slim-bookworm`) cannot be pulled; keyed by those sources and packages;
2. the project's image, `buildah bud --layers` of the unchanged `Dockerfile` with
   `--build-arg PYTHON_IMAGE=<that base>`; keyed by the lock file, `requirements/base.in`,
   the Dockerfile and the code it copies. buildah's layer cache stays in its storage, so
   a code change rebuilds only the project's own small layer (the Dockerfile installs it
   apart from the dependencies); a new lock file (or base) empties the storage first, so
   stale dependency layers do not pile up.

Both live under the node-images cache (tools/cluster/nodeimages.py); `import_image`
loads them into the real node's containerd.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.cluster.nodeimages import IMAGES_CACHE, LocalImage, buildah_argv, run_checked

REPO_ROOT = Path(__file__).resolve().parents[2]
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
BASE_PACKAGES = ("python3.11", "python3.11-venv", "python-is-python3", "ca-certificates", "passwd")
# What the Dockerfile copies into the image (its COPY lines), plus the Dockerfile itself.
IMAGE_INPUTS = (
    "Dockerfile",
    "requirements/base.in",
    "requirements/lock.txt",
    "pyproject.toml",
    "README.md",
    "contract",
    "controller",
    "worker",
    "inference",
    "steps",
    "review",
    "runtime",
)
IMAGE_NAME = "localhost/autolabel/autolabel-operator"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def _digest(paths: list[Path], extra: str = "") -> str:
    hasher = hashlib.sha256(extra.encode())
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            name = file.relative_to(REPO_ROOT) if file.is_relative_to(REPO_ROOT) else file
            hasher.update(str(name).encode())
            hasher.update(file.read_bytes())
    return hasher.hexdigest()[:12]


def _buildah(*args: str) -> str:
    return run_checked(buildah_argv(*args))


def _in_storage(ref: str) -> bool:
    inspect = subprocess.run(buildah_argv("inspect", "--type", "image", ref), capture_output=True)
    return inspect.returncode == 0


def debian_python_base() -> LocalImage:
    """Debian bookworm (minbase) with Python 3.11: the Dockerfile's PYTHON_IMAGE here."""
    key = _digest([APT_SOURCES], extra=" ".join(BASE_PACKAGES))
    image = LocalImage(f"localhost/autolabel/debian-python:{key}", IMAGES_CACHE / f"debian-python-{key}.tar")
    if not image.archive.exists():
        image.archive.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="debian-python-") as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            subprocess.run(
                [
                    "mmdebstrap",
                    "--variant=minbase",
                    "--quiet",
                    "--aptopt=APT::Install-Recommends false",
                    "--dpkgopt=path-exclude=/usr/share/doc/*",
                    "--dpkgopt=path-exclude=/usr/share/man/*",
                    "--dpkgopt=path-exclude=/usr/share/locale/*",
                    f"--include={','.join(BASE_PACKAGES)}",
                    "bookworm",
                    str(rootfs),
                    str(APT_SOURCES),
                ],
                check=True,
                capture_output=True,
                timeout=1800,
            )
            container = _buildah("from", "scratch").strip()
            try:
                _buildah("add", container, str(rootfs), "/")
                _buildah("config", "--cmd", '["python3"]', "--env", "LANG=C.UTF-8", container)
                partial = image.archive.with_suffix(".partial")
                partial.unlink(missing_ok=True)
                _buildah("commit", container, image.ref)
                _buildah("push", image.ref, f"oci-archive:{partial}:{image.ref}")
                partial.rename(image.archive)
            finally:
                subprocess.run(buildah_argv("rm", container), capture_output=True)
    if not _in_storage(image.ref):
        _buildah("pull", f"oci-archive:{image.archive}")
    return image


def project_image() -> LocalImage:
    """The Dockerfile built on the Debian base; the tag is the digest of everything it copies."""
    base = debian_python_base()
    key = _digest([REPO_ROOT / p for p in IMAGE_INPUTS], extra=base.ref)
    image = LocalImage(f"{IMAGE_NAME}:{key}", IMAGES_CACHE / f"autolabel-operator-{key}.tar")
    if image.archive.exists():
        return image
    _reset_layer_cache_on_new_dependencies(base)
    build_with_buildah(REPO_ROOT / "Dockerfile", image.ref, base)
    partial = image.archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    # buildah 1.28 gzips the archive's layers (seen: media type tar+gzip even with --disable-compression),
    # the unchanged dependency layer too: most of a rebuild after a code change is this push.
    _buildah("push", image.ref, f"oci-archive:{partial}:{image.ref}")
    partial.rename(image.archive)
    _buildah("rmi", image.ref)  # the tag only: the untagged layers are the cache of the next build
    for stale in IMAGES_CACHE.glob("autolabel-operator-*.tar"):
        if stale != image.archive:
            stale.unlink()
    return image


def build_with_buildah(dockerfile: Path, ref: str, base: LocalImage, *extra: str) -> None:
    """`buildah bud --layers` of `dockerfile` (context: the repository) on the Debian base, tagged `ref`.

    pip in the build trusts what this machine trusts (a TLS-intercepting proxy's CA, where there is
    one): a read-only volume and the PIP_CERT build argument, neither kept in the image.
    """
    host_ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or SYSTEM_CA_BUNDLE
    _buildah(
        "bud", "--layers", "--isolation", "chroot",
        "--volume", f"{host_ca}:/run/host-ca.crt:ro",
        "--build-arg", "PIP_CERT=/run/host-ca.crt",
        "--build-arg", f"PYTHON_IMAGE={base.ref}",
        *extra, "-f", str(dockerfile), "-t", ref, str(REPO_ROOT),
    )  # fmt: skip


def _reset_layer_cache_on_new_dependencies(base: LocalImage) -> None:
    """Empties buildah's storage of the previous dependency layers when the lock file or base changed."""
    key = _digest([REPO_ROOT / "requirements/lock.txt", REPO_ROOT / "requirements/base.in"], extra=base.ref)
    marker = IMAGES_CACHE / "buildah" / "dependencies.key"
    if marker.exists() and marker.read_text() == key:
        return
    # Every image but the bases (tagged and in use below): the prune drops the untagged cache layers.
    for ref in _buildah("images", "--format", "{{.Name}}:{{.Tag}}").split():
        if ref.startswith(IMAGE_NAME + ":"):
            _buildah("rmi", "--force", ref)
    _buildah("rmi", "--prune")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(key)


def main() -> int:
    start = time.monotonic()
    base = debian_python_base()
    print(f"base {base.ref} {base.archive} ({time.monotonic() - start:.0f}s)")
    image = project_image()
    print(f"image {image.ref} {image.archive} ({time.monotonic() - start:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
