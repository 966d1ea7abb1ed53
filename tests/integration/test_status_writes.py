"""Status writes are confirmed and never reordered; a deletion waits for a finalize in flight.

The first two tests drive the controller's `Engine` in the test process against
the real API server (a namespace the running controller does not watch), with
a Kubernetes client that refuses the first status patch the way a server or a
proxy in front of it would (409 Conflict, 500): the engine must send it again
until it lands. The last one uses the real controller process end to end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from controller.api import GROUP, PLURAL, VERSION
from controller.engine import Engine
from controller.kube import Kube
from controller.reconcile import JobSettings
from controller.reconcile_types import Event
from tests.fixtures.cluster import ClusterHandle
from tests.fixtures.operator import Operator
from tests.integration.run_helpers import apply, database_secret, new_dataset, run_manifest
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
NO_TRITON = SimpleNamespace(grpc_url="127.0.0.1:1")


def is_status_patch(method: str, path: str) -> bool:
    return method == "PATCH" and path.endswith("/status")


class RefusingClient(client.ApiClient):  # type: ignore[misc]
    """A real client to the real API server that refuses the first `refusals` matching requests."""

    def __init__(
        self, configuration: Any, status: int, refusals: int, refuse: Callable[[str, str], bool]
    ) -> None:
        super().__init__(configuration)
        self.refusal_status, self.refusals, self.refuse = status, refusals, refuse
        self.status_patches: list[str] = []  # "refused" or "sent", in order
        self.refused: list[str] = []

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        path = url.split("?", 1)[0]
        if self.refuse(method, path) and self.refusals > 0:
            self.refusals -= 1
            self.refused.append(f"{method} {path}")
            if is_status_patch(method, path):
                self.status_patches.append("refused")
            raise ApiException(status=self.refusal_status, reason="Injected by the test")
        if is_status_patch(method, path):
            self.status_patches.append("sent")
        return super().call_api(method, url, *args, **kwargs)


def refusing_client(
    cluster: ClusterHandle,
    status: int,
    refusals: int = 1,
    refuse: Callable[[str, str], bool] = is_status_patch,
) -> RefusingClient:
    from kubernetes import config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    return RefusingClient(configuration, status, refusals, refuse)


def engine_for(api: Any) -> tuple[Engine, list[Event]]:
    events: list[Event] = []

    def post(_body: Mapping[str, Any], event: Event) -> None:
        events.append(event)

    return Engine(Kube(api), JobSettings(), post=post), events


def server_run(cluster: ClusterHandle, namespace: str, name: str) -> dict[str, Any]:
    run: dict[str, Any] = cluster.custom().get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return run


@pytest.mark.parametrize("refused_with", [409, 500])
def test_a_refused_status_patch_is_sent_again_and_lands(
    cluster: ClusterHandle, operator: Operator, namespace: str, refused_with: int
) -> None:
    apply(cluster, run_manifest("refused-once", namespace, "some-dataset", NO_TRITON))
    body = server_run(cluster, namespace, "refused-once")
    assert not body.get("status")
    api = refusing_client(cluster, refused_with)
    engine, events = engine_for(api)
    asyncio.run(engine.reconcile(body))
    assert api.status_patches == ["refused", "sent"]
    status = server_run(cluster, namespace, "refused-once")["status"]
    assert status["phase"] == "Pending"
    validated = next(c for c in status["conditions"] if c["type"] == "Validated")
    assert (validated["status"], validated["reason"]) == ("Unknown", "ValidationPending")
    assert any(e.reason == "ValidationPending" for e in events)
    # Nothing changed since: the next pass writes nothing (no timestamp moves by itself).
    asyncio.run(engine.reconcile(server_run(cluster, namespace, "refused-once")))
    assert api.status_patches == ["refused", "sent"]


@pytest.mark.parametrize("order", ["older-first", "newer-first"])
def test_an_older_body_racing_a_newer_one_never_leaves_the_older_status(
    cluster: ClusterHandle, operator: Operator, namespace: str, order: str
) -> None:
    """A timer holding the body read before an edit, and the update handler with the edited one."""
    manifest = run_manifest("raced", namespace, "some-dataset", NO_TRITON)
    apply(cluster, manifest)
    older = server_run(cluster, namespace, "raced")
    manifest["spec"]["review"] = {"refreshIntervalSeconds": 45}
    apply(cluster, manifest)
    newer = server_run(cluster, namespace, "raced")
    assert newer["metadata"]["generation"] == older["metadata"]["generation"] + 1
    api = refusing_client(cluster, 500)  # the first write is also refused once, as under load

    async def race() -> None:
        engine, _ = engine_for(api)
        first, second = (older, newer) if order == "older-first" else (newer, older)
        await asyncio.gather(engine.reconcile(first, cause="timer"), engine.reconcile(second, cause="run"))

    asyncio.run(race())
    status = server_run(cluster, namespace, "raced")["status"]
    assert status["observedGeneration"] == newer["metadata"]["generation"], json.dumps(status, indent=1)
    assert api.status_patches[0] == "refused" and api.status_patches.count("sent") >= 1


def test_a_failed_pass_after_a_childs_change_is_tried_again(
    cluster: ClusterHandle, operator: Operator, namespace: str
) -> None:
    """kopf does not retry an event handler; a pass that a child's change started and that failed
    (here a 504 on its first read, as seen under load) must not be lost."""
    apply(cluster, run_manifest("child-retried", namespace, "some-dataset", NO_TRITON))
    body = server_run(cluster, namespace, "child-retried")
    api = refusing_client(cluster, 504, refuse=lambda method, path: method == "GET" and "/jobs/" in path)
    engine, _ = engine_for(api)

    async def child_changed() -> None:
        await engine.nudge(body)  # fails on the Job read; no exception reaches the handler
        for _second in range(30):
            await asyncio.sleep(0.5)
            if api.status_patches:
                return

    asyncio.run(child_changed())
    assert api.refused and api.refused[0].startswith("GET "), api.refused
    assert api.status_patches == ["sent"]
    assert server_run(cluster, namespace, "child-retried")["status"]["phase"] == "Pending"


def _runs_gauge(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line.startswith("autolabel_runs{"):
            labels, value = line.rsplit(" ", 1)
            values[labels.split('phase="', 1)[1].split('"', 1)[0]] = float(value)
    return values


def _child_events(operator: Operator, kind: str, event_type: str) -> float:
    """How many watch events of runs' children of `kind` and `event_type` the controller has handled."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
        if sample.name == "autolabel_child_events_total"
        and sample.labels == {"kind": kind, "type": event_type}
    )


def _run_jobs(cluster: ClusterHandle, namespace: str, run: str) -> list[str]:
    out = cluster.kubectl(
        "get", "jobs", "-n", namespace, "-l", f"autolabel.dev/run={run}", "-o", "name"
    ).stdout
    return out.split()


def _step_jobs(cluster: ClusterHandle, namespace: str, run: str) -> list[dict[str, Any]]:
    selector = f"autolabel.dev/run={run},app.kubernetes.io/component=dataset-step"
    out = cluster.kubectl("get", "jobs", "-n", namespace, "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def _wait(what: str, check: Callable[[], Any], timeout: float, operator: Operator) -> Any:
    try:
        return wait_until(what, check, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}\ncontroller log:\n{operator.log_tail()}") from None


def test_deleting_a_run_while_it_finalizes_waits_for_the_finalize_then_cleans_up(
    cluster: ClusterHandle, operator: Operator, triton: Any, mongo: Any, tmp_path: Path
) -> None:
    database_secret(cluster, operator.namespace, mongo)
    dataset = new_dataset(tmp_path, 6)
    name = "delete-finalizing"
    manifest = run_manifest(
        name, operator.namespace, dataset.name, triton, deletionPolicy="delete", review={"approve": [{}]}
    )
    apply(cluster, manifest)
    run = operator.wait_for_phase(name, {"Review", "Failed"}, timeout=300)
    assert run["status"]["phase"] == "Review", json.dumps(run["status"], indent=1)
    label_field = manifest["spec"]["labelField"]
    manifest["spec"]["finalize"] = True
    apply(cluster, manifest)
    # Finalizing is written, under the run's lock, right before the finalize step's Job is created.
    operator.wait_for_phase(name, {"Finalizing", "Finalized"}, timeout=120)
    in_flight = [
        job
        for job in _step_jobs(cluster, operator.namespace, name)
        if json.loads(job["metadata"]["annotations"]["autolabel.dev/step"])["kind"] == "finalize"
        and not (job.get("status") or {}).get("succeeded")
    ]
    jobs = _run_jobs(cluster, operator.namespace, name)
    deletions_before = _child_events(operator, "Job", "DELETED")
    cluster.kubectl("delete", "alr", name, "-n", operator.namespace, "--wait=false")
    assert in_flight, "the finalize step had already ended before the deletion: nothing was in flight"

    def gone() -> bool:
        result = cluster.kubectl("get", "alr", name, "-n", operator.namespace, check=False)
        return result.returncode != 0 and "NotFound" in result.stderr

    _wait("the run to be deleted", gone, 300, operator)
    dataset.reload()
    # The finalize ran to its end (every label approved by the rule, so all six promoted);
    # had the deletion cut it short, the cleanup would have removed the run's labels.
    promoted = [v for v in dataset.values(label_field) if v is not None]
    assert len(promoted) == 6, operator.log_tail()
    reasons = operator.event_reasons(name)
    assert "FinalizeSucceeded" in reasons and "PredictionsDeleted" not in reasons, reasons

    def gauge_matches() -> bool:
        runs = json.loads(cluster.kubectl("get", "alr", "-n", operator.namespace, "-o", "json").stdout)[
            "items"
        ]
        by_phase: dict[str, float] = {}
        for item in runs:
            phase = (item.get("status") or {}).get("phase")
            if phase:
                by_phase[phase] = by_phase.get(phase, 0) + 1
        counted = {phase: value for phase, value in _runs_gauge(operator.metrics()).items() if value}
        return counted == by_phase

    _wait("autolabel_runs to count exactly the runs that exist", gauge_matches, 30, operator)
    # The run's Jobs go after it (the garbage collector): once the controller has handled their
    # deletion too, the gauge must still match.
    _wait(
        "the controller to handle the deletion of the run's Jobs",
        lambda: (
            not _run_jobs(cluster, operator.namespace, name)
            and _child_events(operator, "Job", "DELETED") >= deletions_before + len(jobs)
        ),
        60,
        operator,
    )
    assert gauge_matches(), _runs_gauge(operator.metrics())
