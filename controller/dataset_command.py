"""The one way the controller touches a dataset: `python -m inference <command>` in a subprocess.

Validation (`probe`), review work (`review`, `finalize`, `discard`) and cleanup all
run this way: the database URI goes from the run's Secret into the subprocess's
environment together with the worker configuration, the event loop only awaits
the process, and the answer is the last JSON line the command prints. The
controller never opens a FiftyOne connection itself (import-linter checks it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from controller.api import AutoLabelRun
from controller.builders import (
    DATABASE_NAME_ENV,
    DATABASE_NAME_KEY,
    DATABASE_URI_ENV,
    WORKER_CONFIG_ENV,
    worker_config,
)
from controller.kube import Kube


class SecretUnavailable(Exception):
    """The database Secret, or its key, does not exist; the message says which and how to fix it."""


class CommandFailed(Exception):
    """The command could not give an answer (crashed, timed out, printed no JSON)."""


async def database_environment(run: AutoLabelRun, kube: Kube) -> dict[str, str]:
    """Environment for a dataset command of `run`: database URI (and name) and worker configuration."""
    namespace = run.metadata["namespace"]
    ref = run.spec.dataset.database_secret_ref
    secret = await kube.read_secret(namespace, ref.name)
    if secret is None:
        raise SecretUnavailable(
            f"Secret {namespace}/{ref.name} named by dataset.databaseSecretRef does not exist; create it "
            f"with the database URI under key {ref.key!r}"
        )
    if not secret.get(ref.key):
        raise SecretUnavailable(
            f"Secret {namespace}/{ref.name} has no key {ref.key!r}; put the database URI there or set "
            "dataset.databaseSecretRef.key"
        )
    env = {
        DATABASE_URI_ENV: secret[ref.key],
        WORKER_CONFIG_ENV: json.dumps(worker_config(run.metadata, run.spec)),
    }
    if secret.get(DATABASE_NAME_KEY):
        env[DATABASE_NAME_ENV] = secret[DATABASE_NAME_KEY]
    return env


async def run_command(
    argv: Sequence[str], env: Mapping[str, str], timeout_seconds: float, what: str
) -> dict[str, Any]:
    """Runs `python -m inference *argv` and returns the last JSON object it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "inference",
        *argv,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_seconds)
    except TimeoutError as error:
        process.kill()
        await process.wait()
        raise CommandFailed(f"{what} ran past {timeout_seconds:.0f}s") from error
    lines = [line for line in stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise CommandFailed(f"{what} exited {process.returncode}: {tail}"[:2000])
    result: dict[str, Any] = json.loads(lines[-1])
    return result
