"""The release (tools/release.py, run by .github/workflows/release.yml on a tag): its dry run passes here,
and a version that is not the tag's is refused with a message naming the file and the fix.

The dry run lints, packages and renders the chart with the pinned helm (tools/build-tools.sh builds it)
and checks the CRD; those tests are skipped only where no helm binary is found. The refusals run on a
copy of the version carriers (Chart.yaml, values.yaml, pyproject.toml, controller/reconcile.py) and need
no helm.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import release
from tools.release import ReleaseError, check_versions, set_version

REPO = Path(__file__).resolve().parents[2]
HELM = release.find_helm()
VERSION = release.chart_version()
needs_helm = pytest.mark.skipif(
    HELM is None,
    reason="no helm binary ($HELM, PATH, ~/.cache/autolabel-operator/tools/bin from build-tools.sh)",
)
CARRIERS = (release.CHART_YAML, release.VALUES, release.PYPROJECT, release.RECONCILE)


def packaged(package: Path, name: str) -> Any:
    with tarfile.open(package) as tar:
        member = tar.extractfile(f"autolabel-operator/{name}")
        assert member is not None
        return yaml.safe_load(member.read())


@needs_helm
def test_dry_run_checks_packages_and_prints_the_pushes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--dry-run", "--tag", f"v{VERSION}", "--out", str(tmp_path), "--helm", str(HELM)]
    assert release.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    package = tmp_path / f"autolabel-operator-{VERSION}.tgz"
    chart = packaged(package, "Chart.yaml")
    assert chart["version"] == chart["appVersion"] == VERSION
    assert (tmp_path / "autolabelrun.yaml").read_text() == (REPO / release.CRD).read_text()
    image = f"ghcr.io/autolabel/autolabel-operator:{VERSION}"
    assert f"would run: docker build --label org.opencontainers.image.version={VERSION} -t {image} ." in out
    assert f"would run: docker push {image}\n" in out
    assert f"push {package} oci://ghcr.io/autolabel/charts\n" in out
    assert f"would run: gh release create v{VERSION} {package} {tmp_path / 'autolabelrun.yaml'}" in out


@needs_helm
def test_dry_run_for_another_registry_points_every_image_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--dry-run",
        "--registry",
        "registry.example.com/team",
        "--out",
        str(tmp_path),
        "--helm",
        str(HELM),
    ]
    assert release.main(argv) == 0, capsys.readouterr().err
    values = packaged(tmp_path / f"autolabel-operator-{VERSION}.tgz", "values.yaml")
    image = "registry.example.com/team/autolabel-operator"
    assert values["image"]["repository"] == values["workerImage"]["repository"] == image
    assert f"{image}:*" in values["allowedImages"]
    assert f"would run: docker push {image}:{VERSION}\n" in capsys.readouterr().out


@needs_helm
def test_the_worker_service_account_carries_the_pull_secrets() -> None:
    values = ["--set", "imagePullSecrets[0].name=regcred", "--set", "worker.namespaces={team-a,team-b}"]
    chart = [str(REPO / release.CHART), "--kube-version", release.KUBE_VERSION]
    rendered = subprocess.run(
        [str(HELM), "template", "a", *chart, *values], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    documents = [doc for doc in yaml.safe_load_all(rendered) if doc]
    deployment = next(doc for doc in documents if doc["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    workers = [
        (doc["metadata"]["namespace"], doc["imagePullSecrets"])
        for doc in documents
        if doc["kind"] == "ServiceAccount" and doc["metadata"]["name"] == "autolabel-worker"
    ]
    assert workers == [("team-a", [{"name": "regcred"}]), ("team-b", [{"name": "regcred"}])]


def test_the_rendered_images_are_found() -> None:
    manifest = {
        "spec": {
            "containers": [{"image": "a:1", "env": [{"name": "AUTOLABEL_WORKER_IMAGE", "value": "b:1"}]}]
        }
    }
    assert sorted(release._images([manifest])) == ["a:1", "b:1"]


def test_the_checked_in_versions_are_one() -> None:
    assert check_versions(f"v{VERSION}") == VERSION


@pytest.fixture
def carriers(tmp_path: Path) -> Path:
    """A copy of the files that carry the version, as check_versions and set_version read them."""
    for relative in CARRIERS:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / relative, tmp_path / relative)
    return tmp_path


def test_a_tag_other_than_the_version_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert release.main(["--dry-run", "--tag", "v99.0.0", "--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert (
        f"charts/autolabel-operator/Chart.yaml: version is '{VERSION}', the tag v99.0.0 says '99.0.0'"
        in error
    )
    assert "`python -m tools.release --set-version 99.0.0` sets them all" in error
    assert not list(tmp_path.iterdir()), "nothing is packaged"


@pytest.mark.parametrize(
    ("path", "old", "named"),
    [
        (release.CHART_YAML, f'appVersion: "{VERSION}"', "Chart.yaml: appVersion is '0.0.9'"),
        (release.PYPROJECT, f'version = "{VERSION}"', "pyproject.toml: [project] version is '0.0.9'"),
        (
            release.RECONCILE,
            f"operator:{VERSION}",
            "controller/reconcile.py: JobSettings.image's version is '0.0.9'",
        ),
    ],
)
def test_a_carrier_with_another_version_is_refused(carriers: Path, path: Path, old: str, named: str) -> None:
    text = (carriers / path).read_text()
    assert old in text
    (carriers / path).write_text(text.replace(old, old.replace(VERSION, "0.0.9"), 1))
    with pytest.raises(ReleaseError) as refused:
        check_versions(f"v{VERSION}", carriers)
    assert f"{named}, the tag v{VERSION} says '{VERSION}': set it to '{VERSION}'" in str(refused.value)
    assert f"--set-version {VERSION}` sets them all" in str(refused.value)


def test_a_pinned_image_tag_in_values_is_refused(carriers: Path) -> None:
    values = carriers / release.VALUES
    values.write_text(values.read_text().replace('tag: ""', f'tag: "{VERSION}"', 1))
    with pytest.raises(ReleaseError) as refused:
        check_versions(f"v{VERSION}", carriers)
    assert f"values.yaml: image.tag is '{VERSION}': set it to \"\" so the image follows appVersion" in str(
        refused.value
    )


@pytest.mark.parametrize("tag", ["0.1.0", "v0.1", "release-1", "v0.1.0+build"])
def test_a_tag_that_is_not_a_version_is_refused(tag: str) -> None:
    with pytest.raises(ReleaseError, match=r"is not v<major>\.<minor>\.<patch>"):
        check_versions(tag)


def test_set_version_writes_every_carrier(carriers: Path) -> None:
    set_version("1.2.3-rc.1", carriers)
    assert check_versions("v1.2.3-rc.1", carriers) == "1.2.3-rc.1"
    assert 'appVersion: "1.2.3-rc.1"' in (carriers / release.CHART_YAML).read_text()
    with pytest.raises(ReleaseError, match=r"is not <major>\.<minor>\.<patch>"):
        set_version("1.2", carriers)


def test_the_workflow_runs_the_release_on_version_tags() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/release.yml").read_text())
    assert workflow.get("on", workflow.get(True)) == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads `on` as True
    steps = workflow["jobs"]["release"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps)
    assert 'python -m tools.release --tag "$GITHUB_REF_NAME" --registry "ghcr.io/$owner"' in commands
    lines = (REPO / "tools/versions.env").read_text().splitlines()
    pinned = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    helm = next(step for step in steps if step.get("uses", "").startswith("azure/setup-helm"))
    assert helm["with"]["version"] == f"v{pinned['HELM_VERSION']}"
