"""Validation the schema cannot do, run before any Job starts, off the event loop.

The database Secret is read through the API; the dataset and Triton checks run
in `python -m inference probe` (see dataset_command.py), so the controller never
opens a FiftyOne connection and never blocks its event loop on dataset I/O.
"""

from __future__ import annotations

from controller.api import AutoLabelRun, Reason
from controller.dataset_command import CommandFailed, SecretUnavailable, database_environment, run_command
from controller.kube import Kube
from controller.reconcile import Validation

PROBE_TIMEOUT_SECONDS = 180


class ValidationUnavailable(Exception):
    """The check itself could not run (not a verdict on the spec); retry later."""


async def validate(run: AutoLabelRun, kube: Kube) -> Validation:
    """Checks the Secret, then the dataset and (for an endpoint) the Triton model."""
    generation = int(run.metadata.get("generation") or 0)
    try:
        env = await database_environment(run, kube)
    except SecretUnavailable as missing:
        return Validation(generation, ok=False, reason=Reason.DATABASE_SECRET_MISSING, message=str(missing))
    argv = ["probe"] if run.spec.model.endpoint is not None else ["probe", "--skip-triton"]
    try:
        verdict = await run_command(argv, env, PROBE_TIMEOUT_SECONDS, "the validation probe")
        reason = Reason(verdict["reason"])
    except (CommandFailed, KeyError, ValueError) as error:
        raise ValidationUnavailable(str(error)) from error
    return Validation(
        generation=generation,
        ok=bool(verdict["ok"]),
        reason=reason,
        message=str(verdict["message"]),
        total=verdict.get("total"),
    )
