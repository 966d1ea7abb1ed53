"""tools/build-tools.sh builds each pinned tool once, also when two run at once (make -j, two checkouts).

Runs the real script against a temporary cache with a stand-in `go` on PATH that records each build and
takes a moment, as a real build does: two concurrent runs must both succeed and build nothing twice.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FAKE_GO = """#!/usr/bin/env bash
set -euo pipefail
if [ "$1" = list ]; then echo "$FAKE_SRC"; exit 0; fi
out=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2"; shift 2 ;; -*) shift ;; *) pkgs+=("$1"); shift ;; esac
done
echo "$PWD" >> "$FAKE_LOG"
sleep 0.5
for pkg in "${pkgs[@]}"; do
  name="$(basename "$pkg")"; case "$pkg" in go.etcd.io/*) name=server ;; esac
  [[ "$name" =~ ^v[0-9]+$ ]] && name=server
  printf '#!/bin/sh\\n' > "$out/$name"; chmod +x "$out/$name"
done
"""


def test_two_concurrent_runs_build_each_tool_once(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "go").write_text(FAKE_GO)
    (fake_bin / "go").chmod(0o755)
    source = tmp_path / "kueue-src" / "config" / "components"
    (source / "crd" / "bases").mkdir(parents=True)
    (source / "crd" / "bases" / "queue.yaml").write_text("kind: CustomResourceDefinition\n")
    (source / "webhook").mkdir()
    (source / "webhook" / "manifests.yaml").write_text("kind: ValidatingWebhookConfiguration\n")
    log = tmp_path / "builds.log"
    env = {
        **os.environ,
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "AUTOLABEL_TOOLS_CACHE": str(tmp_path / "cache"),
        "FAKE_SRC": str(tmp_path / "kueue-src"),
        "FAKE_LOG": str(log),
    }
    script = str(REPO / "tools" / "build-tools.sh")
    runs = [
        subprocess.Popen([script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    builds = log.read_text().splitlines()
    assert len(builds) == len(set(builds)), f"a module built twice: {builds}"
    bin_dir = Path(outputs[0][0].strip())
    for tool in ("kube-apiserver", "kubectl", "etcd", "kwok", "helm", "kueue", "minio"):
        assert os.access(bin_dir / tool, os.X_OK), tool
    assert (bin_dir / "kueue-config" / "webhooks.yaml").is_file()
