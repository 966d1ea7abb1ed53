"""A worker or dataset command given a database URI whose password holds a `/` never prints the password.

Runs the real command processes (`python -m worker probe`, `run`) with the URI in the
environment as the Job's pods get it from the database Secret; everything they write to
stdout and stderr (pod logs, termination message, the verdict the controller reads) is
checked for any three characters of the password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_redact import URIS, leaks

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = {
    "run": {"namespace": "default", "name": "secret-run", "uid": "uid-secret"},
    "dataset": "never-opened",
    "shards": 1,
    "labelField": "auto",
    "task": "classification",
    "model": {"url": "127.0.0.1:1", "name": "m", "outputFormat": "logits"},
    "batchSize": 1,
    "maxInFlight": 1,
    "writeBatchSize": 1,
    "progress": {"kind": "none", "intervalS": 1.0},
}


def run_command(command: list[str], uri: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "FIFTYONE_DATABASE_URI": uri,
        "JOB_COMPLETION_INDEX": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "worker", *command, "--config", str(config)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("uri", URIS[:2])
def test_probe_verdict_and_logs_hold_no_password(uri: str, tmp_path: Path) -> None:
    result = run_command(["probe", "--skip-triton"], uri, tmp_path)
    assert not leaks(result.stdout + result.stderr, uri), result.stdout + result.stderr
    verdicts = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if verdicts and "ok" in verdicts[-1]:  # a database error pymongo raises as such becomes a verdict
        assert verdicts[-1]["ok"] is False and verdicts[-1]["reason"] == "DatabaseUnreachable"
    else:  # any other error: the step's {"error": ...} document (scrubbed, checked above) and a failed exit
        assert result.returncode != 0
        assert all("error" in verdict for verdict in verdicts)


@pytest.mark.parametrize("uri", URIS[:2])
def test_worker_failure_holds_no_password(uri: str, tmp_path: Path) -> None:
    result = run_command(["run"], uri, tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "fatal:" in output
    assert not leaks(output, uri), output
