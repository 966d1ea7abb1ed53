"""The one reconcile: (run, observed cluster and checks) -> (children to create or patch, new status).

Pure and level-triggered: it looks only at the current run and observed state,
so calling it again after a crash, a restart or a duplicate event gives the
same answer. The engine calls it from create/update/resume, the timer and the
watches of the run's children, then carries out the returned actions (creates
are idempotent: 409 means done). Here: the order of the phases, the validation
verdict, the phases after inference (`controller.review`) and a refused child;
the worker Job's part is `controller.inference_phase`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from contract.env import Command
from contract.verdicts import ValidationReason
from controller import review
from controller.api import (
    AutoLabelRun,
    ConditionStatus,
    ConditionType,
    Reason,
    derive_phase,
    find_condition,
)
from controller.images import DEFAULT_ALLOWED_IMAGES, allowed_images_from_env, image_refusal
from controller.inference_phase import job_step, observe_job, suspend_step
from controller.reconcile_types import Actions, Event, Observed
from controller.shards import overall_progress
from controller.status_builder import StatusBuilder, condition_events, headline, progress_events

# Checked again until they pass: an unreachable server, or an image the allow-list may come to allow.
TRANSIENT_VALIDATION_REASONS: frozenset[str] = frozenset(
    {ValidationReason.DATABASE_UNREACHABLE, ValidationReason.TRITON_UNREACHABLE, Reason.IMAGE_NOT_ALLOWED}
)


@dataclass(frozen=True)
class JobSettings:
    """Operator-wide settings of worker Jobs (from the controller's environment)."""

    image: str = "ghcr.io/autolabel/autolabel-operator:0.1.0"  # the chart sets AUTOLABEL_WORKER_IMAGE
    service_account: str = "autolabel-worker"
    command: tuple[str, ...] = ("autolabel-worker", Command.RUN.value)
    step_command: tuple[str, ...] = ("autolabel-worker",)  # dataset steps: `<step_command> probe ...`
    allowed_images: tuple[str, ...] = DEFAULT_ALLOWED_IMAGES  # AUTOLABEL_ALLOWED_IMAGES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> JobSettings:
        """The settings the chart passes in the controller's environment; the defaults where unset."""
        command = tuple(environ.get("AUTOLABEL_WORKER_COMMAND", " ".join(cls.command)).split())
        # Dataset steps run the worker's entry point with another subcommand than `run`.
        default_step = command[:-1] if command[-1:] == (Command.RUN,) else cls.step_command
        return cls(
            image=environ.get("AUTOLABEL_WORKER_IMAGE", cls.image),
            service_account=environ.get("AUTOLABEL_WORKER_SERVICE_ACCOUNT", cls.service_account),
            command=command,
            step_command=tuple(environ.get("AUTOLABEL_STEP_COMMAND", " ".join(default_step)).split()),
            allowed_images=allowed_images_from_env(environ),
        )


def _validation_step(run: AutoLabelRun, observed: Observed, builder: StatusBuilder) -> bool:
    """Applies a validation result; returns True when a (re)validation must run first.

    A verdict stands for its generation, except an unreachable database or Triton server:
    those are checked again (the engine spaces the checks out) until they answer.
    """
    current = find_condition(builder.status.conditions, ConditionType.VALIDATED)
    settled = (
        current is not None
        and current.observed_generation == builder.generation
        and current.status is not ConditionStatus.UNKNOWN
    )
    transient = settled and current is not None and current.reason in TRANSIENT_VALIDATION_REASONS
    if settled and not transient:
        return False
    result = observed.validation
    if result is None or result.generation != builder.generation:
        if transient:
            return True
        if current is None or current.status is not ConditionStatus.UNKNOWN:
            builder.set(
                ConditionType.VALIDATED,
                ConditionStatus.UNKNOWN,
                Reason.VALIDATION_PENDING,
                "checking the dataset, the database Secret and the Triton model",
            )
        return True
    if result.ok:
        passed = ValidationReason.VALIDATION_PASSED
        builder.set(ConditionType.VALIDATED, ConditionStatus.TRUE, passed, result.message)
        if builder.true(ConditionType.FAILED):
            builder.set(
                ConditionType.FAILED,
                ConditionStatus.FALSE,
                passed,
                "the corrected spec passed validation",
            )
        if result.total is not None:
            builder.status.progress = overall_progress([], result.total, None)
    else:
        builder.set(ConditionType.VALIDATED, ConditionStatus.FALSE, result.reason, result.message)
        builder.set(ConditionType.FAILED, ConditionStatus.TRUE, result.reason, result.message)
    return False


def _review_step(run: AutoLabelRun, observed: Observed, builder: StatusBuilder, actions: Actions) -> None:
    """After inference: apply the outcome of review work, or ask for the work that is due."""
    if observed.review is not None:
        for change in review.apply_outcome(run, builder.status, observed.review, observed.now):
            builder.set(*change)
        return
    actions.review = review.plan(run, builder.status, observed.now, observed.review_failed_at)


def _retry_refused_child(builder: StatusBuilder, complete: bool, started: bool) -> None:
    """A run that failed because a child of its Review was refused, or a child of a started run
    would have run an image outside the allow-list: a new generation (the user says the cause is
    fixed) clears the failure, so the child is created again (and its image checked again)."""
    failed = find_condition(builder.status.conditions, ConditionType.FAILED)
    retried = (complete and failed is not None and failed.reason == Reason.CHILD_REFUSED.value) or (
        started and failed is not None and failed.reason == Reason.IMAGE_NOT_ALLOWED.value
    )
    if (
        retried
        and failed is not None
        and failed.status is ConditionStatus.TRUE
        and (failed.observed_generation or 0) < builder.generation
    ):
        builder.set(
            ConditionType.FAILED,
            ConditionStatus.FALSE,
            Reason(failed.reason),
            f"generation {builder.generation}: creating the refused child again",
        )


def _hold_refused_image(builder: StatusBuilder, actions: Actions, refusal: str | None) -> None:
    """No child runs an image outside the allow-list, whenever it is made: a worker Job made again,
    a finalize or discard step. Such a child is not created, and the run fails naming the image."""
    steps_image = actions.review is not None and (actions.review.finalize or actions.review.discard)
    if refusal is None or not (actions.create_job is not None or steps_image):
        return
    actions.create_job = None
    actions.create_progress_config_map = None
    if steps_image:
        actions.review = None
    message = f"{refusal}; no child of the run is made with it"
    builder.set(ConditionType.FAILED, ConditionStatus.TRUE, Reason.IMAGE_NOT_ALLOWED, message)


def reconcile(run: AutoLabelRun, observed: Observed, settings: JobSettings = JobSettings()) -> Actions:
    """The desired children and status of `run`, given what was observed."""
    builder = StatusBuilder(run, observed.now)
    actions = Actions(status=builder.status)
    started = builder.status.job_name is not None or observed.job is not None
    complete = builder.true(ConditionType.INFERENCE_COMPLETE)

    _retry_refused_child(builder, complete, started)
    refusal = image_refusal(run.spec, settings.allowed_images, settings.image)
    refused_image = None if started else refusal
    if refused_image is not None:
        builder.set(ConditionType.VALIDATED, ConditionStatus.FALSE, Reason.IMAGE_NOT_ALLOWED, refused_image)
        builder.set(ConditionType.FAILED, ConditionStatus.TRUE, Reason.IMAGE_NOT_ALLOWED, refused_image)
    elif not started and _validation_step(run, observed, builder):
        actions.validate = True
    elif builder.true(ConditionType.VALIDATED) and not builder.true(ConditionType.FAILED):
        if not complete:
            job_step(
                run, observed, builder, actions, settings.image, settings.service_account, settings.command
            )
        if observed.job is not None and not complete:
            observe_job(run, observed, builder, actions)
        suspend_step(run, builder)
    if builder.true(ConditionType.INFERENCE_COMPLETE) or (
        run.spec.discard and builder.true(ConditionType.FAILED)
    ):
        _review_step(run, observed, builder, actions)
    _hold_refused_image(builder, actions, refusal)

    builder.status.observed_generation = builder.generation
    phase = derive_phase(run.spec, builder.status.conditions)
    builder.status.phase = phase
    builder.status.message = headline(builder, phase) or None
    actions.status = builder.status
    actions.events = condition_events(run.status, builder.status) + progress_events(observed)
    return actions


def child_refused(
    run: AutoLabelRun, actions: Actions, kind: str, name: str, message: str, now: datetime
) -> Actions:
    """`actions` after the API server refused to create a child: Failed with the server's message.

    Retrying the same object cannot help, so the run stops. Before inference started, the
    Job was never created: the status forgets it and a corrected spec (a new generation) is
    validated and started again. After (the review agent, a finalize or discard step), the
    run keeps its Job and labels, and a new generation tries the refused child again
    (`_retry_refused_child`).
    """
    builder = StatusBuilder(run, now)
    builder.status = actions.status.model_copy(deep=True)
    started = builder.true(ConditionType.INFERENCE_COMPLETE)  # the refused child is one of Review's
    if not started:
        builder.status.conditions = [
            c
            for c in builder.status.conditions
            if not (c.type == ConditionType.INFERENCE_COMPLETE and c.reason == Reason.JOB_CREATED.value)
        ]
    refused = f"the API server refused to create {kind} {name}: {message}; fix the spec and apply it again"
    if not builder.true(ConditionType.VALIDATED):  # the validation step's Job: this generation's verdict
        builder.set(ConditionType.VALIDATED, ConditionStatus.FALSE, Reason.CHILD_REFUSED, refused)
    builder.set(ConditionType.FAILED, ConditionStatus.TRUE, Reason.CHILD_REFUSED, refused)
    if not started:
        builder.status.job_name = None
        builder.status.start_time = None
    builder.status.phase = derive_phase(run.spec, builder.status.conditions)
    builder.status.message = headline(builder, builder.status.phase) or None
    return Actions(
        status=builder.status,
        events=condition_events(run.status, builder.status) + _progress_events_of(actions),
    )


def _progress_events_of(actions: Actions) -> list[Event]:
    return [e for e in actions.events if e.reason == Reason.INVALID_PROGRESS_REPORT.value]
