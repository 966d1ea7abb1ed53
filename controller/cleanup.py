"""Removing a run's unfinalized predictions from its dataset (deletion policy `delete`).

Like validation, the dataset work runs in `python -m inference discard` (see
dataset_command.py), never on the controller's event loop.
"""

from __future__ import annotations

from controller.api import AutoLabelRun
from controller.dataset_command import CommandFailed, SecretUnavailable, database_environment, run_command
from controller.kube import Kube

DISCARD_TIMEOUT_SECONDS = 600


class CleanupUnavailable(Exception):
    """The predictions could not be removed now (Secret or database unavailable)."""


async def delete_predictions(run: AutoLabelRun, kube: Kube) -> int:
    """Removes the run's staged predictions; returns how many labels went."""
    try:
        env = await database_environment(run, kube)
        result = await run_command(["discard"], env, DISCARD_TIMEOUT_SECONDS, "discard")
    except (SecretUnavailable, CommandFailed) as error:
        raise CleanupUnavailable(str(error)) from error
    return int(result.get("removed", 0))
