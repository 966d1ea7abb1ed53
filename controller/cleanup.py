"""Removing a run's unfinalized predictions from its dataset (deletion policy `delete`).

Like validation, the dataset work runs in a subprocess (`python -m inference
discard`) with the run's database URI, never on the controller's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from controller.api import AutoLabelRun
from controller.builders import (
    DATABASE_NAME_ENV,
    DATABASE_NAME_KEY,
    DATABASE_URI_ENV,
    WORKER_CONFIG_ENV,
    worker_config,
)
from controller.kube import Kube

DISCARD_TIMEOUT_SECONDS = 600


class CleanupUnavailable(Exception):
    """The predictions could not be removed now (Secret or database unavailable)."""


async def delete_predictions(run: AutoLabelRun, kube: Kube) -> int:
    """Removes the run's staged predictions; returns how many labels went."""
    namespace = run.metadata["namespace"]
    ref = run.spec.dataset.database_secret_ref
    secret = await kube.read_secret(namespace, ref.name)
    if not secret or not secret.get(ref.key):
        raise CleanupUnavailable(f"Secret {namespace}/{ref.name} (key {ref.key}) is gone")
    env = {
        **os.environ,
        DATABASE_URI_ENV: secret[ref.key],
        WORKER_CONFIG_ENV: json.dumps(worker_config(run.metadata, run.spec)),
    }
    if secret.get(DATABASE_NAME_KEY):
        env[DATABASE_NAME_ENV] = secret[DATABASE_NAME_KEY]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "inference",
        "discard",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), DISCARD_TIMEOUT_SECONDS)
    except TimeoutError as error:
        process.kill()
        await process.wait()
        raise CleanupUnavailable(f"discard ran past {DISCARD_TIMEOUT_SECONDS}s") from error
    if process.returncode != 0:
        tail = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise CleanupUnavailable(f"discard exited {process.returncode}: {tail}")
    lines = [line for line in stdout.decode().splitlines() if line.startswith("{")]
    return int(json.loads(lines[-1]).get("removed", 0)) if lines else 0
