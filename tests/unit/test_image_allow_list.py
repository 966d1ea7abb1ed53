"""The operator's image allow-list: a run naming an image outside it fails before anything is created."""

from __future__ import annotations

from typing import Any

import pytest

from contract.verdicts import ValidationReason
from controller.api import AutoLabelRun, Phase, Reason
from controller.images import DEFAULT_ALLOWED_IMAGES, allowed_images_from_env, image_refusal
from controller.reconcile import JobSettings, reconcile
from controller.reconcile_types import Observed, Validation
from tests.unit.test_controller_reconcile import NOW, conditions, run

SIDECAR = {"modelRepository": "/models", "image": "nvcr.io/nvidia/tritonserver:24.08-py3"}
DEFAULT_WORKER = JobSettings.image


def sidecar_run(image: str, **spec: Any) -> AutoLabelRun:
    model = {"sidecar": {**SIDECAR, "image": image}, "name": "m", "outputFormat": "logits"}
    return run(model=model, **spec)


@pytest.mark.parametrize(
    ("execution_image", "triton_image", "refused_setting"),
    [
        (None, "nvcr.io/nvidia/tritonserver:24.08-py3", None),
        (DEFAULT_WORKER, "nvcr.io/nvidia/tritonserver:24.08-py3", None),
        ("ghcr.io/autolabel/autolabel-operator:0.2.0", "nvcr.io/nvidia/tritonserver:25.01-py3", None),
        ("evil.example/miner:1", "nvcr.io/nvidia/tritonserver:24.08-py3", "spec.execution.image"),
        (None, "evil.example/tritonserver:24.08", "spec.model.sidecar.image"),
        (None, "nvcr.io/nvidia/tritonserver-evil:1", "spec.model.sidecar.image"),
        ("docker.io/ghcr.io/autolabel/autolabel-operator:0.1.0", SIDECAR["image"], "spec.execution.image"),
    ],
)
def test_images_are_checked_against_the_list(
    execution_image: str | None, triton_image: str, refused_setting: str | None
) -> None:
    execution = {"image": execution_image} if execution_image else {}
    spec = sidecar_run(triton_image, execution=execution).spec
    refusal = image_refusal(spec, DEFAULT_ALLOWED_IMAGES, DEFAULT_WORKER)
    if refused_setting is None:
        assert refusal is None
    else:
        assert refusal is not None and refused_setting in refusal
        named = execution_image if refused_setting == "spec.execution.image" else triton_image
        assert named is not None and named in refusal
        assert "AUTOLABEL_ALLOWED_IMAGES" in refusal and "allowedImages" in refusal


def test_the_list_comes_from_the_environment() -> None:
    assert allowed_images_from_env({}) == DEFAULT_ALLOWED_IMAGES
    assert allowed_images_from_env({"AUTOLABEL_ALLOWED_IMAGES": " a/*, ,b:1 "}) == ("a/*", "b:1")
    assert allowed_images_from_env({"AUTOLABEL_ALLOWED_IMAGES": ""}) == ()
    # The operator's own worker image is allowed even by an empty list.
    assert image_refusal(run().spec, (), DEFAULT_WORKER) is None
    assert image_refusal(run(execution={"image": "x:1"}).spec, ("*",), DEFAULT_WORKER) is None


def test_a_refused_image_fails_the_run_before_validation_or_any_job() -> None:
    bad = run(execution={"parallelism": 2, "image": "evil.example/miner:1"})
    actions = reconcile(bad, Observed(now=NOW))
    assert actions.status.phase is Phase.FAILED and not actions.validate and actions.create_job is None
    assert conditions(actions.status)["Failed"] == ("True", Reason.IMAGE_NOT_ALLOWED.value)
    assert "evil.example/miner:1" in (actions.status.message or "")
    assert any(e.type == "Warning" and e.reason == "ImageNotAllowed" for e in actions.events)
    # Still refused on the next tick, with no new Event and no Job.
    again = reconcile(
        run(status=actions.status.dump(), execution={"image": "evil.example/miner:1"}), Observed(now=NOW)
    )
    assert again.create_job is None and again.status.phase is Phase.FAILED and not again.events
    # The administrator allows it: the run is validated and proceeds.
    allowing = JobSettings(allowed_images=("evil.example/*",))
    same = run(status=actions.status.dump(), execution={"image": "evil.example/miner:1"})
    assert reconcile(same, Observed(now=NOW), allowing).validate
    verdict = Validation(1, True, ValidationReason.VALIDATION_PASSED, "ok", 10)
    started = reconcile(same, Observed(now=NOW, validation=verdict), allowing)
    assert started.create_job is not None and started.status.phase is Phase.INFERRING
