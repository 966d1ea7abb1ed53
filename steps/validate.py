"""`python -m worker probe`: check a run's configuration against the world, print one JSON verdict.

The controller runs this as a one-shot Job in the run's namespace, under the
worker identity, before it creates the worker Job: the controller never opens the
dataset. It uses the worker's own target resolution and Triton
preflight, so what it accepts is exactly what the worker will do. The verdict is the
contract's `ProbeVerdict`: ok, a `ValidationReason`, a message and the target's size.

When every other check passed, the probe claims the run's fields (labelField, staging,
marker, embeddings) and declares all but labelField, once, before any shard
starts (`runtime.claims`): a field another run holds, or a labelField /
staging field that exists already, is ``LabelFieldExists``. Running the probe
again for the same run changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from contract.verdicts import ProbeVerdict, ValidationReason
from contract.worker import WorkerConfig
from runtime.errors import PreflightError


def _verdict(ok: bool, reason: ValidationReason, message: str, total: int | None = None) -> ProbeVerdict:
    return ProbeVerdict(ok=ok, reason=reason, message=message, total=total)


def _dataset_checks(config: WorkerConfig) -> tuple[ProbeVerdict | None, int]:
    """A failure verdict, or None and the target's size."""
    import fiftyone as fo
    from pymongo.errors import PyMongoError

    try:
        exists = fo.dataset_exists(config.dataset)
    except OSError as error:
        migration = _migration_verdict(error)
        if migration is not None:
            return migration, 0
        return _verdict(
            False,
            ValidationReason.DATABASE_UNREACHABLE,
            f"cannot reach the FiftyOne database named by dataset.databaseSecretRef: {error}",
        ), 0
    except PyMongoError as error:
        return _verdict(
            False,
            ValidationReason.DATABASE_UNREACHABLE,
            f"cannot reach the FiftyOne database named by dataset.databaseSecretRef: {error}",
        ), 0
    if not exists:
        return _verdict(
            False,
            ValidationReason.DATASET_NOT_FOUND,
            f"dataset {config.dataset!r} does not exist in the FiftyOne database; "
            "check dataset.name and dataset.databaseSecretRef",
        ), 0
    dataset = fo.load_dataset(config.dataset)
    target = config.target
    if target.view is not None and not dataset.has_saved_view(target.view):
        saved = ", ".join(dataset.list_saved_views()) or "none"
        return _verdict(
            False,
            ValidationReason.VIEW_NOT_FOUND,
            f"dataset {config.dataset!r} has no saved view "
            f"{target.view!r} (saved views: {saved}); fix dataset.target.view",
        ), 0
    if target.view is not None:
        refused = _view_stage_verdict(dataset, target.view)
        if refused is not None:
            return refused, 0
    from inference.reader import target_view

    total = int(target_view(dataset, target).count())
    if total == 0:
        return _verdict(
            False,
            ValidationReason.EMPTY_TARGET,
            f"dataset.target selects no samples of {config.dataset!r}; "
            "widen the target (tags, view or sampleIds)",
        ), 0
    return None, total


def _migration_verdict(error: OSError) -> ProbeVerdict | None:
    """FiftyOne refuses (FIFTYONE_DATABASE_ADMIN=false) a database of another version: never migrate it."""
    text = str(error)
    if "Cannot connect to database v" not in text and "Cannot migrate database" not in text:
        return None
    return _verdict(
        False,
        ValidationReason.DATABASE_MIGRATION_REQUIRED,
        f"{text.split('. See ')[0]}: the database would need a migration, which autolabel never runs "
        "on a user's database; migrate it with `fiftyone migrate` as its admin, or use a matching FiftyOne",
    )


def _view_stage_verdict(dataset: Any, view: str) -> ProbeVerdict | None:
    """Refuses a saved view with a stage that is not FiftyOne's own (see view_guard), before loading it."""
    from runtime.view_guard import ViewNotSupported, check_saved_view

    try:
        check_saved_view(dataset, view)
    except ViewNotSupported as error:
        return _verdict(False, ValidationReason.VIEW_NOT_SUPPORTED, f"{error}; fix dataset.target.view")
    return None


def _claim_fields(config: WorkerConfig) -> ProbeVerdict | None:
    """Claims the run's fields and declares them (see `runtime.claims`); a failure verdict or None."""
    import fiftyone as fo

    from runtime.claims import FieldTaken, claim_and_declare
    from runtime.durable import DatabaseUnavailable

    try:
        claim_and_declare(fo.load_dataset(config.dataset), config)
    except FieldTaken as taken:
        return _verdict(False, ValidationReason.LABEL_FIELD_EXISTS, str(taken))
    except DatabaseUnavailable as error:
        return _verdict(False, ValidationReason.DATABASE_UNREACHABLE, str(error))
    return None


async def _triton_checks(config: WorkerConfig) -> ProbeVerdict | None:
    from inference.preflight import preflight
    from inference.triton_client import TritonClient

    client = TritonClient(config.triton_model())
    try:
        try:
            live = await client.server_live() and await client.server_ready()
        except Exception as error:
            live, detail = False, str(error)
        else:
            detail = "not ready"
        if not live:
            return _verdict(
                False,
                ValidationReason.TRITON_UNREACHABLE,
                f"Triton at {config.triton_model().url} is not reachable or not "
                f"ready ({detail}); check model.endpoint.address",
            )
        try:
            ready = await client.model_ready(config.triton_model().name, config.triton_model().version)
        except Exception as error:
            ready = False
            detail = str(error)
        if not ready:
            return _verdict(
                False,
                ValidationReason.MODEL_NOT_READY,
                f"model {config.triton_model().name!r} (version "
                f"{config.triton_model().version or 'latest'}) is not ready on {config.triton_model().url}; "
                "check model.name and model.version",
            )
        try:
            await preflight(client, config, wait_s=10.0)
        except PreflightError as error:
            return _verdict(
                False,
                ValidationReason.MODEL_OUTPUT_MISMATCH,
                f"{error}; check model.outputFormat and model.tensors",
            )
    finally:
        await client.close()
    return None


def probe(config: WorkerConfig, check_triton: bool) -> ProbeVerdict:
    """The verdict for `config`: dataset facts first, then (unless skipped) the Triton model."""
    failure, total = _dataset_checks(config)
    if failure is not None:
        return failure
    if config.source is not None:  # existing labels: the field must hold the task's labels; no model
        import fiftyone as fo

        from inference.source import source_problem

        problem = source_problem(fo.load_dataset(config.dataset), config)
        if problem is not None:
            return _verdict(False, ValidationReason.INVALID_SPEC, problem, total)
        check_triton = False
    if check_triton:
        failure = asyncio.run(_triton_checks(config))
        if failure is not None:
            return failure.model_copy(update={"total": total})
    failure = _claim_fields(config)  # last: a run refused for any other reason holds no field
    if failure is not None:
        return failure.model_copy(update={"total": total})
    checked = (
        "dataset and Triton model checked"
        if check_triton
        else f"dataset and source field {config.source.field!r} checked"
        if config.source is not None
        else "dataset checked (the Triton sidecar is checked by each worker)"
    )
    return _verdict(True, ValidationReason.VALIDATION_PASSED, f"{checked}: {total} target samples", total)
