"""The Argo CD health check (deploy/argocd/health.lua) run by a real Lua interpreter on sample runs.

Argo CD evaluates health scripts with gopher-lua (Lua 5.1), so the script runs here under Lua 5.1
(lupa's lua51) and under lupa's default runtime; the argocd-cm snippet must carry the same script.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_LUA = REPO_ROOT / "deploy" / "argocd" / "health.lua"
ARGOCD_CM = REPO_ROOT / "deploy" / "argocd" / "argocd-cm.yaml"
HEALTH_KEY = "resource.customizations.health.autolabel.dev_AutoLabelRun"
RUNTIMES = ["lupa.lua51", "lupa"]


def lua_table(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: lua_table(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([lua_table(runtime, v) for v in value])
    return value


def health(module: str, run: dict[str, Any]) -> dict[str, Any]:
    """Runs the script as Argo CD does: the resource as global `obj`, the returned table is the health."""
    lupa = importlib.import_module(module)
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = lua_table(runtime, run)
    result = runtime.execute(HEALTH_LUA.read_text())
    return dict(result.items())


def run(phase: str | None, generation: int = 1, **status: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "autolabel.dev/v1alpha1",
        "kind": "AutoLabelRun",
        "metadata": {"name": "faces", "namespace": "labeling", "generation": generation},
        "spec": {"task": "detection"},
    }
    if phase is not None:
        document["status"] = {"phase": phase, "observedGeneration": 1, **status}
    return document


CASES = [
    (run(None), "Progressing", "Waiting for the autolabel controller"),
    (run("Pending"), "Progressing", "Pending"),
    (run("Inferring", progress={"summary": "40/120"}), "Progressing", "Inferring 40/120"),
    (run("Review", review={"total": 12, "approved": 9}), "Suspended", "9 of 12 labels approved"),
    (run("Review"), "Suspended", "waiting for approvals"),
    (run("Suspended"), "Suspended", "spec.suspend"),
    (run("Finalizing"), "Progressing", "Finalizing"),
    (run("Finalized", message="kept 9 approved labels"), "Healthy", "Finalized: kept 9 approved labels"),
    (run("Discarding"), "Progressing", "Discarding"),
    (run("Discarded"), "Healthy", "Discarded"),
    (run("Failed", message="ModelNotReady: face_detector"), "Degraded", "Failed: ModelNotReady"),
    (run("Failed", generation=2), "Progressing", "observe generation 2"),
]


@pytest.mark.parametrize("module", RUNTIMES)
@pytest.mark.parametrize(("document", "expected", "message"), CASES)
def test_health_of_sample_runs(module: str, document: dict[str, Any], expected: str, message: str) -> None:
    result = health(module, document)
    assert result["status"] == expected, result
    assert message in result["message"], result


def test_argocd_cm_snippet_carries_the_same_script() -> None:
    config_map = yaml.safe_load(ARGOCD_CM.read_text())
    assert config_map["kind"] == "ConfigMap" and config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["data"][HEALTH_KEY] == HEALTH_LUA.read_text()
