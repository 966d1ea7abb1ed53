"""The release of one version: the image, the Helm chart (as an OCI artifact) and the CRD, from a tag.

The version has one source, `version` in charts/autolabel-operator/Chart.yaml; the chart's appVersion,
pyproject.toml's version and the controller's fallback worker image (controller/reconcile.py) must carry
it too, and the chart's image tags stay "" so the images follow appVersion. Run by the tag workflow
(.github/workflows/release.yml) and by `make release-dry-run`:

    python -m tools.release --set-version 0.2.0     # before the release commit
    python -m tools.release --tag v0.2.0 --registry ghcr.io/<owner> [--dry-run]

It refuses a tag that differs from those versions (naming the file and the fix), runs `helm lint` and
`helm package` on a copy of the chart whose default images are `<registry>/autolabel-operator`,
renders the package (`helm template`) and checks that every image reference is `<image>:<version>`,
and checks the CRD against `controller.crdgen`. Then it builds and pushes the image, `helm push`es the
package to `oci://<registry>/charts` and creates the GitHub release with the package and the CRD;
with --dry-run it prints those commands instead. docs/release.md describes the procedure.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from controller.crdgen import drift, render_crd

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = Path("charts/autolabel-operator")
CHART_YAML = CHART / "Chart.yaml"
VALUES = CHART / "values.yaml"
PYPROJECT = Path("pyproject.toml")
RECONCILE = Path("controller/reconcile.py")
CRD = Path("crds/autolabelrun.yaml")
IMAGE_NAME = "autolabel-operator"
KUBE_VERSION = "1.34.0"
TAG = re.compile(r"v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)")


class ReleaseError(Exception):
    """The release cannot go on; the message says what to fix."""


def chart_version(root: Path = REPO_ROOT) -> str:
    """The release version: Chart.yaml's `version`."""
    return str(yaml.safe_load((root / CHART_YAML).read_text())["version"])


def _fallback_worker_image(root: Path) -> str:
    """The default of `JobSettings.image` in controller/reconcile.py (the image without the chart)."""
    for node in ast.walk(ast.parse((root / RECONCILE).read_text())):
        if isinstance(node, ast.ClassDef) and node.name == "JobSettings":
            for item in node.body:
                if (
                    isinstance(item, ast.AnnAssign)
                    and ast.unparse(item.target) == "image"
                    and isinstance(item.value, ast.Constant)
                ):
                    return str(item.value.value)
    raise ReleaseError(f"{RECONCILE}: no default image in JobSettings")


def check_versions(tag: str, root: Path = REPO_ROOT) -> str:
    """The version of `tag` (v<version>) when every version carrier matches it; else ReleaseError."""
    match = TAG.fullmatch(tag)
    if not match:
        raise ReleaseError(f"tag {tag!r} is not v<major>.<minor>.<patch>[-<pre-release>], e.g. v0.1.0")
    version = match.group(1)
    chart = yaml.safe_load((root / CHART_YAML).read_text())
    values = yaml.safe_load((root / VALUES).read_text())
    project = tomllib.loads((root / PYPROJECT).read_text())["project"]
    carriers = [
        (CHART_YAML, "version", str(chart["version"])),
        (CHART_YAML, "appVersion", str(chart["appVersion"])),
        (PYPROJECT, "[project] version", str(project["version"])),
        (RECONCILE, "JobSettings.image's version", _fallback_worker_image(root).rpartition(":")[2]),
    ]
    problems = [
        f"{path}: {what} is {found!r}, the tag {tag} says {version!r}: set it to {version!r}"
        for path, what, found in carriers
        if found != version
    ]
    if problems:
        problems.append(f"`python -m tools.release --set-version {version}` sets them all")
    problems += [
        f'{VALUES}: {key}.tag is {values[key]["tag"]!r}: set it to "" so the image follows appVersion'
        for key in ("image", "workerImage")
        if values[key]["tag"]
    ]
    if problems:
        fix = f"then commit and tag that commit {tag} (docs/release.md)"
        raise ReleaseError("the version is not the tag's everywhere:\n  " + "\n  ".join([*problems, fix]))
    return version


def set_version(version: str, root: Path = REPO_ROOT) -> None:
    """Writes `version` into every version carrier (`--set-version`, before the release commit)."""
    if not TAG.fullmatch(f"v{version}"):
        raise ReleaseError(f"version {version!r} is not <major>.<minor>.<patch>[-<pre-release>]")
    edits = [
        (CHART_YAML, r"^version: .*$", f"version: {version}"),
        (CHART_YAML, r"^appVersion: .*$", f'appVersion: "{version}"'),
        (PYPROJECT, r'^version = ".*"$', f'version = "{version}"'),
        (RECONCILE, r'^(    image: str = "[^"]+):[^"]+"', rf'\1:{version}"'),
    ]
    for path, pattern, replacement in edits:
        text = (root / path).read_text()
        new, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
        if count != 1:
            raise ReleaseError(f"{path}: no line matches {pattern}")
        (root / path).write_text(new)


def find_helm() -> str | None:
    """helm from $HELM, PATH or the pinned tools' cache (tools/build-tools.sh)."""
    cache = Path(os.environ.get("AUTOLABEL_TOOLS_CACHE", Path.home() / ".cache/autolabel-operator/tools"))
    for candidate in (os.environ.get("HELM"), shutil.which("helm"), str(cache / "bin" / "helm")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _run(argv: Sequence[str]) -> str:
    print(f"run: {shlex.join(argv)}", flush=True)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise ReleaseError(f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def _images(node: Any) -> Iterator[str]:
    """Every container image and AUTOLABEL_WORKER_IMAGE value in rendered manifests."""
    if isinstance(node, dict):
        if isinstance(node.get("image"), str):
            yield node["image"]
        if node.get("name") == "AUTOLABEL_WORKER_IMAGE":
            yield str(node["value"])
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            yield from _images(item)


def package_chart(helm: str, version: str, image: str, out: Path) -> Path:
    """Lints and packages a copy of the chart whose default images are `image`; returns the package."""
    with tempfile.TemporaryDirectory(prefix="release-chart-") as tmp:
        chart = Path(tmp) / CHART.name
        shutil.copytree(REPO_ROOT / CHART, chart)
        values = chart / "values.yaml"
        default = yaml.safe_load(values.read_text())["image"]["repository"]
        values.write_text(values.read_text().replace(default, image))  # images and the allow-list
        _run([helm, "lint", str(chart), "--strict", "--kube-version", KUBE_VERSION])
        _run([helm, "package", str(chart), "--version", version, "--app-version", version, "-d", str(out)])
    package = out / f"{CHART.name}-{version}.tgz"
    rendered = _run([helm, "template", "autolabel", str(package), "--kube-version", KUBE_VERSION])
    images = sorted(set(_images(list(yaml.safe_load_all(rendered)))))
    if images != [f"{image}:{version}"]:
        raise ReleaseError(f"the packaged chart renders the images {images}, not only {image}:{version}")
    return package


def copy_crd(out: Path) -> Path:
    """The CRD of the release, after checking every checked-in copy against the generator."""
    diffs = drift(REPO_ROOT, render_crd())
    if diffs:
        raise ReleaseError("".join(diffs) + "the CRD differs from controller/api: run `make crds`, commit")
    return Path(shutil.copy(REPO_ROOT / CRD, out / CRD.name))


def publish_commands(
    tag: str, version: str, registry: str, package: Path, crd: Path, helm: str, engine: str
) -> list[list[str]]:
    """Build and push the image, push the chart, create the GitHub release with the chart and the CRD."""
    image = f"{registry}/{IMAGE_NAME}:{version}"
    oci = f"oci://{registry}/charts"
    notes = (
        f"helm install autolabel {oci}/{CHART.name} --version {version} -n autolabel --create-namespace\n"
        f"Image: {image}. After a chart upgrade: kubectl apply --server-side -f {CRD.name}\n"
        "Changes: CHANGELOG.md."
    )
    return [
        [engine, "build", "--label", f"org.opencontainers.image.version={version}", "-t", image, "."],
        [engine, "push", image],
        [helm, "push", str(package), oci],
        ["gh", "release", "create", tag, str(package), str(crd), "--verify-tag", "--notes", notes],
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__.splitlines()[0])
    parser.add_argument("--tag", help="the release tag, v<version> (default: v<Chart.yaml's version>)")
    parser.add_argument("--registry", default="ghcr.io/autolabel", help="image and charts go under it")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist", help="chart package and CRD")
    parser.add_argument("--helm", default=find_helm(), help="helm binary (default: $HELM, PATH, tools cache)")
    parser.add_argument("--engine", default="docker", help="builds and pushes the image (docker, podman)")
    parser.add_argument("--dry-run", action="store_true", help="check and package; print what would publish")
    parser.add_argument("--set-version", metavar="VERSION", help="write VERSION everywhere; stop")
    args = parser.parse_args(argv)
    tag = f"v{args.set_version}" if args.set_version else args.tag or f"v{chart_version()}"
    try:
        if args.set_version:
            set_version(args.set_version)
            print(f"version {check_versions(tag)}: {CHART_YAML}, {PYPROJECT}, {RECONCILE}")
            return 0
        version = check_versions(tag)
        if args.helm is None:
            raise ReleaseError("helm not found: pass --helm, put it on PATH or run ./tools/build-tools.sh")
        args.out.mkdir(parents=True, exist_ok=True)
        image = f"{args.registry}/{IMAGE_NAME}"
        package = package_chart(args.helm, version, image, args.out)
        crd = copy_crd(args.out)
        print(f"checked {tag}: chart {package}, images {image}:{version}, CRD {crd}")
        for command in publish_commands(tag, version, args.registry, package, crd, args.helm, args.engine):
            if args.dry_run:
                print(f"would run: {shlex.join(command)}")
            else:
                subprocess.run(command, check=True, cwd=REPO_ROOT)
    except ReleaseError as error:
        print(f"release {tag}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
