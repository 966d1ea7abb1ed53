"""The review subcommands of ``python -m worker``; each prints one JSON line on stdout.

- ``review-stats``: status.review numbers (and quality with a ground-truth field);
- ``apply-rules``: tag labels per the rules (idempotent);
- ``visualize``: saved views and the embeddings visualization;
- ``review``: any of the above in one process (``--apply-rules``, ``--visualize``,
  calibrated auto-approval when ``autoApprove`` is set, then always the statistics):
  one FiftyOne start-up instead of three;
- ``finalize``: promote approved labels, remove the rest (``--apply-rules`` applies
  the rules first);
- ``discard``'s review part: ``--review-aids`` also removes the saved views and brain run.

Each review pass and finalize also updates the run record in the dataset
(`runtime.run_record`); a review pass reports a reviewer's finalize request
recorded there by the App as ``finalizeRequested`` in its result, which the
controller acts on like ``spec.finalize``.

The review settings are the run's ``spec.review`` as JSON (camelCase), from
``--review JSON`` or the env var ``AUTOLABEL_REVIEW_CONFIG``; the run itself
comes from the worker configuration, as for ``probe``/``discard``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contract.env import REVIEW_CONFIG_ENV, Command, Flag
from contract.review import ReviewConfig
from contract.worker import WorkerConfig
from runtime import run_record
from runtime.errors import ConfigError

COMMANDS = (Command.REVIEW, Command.REVIEW_STATS, Command.APPLY_RULES, Command.VISUALIZE, Command.FINALIZE)


def add_parsers(commands: Any) -> None:
    """Registers the review subcommands on the main parser's subparsers."""
    helps = {
        Command.REVIEW: "apply rules / create review aids when asked, then print review statistics",
        Command.REVIEW_STATS: "print the run's review statistics as JSON",
        Command.APPLY_RULES: "tag the run's labels approved/rejected per spec.review rules",
        Command.VISUALIZE: "create the run's saved views and embeddings visualization",
        Command.FINALIZE: "keep approved labels in labelField, remove the rest of the run's predictions",
    }
    for name in COMMANDS:
        parser = commands.add_parser(name.value, help=helps[name])
        parser.add_argument(Flag.CONFIG, type=Path, default=None)
        parser.add_argument(
            "--review", default=None, help=f"spec.review as JSON (default: ${REVIEW_CONFIG_ENV})"
        )
        if name in (Command.REVIEW, Command.FINALIZE):
            parser.add_argument(Flag.APPLY_RULES, action="store_true", help="apply the rules first")
        if name == Command.REVIEW:
            parser.add_argument(Flag.VISUALIZE, action="store_true", help="create the review aids too")
        if name == Command.FINALIZE:
            parser.add_argument("--batch-size", type=int, default=1000, help="samples written per batch")


def load_review(text: str | None) -> ReviewConfig:
    raw = text if text is not None else os.environ.get(REVIEW_CONFIG_ENV)
    if not raw:
        return ReviewConfig()
    try:
        return ReviewConfig.model_validate_json(raw)
    except ValidationError as error:
        raise ConfigError(f"invalid review configuration: {error}") from error


def run(command: str, config: WorkerConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Runs one review subcommand; the result is printed as the JSON verdict."""
    import fiftyone as fo

    review = load_review(args.review)
    if command == Command.FINALIZE:
        from steps.finalize import finalize

        if args.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        if review.auto_approve is not None and fo.dataset_exists(config.dataset):
            from review.auto_approve import auto_approve

            auto_approve(fo.load_dataset(config.dataset), config, review.auto_approve)
        counts = finalize(config, review if args.apply_rules else None, args.batch_size)
        run_record.finalized(config, counts)
        return counts
    if not fo.dataset_exists(config.dataset):
        raise ConfigError(f"dataset {config.dataset!r} does not exist")
    dataset = fo.load_dataset(config.dataset)
    from review.aids import create_aids
    from review.decisions import apply_rules, review_stats

    if command == Command.APPLY_RULES:
        return apply_rules(dataset, config, review)
    if command == Command.VISUALIZE:
        return create_aids(dataset, config, review)
    if command == Command.REVIEW_STATS:
        return review_stats(dataset, config, review)
    result: dict[str, Any] = {"rules": None, "aids": None}
    if args.apply_rules:
        result["rules"] = apply_rules(dataset, config, review)
    if args.visualize:
        result["aids"] = create_aids(dataset, config, review)
    calibration = None
    if review.auto_approve is not None:
        from review.auto_approve import auto_approve

        calibration = auto_approve(dataset, config, review.auto_approve)
    result["stats"] = review_stats(dataset, config, review)
    result["stats"]["calibration"] = calibration
    run_record.reviewed(config, result["stats"], result["aids"])
    result["finalizeRequested"] = run_record.finalize_request(config)
    return result


def discard_aids(config: WorkerConfig) -> None:
    """The review aids' part of discard."""
    import fiftyone as fo

    if fo.dataset_exists(config.dataset):
        from review.aids import remove_aids

        remove_aids(fo.load_dataset(config.dataset), config)
