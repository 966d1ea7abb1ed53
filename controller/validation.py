"""Validation the schema cannot do, run before any Job starts, off the event loop.

The database Secret is read through the API; the dataset and Triton checks run
in a subprocess (`python -m inference probe`) that gets the URI in its
environment, so the controller process never opens a FiftyOne connection and
never blocks its event loop on dataset I/O.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from controller.api import AutoLabelRun, Reason
from controller.builders import (
    DATABASE_NAME_ENV,
    DATABASE_NAME_KEY,
    DATABASE_URI_ENV,
    WORKER_CONFIG_ENV,
    worker_config,
)
from controller.kube import Kube
from controller.reconcile import Validation

PROBE_TIMEOUT_SECONDS = 180


class ValidationUnavailable(Exception):
    """The check itself could not run (not a verdict on the spec); retry later."""


def _failed(generation: int, reason: Reason, message: str) -> Validation:
    return Validation(generation=generation, ok=False, reason=reason, message=message)


async def run_probe(env: Mapping[str, str], check_triton: bool) -> dict[str, Any]:
    argv = [sys.executable, "-m", "inference", "probe", *([] if check_triton else ["--skip-triton"])]
    process = await asyncio.create_subprocess_exec(
        *argv, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT_SECONDS)
    except TimeoutError as error:
        process.kill()
        await process.wait()
        raise ValidationUnavailable(f"the validation probe ran past {PROBE_TIMEOUT_SECONDS}s") from error
    lines = [line for line in stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    if not lines:
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise ValidationUnavailable(f"the validation probe exited {process.returncode}: {' | '.join(tail)}")
    verdict: dict[str, Any] = json.loads(lines[-1])
    return verdict


async def validate(run: AutoLabelRun, kube: Kube) -> Validation:
    """Checks the Secret, then the dataset and (for an endpoint) the Triton model."""
    generation = int(run.metadata.get("generation") or 0)
    namespace = run.metadata["namespace"]
    ref = run.spec.dataset.database_secret_ref
    secret = await kube.read_secret(namespace, ref.name)
    if secret is None:
        return _failed(
            generation,
            Reason.DATABASE_SECRET_MISSING,
            f"Secret {namespace}/{ref.name} named by dataset.databaseSecretRef does not exist; create "
            f"it with the database URI under key {ref.key!r}",
        )
    if not secret.get(ref.key):
        return _failed(
            generation,
            Reason.DATABASE_SECRET_MISSING,
            f"Secret {namespace}/{ref.name} has no key {ref.key!r}; put the database URI there or "
            "set dataset.databaseSecretRef.key",
        )
    env = {
        DATABASE_URI_ENV: secret[ref.key],
        WORKER_CONFIG_ENV: json.dumps(worker_config(run.metadata, run.spec)),
    }
    if secret.get(DATABASE_NAME_KEY):
        env[DATABASE_NAME_ENV] = secret[DATABASE_NAME_KEY]
    verdict = await run_probe(env, check_triton=run.spec.model.endpoint is not None)
    try:
        reason = Reason(verdict["reason"])
    except ValueError as error:
        raise ValidationUnavailable(
            f"the validation probe gave an unknown reason {verdict['reason']!r}"
        ) from error
    return Validation(
        generation=generation,
        ok=bool(verdict["ok"]),
        reason=reason,
        message=str(verdict["message"]),
        total=verdict.get("total"),
    )
