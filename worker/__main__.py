"""Command line: ``python -m worker run --config FILE`` (or the config JSON in AUTOLABEL_WORKER_CONFIG).

Also the one-shot dataset steps the controller runs as Jobs in the run's
namespace: ``probe``, ``discard`` and the review commands of
`worker.review_commands` (``review``, ``review-stats``, ``apply-rules``,
``visualize``, ``finalize``). Each publishes one JSON verdict, the contract's model of
its command (`contract.verdicts.VERDICTS`), with `runtime.kube`: on stdout and
into the run's result ConfigMap; a crash becomes a `StepFailure` (``{"error": ...}``).

Every command sets ``FIFTYONE_DATABASE_ADMIN=false`` before FiftyOne is imported:
the database is the user's and is never migrated.

The shard index comes from ``JOB_COMPLETION_INDEX`` (Indexed Jobs set it; 0 when
unset, for local runs). Exit codes: 0 shard done (images that failed to decode
are counted, not fatal); 1 fatal error; 2 invalid configuration; 143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from contract.env import DATABASE_ADMIN_ENV, DATABASE_URI_ENV, SECRET_REF_ENV, Command, Flag
from contract.env import WORKER_CONFIG_ENV as CONFIG_ENV
from contract.verdicts import VERDICTS, ProbeVerdict, StepFailure, ValidationReason, fatal_line
from contract.wire import WireModel
from contract.worker import DatabaseWrites, WorkerConfig
from inference.shard import run_shard
from runtime import durable, redact, run_record
from runtime.errors import ConfigError, FatalError
from runtime.kube import publish
from runtime.reporters import ConfigMapReporter, NullReporter, ProgressReporter
from worker import review_commands

EXIT_FATAL, EXIT_CONFIG, EXIT_TERMINATED = 1, 2, 143


def load_config(path: Path | None) -> WorkerConfig:
    try:
        if path is not None:
            return WorkerConfig.from_file(path)
        if os.environ.get(CONFIG_ENV):
            return WorkerConfig.from_json(os.environ[CONFIG_ENV])
    except (OSError, ValidationError) as error:
        raise ConfigError(f"invalid worker configuration: {error}") from error
    raise ConfigError(f"no configuration: pass --config FILE or set {CONFIG_ENV}")


def shard_index(config: WorkerConfig) -> int:
    raw = os.environ.get("JOB_COMPLETION_INDEX", "0")
    try:
        index = int(raw)
    except ValueError as error:
        raise ConfigError(f"JOB_COMPLETION_INDEX={raw!r} is not an integer") from error
    if not 0 <= index < config.shards:
        raise ConfigError(f"JOB_COMPLETION_INDEX={index} is outside 0..{config.shards - 1}")
    return index


def make_reporter(config: WorkerConfig, shard: int) -> ProgressReporter:
    channel = config.progress
    if channel.kind == "configmap" and channel.config_map:
        return ConfigMapReporter(channel.namespace or config.run.namespace, channel.config_map, shard)
    return NullReporter()


async def _run(config: WorkerConfig, shard: int) -> None:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM (pod deleted, Job suspended): cancel, which still writes the results already inferred.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await run_shard(config, shard, run_record.RecordingReporter(config, shard, make_reporter(config, shard)))


def _missing_database() -> str | None:
    """A step pod's URI comes from an optional secretKeyRef: absent means a missing Secret or key."""
    ref = os.environ.get(SECRET_REF_ENV)
    if os.environ.get(DATABASE_URI_ENV) or not ref:
        return None
    name, _, key = ref.partition("/")
    return (
        f"Secret {name} named by dataset.databaseSecretRef does not exist or has no key {key!r}; "
        f"create it with the database URI under key {key!r} (or set dataset.databaseSecretRef.key)"
    )


# Where the probe could not look into the dataset: the run record lives there, so it is left alone.
_NO_RECORD = (
    ValidationReason.DATASET_NOT_FOUND,
    ValidationReason.DATABASE_UNREACHABLE,
    ValidationReason.DATABASE_MIGRATION_REQUIRED,
)


def _verdict(command: str, config: WorkerConfig, args: argparse.Namespace) -> WireModel:
    missing = _missing_database()
    if command == Command.PROBE:
        if missing:
            return ProbeVerdict(
                ok=False, reason=ValidationReason.DATABASE_SECRET_MISSING, message=missing, total=None
            )
        from steps.validate import probe

        verdict = probe(config, not args.skip_triton)
        if verdict.reason not in _NO_RECORD:
            run_record.validated(config, verdict)  # the App's card of the run, from its start
        return verdict
    if missing:
        raise FatalError(missing)
    if command == Command.DISCARD:
        from steps.discard import discard

        if args.review_aids:
            review_commands.discard_aids(config)
        return VERDICTS[Command.DISCARD].model_validate(run_record.discarded(config, discard(config)))
    return VERDICTS[Command(command)].model_validate(review_commands.run(command, config, args))


def _one_shot(command: str, config: WorkerConfig, args: argparse.Namespace) -> int:
    """`probe`, `discard` and the review commands: one JSON verdict (stdout and the result ConfigMap)."""
    try:
        verdict = _verdict(command, config, args)
    except Exception as error:
        print(fatal_line(f"{type(error).__name__}: {error}"), file=sys.stderr, flush=True)
        publish(config.run.namespace, StepFailure(error=f"{command}: {type(error).__name__}: {error}"))
        return EXIT_CONFIG if isinstance(error, ConfigError) else EXIT_FATAL
    publish(config.run.namespace, verdict)
    return 0


def _keep_other_datasets() -> None:
    """Drops FiftyOne's exit hook that deletes every non-persistent dataset of the database.

    FiftyOne runs it when a process that connected exits and believes itself the only
    client; a short-lived worker or probe must never delete the datasets of the people
    and notebooks sharing the database (seen in tests: a probe's exit removed them).
    """
    database = sys.modules.get("fiftyone.core.odm.database")
    if database is not None:
        atexit.unregister(database._delete_non_persistent_datasets_if_allowed)


def main(argv: list[str] | None = None) -> int:
    os.environ[DATABASE_ADMIN_ENV] = "false"  # before anything imports FiftyOne
    redact.install()  # before anything can print or log a database error
    try:
        return _main(argv)
    finally:
        _keep_other_datasets()


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description="autolabel inference worker")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(Command.RUN.value, help="label this pod's shard of a run")
    run.add_argument(
        Flag.CONFIG, type=Path, default=None, help=f"worker config JSON (default: ${CONFIG_ENV})"
    )
    probe = commands.add_parser(
        Command.PROBE.value, help="check dataset, target and Triton model; print a JSON verdict"
    )
    probe.add_argument(Flag.CONFIG, type=Path, default=None)
    probe.add_argument(Flag.SKIP_TRITON, action="store_true", help="skip the Triton checks (sidecar mode)")
    discard = commands.add_parser(
        Command.DISCARD.value, help="remove this run's staged predictions from the dataset"
    )
    discard.add_argument(Flag.CONFIG, type=Path, default=None)
    discard.add_argument(Flag.REVIEW_AIDS, action="store_true", help="also remove saved views and brain run")
    discard.add_argument(
        Flag.PATIENCE,
        type=float,
        default=None,
        help="seconds to wait for an unavailable database (default: the configuration's database.patienceS)",
    )
    review_commands.add_parsers(commands)
    agent = commands.add_parser(
        Command.REVIEW_AGENT.value, help="serve the review requests of this namespace's runs"
    )
    agent.add_argument(Flag.AGENT, required=True, help="the agent name the controller addresses requests to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == Command.REVIEW_AGENT:
        from review.agent import main as agent_main

        # Rule tags, auto-approvals, review aids, run records: as durable as every step's writes. One
        # process serves many runs, so the concern is the default one (the snapshots carry no other).
        durable.configure_process(DatabaseWrites())
        return agent_main(args.agent, _missing_database())
    try:
        config = load_config(args.config)
        if getattr(args, "patience", None):
            config = config.model_copy(
                update={"database": config.database.model_copy(update={"patience_s": args.patience})}
            )
        durable.configure_process(config.database)  # before FiftyOne connects: every write is durable
        if args.command in (Command.PROBE, Command.DISCARD, *review_commands.COMMANDS):
            return _one_shot(args.command, config, args)
        shard = shard_index(config)
    except ConfigError as error:
        print(fatal_line(str(error)), file=sys.stderr, flush=True)
        return EXIT_CONFIG
    try:
        asyncio.run(_run(config, shard))
    except asyncio.CancelledError:
        print("stopped by SIGTERM; results inferred so far were written", file=sys.stderr, flush=True)
        return EXIT_TERMINATED
    except FatalError as error:
        print(fatal_line(str(error)), file=sys.stderr, flush=True)
        return EXIT_FATAL
    except Exception as error:
        print(fatal_line(f"{type(error).__name__}: {error}"), file=sys.stderr, flush=True)
        return EXIT_FATAL
    return 0


if __name__ == "__main__":
    sys.exit(main())
