"""Runs a run's review, finalize or discard work as a ``python -m inference`` subprocess, off the event loop.

Like validation and cleanup: the database URI comes from the run's Secret into
the subprocess's environment, with the worker configuration
(``AUTOLABEL_WORKER_CONFIG``) and the run's ``spec.review`` as JSON
(``AUTOLABEL_REVIEW_CONFIG``); the verdict is the last JSON line on stdout.
The controller never opens a FiftyOne connection itself, and an asyncio
subprocess never blocks other runs while a long finalize is going on.
Failures come back as an outcome with an error, never as an exception.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
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
from controller.review import ReviewOutcome, ReviewWork

REVIEW_CONFIG_ENV = "AUTOLABEL_REVIEW_CONFIG"
TIMEOUT_SECONDS = {"review": 600, "finalize": 3600, "discard": 1800}


async def _environment(run: AutoLabelRun, kube: Kube) -> dict[str, str] | str:
    """The subprocess environment, or why it cannot be built."""
    namespace = run.metadata["namespace"]
    ref = run.spec.dataset.database_secret_ref
    secret = await kube.read_secret(namespace, ref.name)
    if not secret or not secret.get(ref.key):
        return (
            f"Secret {namespace}/{ref.name} (key {ref.key!r}) named by dataset.databaseSecretRef is missing"
        )
    env = {
        **os.environ,
        DATABASE_URI_ENV: secret[ref.key],
        WORKER_CONFIG_ENV: json.dumps(worker_config(run.metadata, run.spec)),
        REVIEW_CONFIG_ENV: json.dumps(run.spec.review.dump()),
    }
    if secret.get(DATABASE_NAME_KEY):
        env[DATABASE_NAME_ENV] = secret[DATABASE_NAME_KEY]
    return env


async def run_work(run: AutoLabelRun, work: ReviewWork, kube: Kube) -> ReviewOutcome:
    """Runs `work` for `run` and returns its outcome."""
    env = await _environment(run, kube)
    if isinstance(env, str):
        return ReviewOutcome(work, error=env)
    argv = work.argv()
    timeout = TIMEOUT_SECONDS.get(argv[0], 600)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "inference",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return ReviewOutcome(work, error=f"{work.describe()} ran past {timeout}s")
    lines = [line for line in stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:])
        return ReviewOutcome(work, error=f"{work.describe()} exited {process.returncode}: {tail}"[:2000])
    result: dict[str, Any] = json.loads(lines[-1])
    return ReviewOutcome(work, result=result)
