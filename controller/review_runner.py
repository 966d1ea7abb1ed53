"""Runs a run's review, finalize or discard work as a ``python -m inference`` subprocess, off the event loop.

Like validation and cleanup (see dataset_command.py), with the run's
``spec.review`` added as JSON (``AUTOLABEL_REVIEW_CONFIG``).
The controller never opens a FiftyOne connection itself, and an asyncio
subprocess never blocks other runs while a long finalize is going on.
Failures come back as an outcome with an error, never as an exception.
"""

from __future__ import annotations

import json

from controller.api import AutoLabelRun
from controller.dataset_command import CommandFailed, SecretUnavailable, database_environment, run_command
from controller.kube import Kube
from controller.review import ReviewOutcome, ReviewWork

REVIEW_CONFIG_ENV = "AUTOLABEL_REVIEW_CONFIG"
TIMEOUT_SECONDS = {"review": 600, "finalize": 3600, "discard": 1800}


async def run_work(run: AutoLabelRun, work: ReviewWork, kube: Kube) -> ReviewOutcome:
    """Runs `work` for `run` and returns its outcome."""
    argv = work.argv()
    try:
        env = await database_environment(run, kube)
        env[REVIEW_CONFIG_ENV] = json.dumps(run.spec.review.dump())
        result = await run_command(argv, env, TIMEOUT_SECONDS.get(argv[0], 600), work.describe())
    except (SecretUnavailable, CommandFailed) as error:
        return ReviewOutcome(work, error=str(error))
    return ReviewOutcome(work, result=result)
