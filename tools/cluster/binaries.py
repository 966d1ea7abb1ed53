"""The pinned tool binaries (etcd, kube-apiserver, kubectl, helm, kwok, ...) and running kubectl and helm.

`tool_bin_dir()` builds the tools with `tools/build-tools.sh` (or finds them in its cache)
and returns their directory. `run_tool()` runs one of them to completion; with `check`,
a non-zero exit raises `ToolError`, whose message carries what the tool wrote to stderr.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

BUILD_TOOLS = Path(__file__).resolve().parents[1] / "build-tools.sh"


def tool_bin_dir() -> Path:
    """Builds (or finds, when cached) the pinned tools and returns their directory."""
    result = subprocess.run([str(BUILD_TOOLS)], check=True, capture_output=True, text=True)
    return Path(result.stdout.strip().splitlines()[-1])


class ToolError(subprocess.CalledProcessError):
    """A kubectl/helm call failed; str() includes what it printed to stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


def run_tool(
    argv: Sequence[str], input: str | None, check: bool, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Runs `argv` with `input` on its stdin and returns what it printed; see the module docstring."""
    result = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise ToolError(result.returncode, list(argv), result.stdout, result.stderr)
    return result
