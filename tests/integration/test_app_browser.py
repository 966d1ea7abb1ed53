"""End to end in a real browser: review and approve a run in the Auto-Label panel; Kubernetes ends Finalized.

The run is made the real way (the chart's controller, worker pods, Triton, a
real dataset of photos) and reaches Review. Then Debian's chromium, driven by
Playwright, opens the dataset in a real FiftyOne App server with the plugin
loaded (and no Kubernetes credentials), opens the panel, moves the confidence
slider, clicks a class row, adds labels for approval, undoes one class and
approves. The finalize request goes into the dataset; the controller's next
review pass carries it out: the AutoLabelRun is ``Finalized`` with the counts the
confirmation showed and the label field holds exactly the approved labels.
Every step waits on what the page shows. Screenshots go to
``$AUTOLABEL_SCREENSHOT_DIR`` (default: the test's tmp dir).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runtime import run_record
from tests.fixtures.browser import AppServer
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.browser]
STEP = 0.05  # the panel's slider step (view_multiple_of)


def screenshots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("AUTOLABEL_SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def predictions(dataset: Any, field: str) -> dict[str, tuple[str, str, float]]:
    """label id -> (sample id, class, confidence) of a classification field."""
    dataset.reload()
    found = {}
    for sample_id, value in zip(*dataset.values(["id", field]), strict=True):
        if value is not None:
            found[value.id] = (sample_id, value.label, float(value.confidence))
    return found


def test_review_and_approve_in_the_app_panel_finalizes_the_run(
    cluster: ClusterHandle,
    operator: Operator,
    triton: Any,
    mongo: Any,
    app_server: AppServer,
    chromium: Any,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    shots = screenshots(tmp_path)
    database_secret(cluster, operator.namespace, mongo)
    dataset = new_dataset(tmp_path, 8)
    dataset.persistent = True  # opened by the App server, another process
    name = "app-review"
    manifest = run_manifest(
        name, operator.namespace, dataset.name, triton, review={"refreshIntervalSeconds": 5}
    )
    label_field = manifest["spec"]["labelField"]
    staging = f"{label_field}_in_review"
    apply(cluster, manifest)
    status = operator.wait_for_phase(name, {"Review", "Failed"}, timeout=300)["status"]
    assert status["phase"] == "Review", [c["message"] for c in status["conditions"]]
    wait_until(
        "the run record In Review",
        lambda: any(r.get("phase") == "In Review" for r in run_record.records(dataset.name).values()),
        120,
    )

    labels = predictions(dataset, staging)
    confidences = sorted(conf for _, _, conf in labels.values())
    target = round((math.floor(confidences[0] / STEP) + 1) * STEP, 2)  # the lowest label falls out

    page = chromium.new_page(viewport={"width": 1920, "height": 1080})
    page.add_locator_handler(
        page.get_by_text("Accelerate your workflow"),
        lambda: page.get_by_role("button", name="Dismiss").click(),
    )
    try:
        page.goto(f"{app_server.url}/datasets/{dataset.name}")
        expect(page.get_by_text(f"{len(labels)} samples")).to_be_visible(timeout=60_000)
        page.locator('[data-cy="new-panel-btn"]').first.click()
        page.locator('[data-cy="new-panel-option-autolabel"]').click()
        panel = page.locator('[data-cy="panel-content-autolabel"]')
        expect(panel.get_by_text(f"{name} ({operator.namespace}) · In Review")).to_be_visible(timeout=60_000)
        page.screenshot(path=str(shots / "1-runs.png"))

        panel.get_by_role("button", name=f"Review {name}").click()
        total_of = Counter(cls for _, cls, _ in labels.values())
        some_class = sorted(total_of)[0]
        row = panel.get_by_role("row").filter(has=page.get_by_role("cell", name=some_class, exact=True))
        expect(row).to_contain_text(f"{total_of[some_class]} of {total_of[some_class]}", timeout=60_000)
        expect(panel.get_by_role("button", name=f"Add {len(labels)} labels for approval")).to_be_visible()

        # The slider: a click on its track moves the minimum thumb there; the view keeps labels >= it.
        thumb = panel.get_by_role("slider").first
        track = panel.locator(".MuiSlider-root").first
        # The App remounts the slider on each state change: measure it once it holds still.
        width = wait_until(
            "the slider laid out", lambda: track.evaluate("e => e.getBoundingClientRect().width")
        )
        track.click(position={"x": float(width) * target, "y": 5})
        expect(thumb).not_to_have_attribute("aria-valuenow", "0", timeout=60_000)
        low = float(thumb.get_attribute("aria-valuenow") or 0)
        in_range = {label_id: v for label_id, v in labels.items() if v[2] >= low}
        classes = Counter(cls for _, cls, _ in in_range.values())
        assert len(in_range) >= 3 and len(classes) >= 2, (low, confidences, classes)
        first = sorted(classes, key=lambda c: (-classes[c], c))[0]
        undone = sorted(c for c in classes if c != first)[0]
        expect(panel.get_by_role("button", name=f"Add {len(in_range)} labels for approval")).to_be_visible(
            timeout=90_000
        )
        expect(page.get_by_text(f"{len(in_range)} samples")).to_be_visible()
        first_row = panel.get_by_role("row").filter(has=page.get_by_role("cell", name=first, exact=True))
        expect(first_row).to_contain_text(f"{classes[first]} of {total_of[first]}")
        page.screenshot(path=str(shots / "2-review-slider.png"))

        # Click a class row: only that class; add it for approval; then every class again and add the rest.
        first_row.get_by_role("cell", name=first, exact=True).click()
        expect(panel.get_by_text(f"Showing class {first} only")).to_be_visible(timeout=60_000)
        panel.get_by_role("button", name=f"Add {classes[first]} labels for approval").click()
        expect(page.get_by_text(f"{classes[first]} labels added for approval")).to_be_visible(timeout=60_000)
        panel.get_by_role("button", name="All classes").click()
        rest = len(in_range) - classes[first]
        panel.get_by_role("button", name=f"Add {rest} labels for approval").click()
        expect(page.get_by_text(f"{rest} labels added for approval")).to_be_visible(timeout=60_000)

        # Approval: undo one class, then approve with the confirmation's counts.
        panel.get_by_role("button", name="Approval", exact=True).click()
        undo_row = panel.get_by_role("row").filter(has=page.get_by_role("cell", name=undone, exact=True))
        expect(undo_row).to_contain_text(str(classes[undone]), timeout=60_000)
        page.screenshot(path=str(shots / "3-approval.png"))
        undo_row.get_by_role("button", name="Undo").click()
        expect(undo_row).to_have_count(0, timeout=60_000)
        kept_ids = {label_id for label_id, (_, cls, _) in in_range.items() if cls != undone}
        kept, removed = len(kept_ids), len(labels) - len(kept_ids)
        panel.get_by_role("button", name=f"Approve {kept} labels").click()
        expect(panel.get_by_text(f"the other {removed} labels of the run are removed")).to_be_visible(
            timeout=60_000
        )
        page.screenshot(path=str(shots / "4-confirm.png"))
        panel.get_by_role("button", name=f"Keep {kept}, remove {removed}").click()
        expect(page.get_by_text(f"keeps {kept} labels and removes {removed}")).to_be_visible(timeout=60_000)

        # Kubernetes: the controller's review pass finds the request and finalizes with the same counts.
        run = operator.wait_for_phase(name, {"Finalized", "Failed"}, timeout=180)
        assert run["status"]["phase"] == "Finalized", run["status"]
        assert run["status"]["finalized"] == {"promoted": kept, "discarded": removed}
        finalized = next(c for c in run["status"]["conditions"] if c["type"] == "Finalized")
        assert finalized["status"] == "True"
        assert set(predictions(dataset, label_field)) == kept_ids
        assert not dataset.has_sample_field(staging)

        panel.get_by_role("button", name="All runs").click()  # home re-reads the run records
        expect(panel.get_by_text(f"kept {kept} labels, removed {removed}")).to_be_visible(timeout=60_000)
        expect(panel.get_by_text(f"{name} ({operator.namespace}) · Finalized")).to_be_visible()
        page.screenshot(path=str(shots / "5-finalized.png"))
    except BaseException:
        page.screenshot(path=str(shots / "failure.png"))
        raise
    dataset.delete()
