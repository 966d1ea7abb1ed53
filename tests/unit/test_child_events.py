"""Which child events reconcile their run (controller/child_events.py)."""

from __future__ import annotations

from typing import Any

from controller.child_events import ChildEvents


def job(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j"}, "spec": {"suspend": False}, "status": status}


def test_a_job_counts_when_its_conditions_or_counts_change_not_for_other_status_fields() -> None:
    events = ChildEvents()
    assert not events.changed("Job", "ADDED", "j1", job())  # just created by the controller
    assert events.changed("Job", "MODIFIED", "j1", job(active=1))
    assert not events.changed("Job", "MODIFIED", "j1", job(active=1, ready=1, uncountedTerminatedPods={}))
    complete = [{"type": "Complete", "status": "True", "reason": "CompletionsReached"}]
    assert events.changed("Job", "MODIFIED", "j1", job(succeeded=1, conditions=complete))
    assert events.changed("Job", "DELETED", "j1", job(succeeded=1, conditions=complete))
    # After a restart a Job that already has state counts at first sight.
    assert ChildEvents().changed("Job", "ADDED", "j2", job(succeeded=1, conditions=complete))


def pod(phase: str, state: str, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "annotations": annotations},
        "status": {
            "phase": phase,
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "worker", "state": {state: {}}, "restartCount": 0}],
        },
    }


def test_a_worker_pod_counts_when_phase_or_container_state_changes() -> None:
    events = ChildEvents()
    assert events.changed("Pod", "ADDED", "p1", pod("Pending", "waiting"))
    assert events.changed("Pod", "MODIFIED", "p1", pod("Running", "running"))
    same = pod("Running", "running")
    same["status"]["conditions"][1]["lastProbeTime"] = "2026-12-01T00:00:00Z"
    assert not events.changed("Pod", "MODIFIED", "p1", same)
    assert events.changed(
        "Pod", "MODIFIED", "p1", pod("Running", "running", **{"autolabel.dev/exit-code": "0"})
    )
    assert events.changed("Pod", "MODIFIED", "p1", pod("Succeeded", "terminated"))


def config_map(**data: str) -> dict[str, Any]:
    return {"metadata": {"name": "c"}, "data": data}


def test_a_config_map_counts_for_new_content_not_for_the_request_or_a_removed_key() -> None:
    events = ChildEvents()
    assert not events.changed("ConfigMap", "ADDED", "c1", config_map())
    assert events.changed("ConfigMap", "MODIFIED", "c1", config_map(**{"validate-g1-1": '{"ok": true}'}))
    assert not events.changed("ConfigMap", "MODIFIED", "c1", config_map())  # taken in, removed by us
    assert not events.changed("ConfigMap", "MODIFIED", "c1", config_map(**{"review-request": "{}"}))
    assert events.changed(
        "ConfigMap", "MODIFIED", "c1", config_map(**{"review-request": "{}", "review": "a"})
    )
    assert events.changed(
        "ConfigMap", "MODIFIED", "c1", config_map(**{"review-request": "{}", "review": "b"})
    )
    assert not events.changed("ConfigMap", "DELETED", "c1", config_map())


def test_each_handled_child_event_is_counted_by_kind_and_type_even_when_no_run_is_left() -> None:
    """`autolabel_child_events_total`: what tests wait on to know the controller has seen a change."""
    import asyncio

    from contract.wire import RUN_UID_LABEL
    from controller import handlers, metrics

    def count(kind: str, event_type: str) -> float:
        value: float = metrics.CHILD_EVENTS.labels(kind, event_type)._value.get()
        return value

    deleted, listed = count("Job", "DELETED"), count("Job", "LISTED")
    body = job(succeeded=1)
    asyncio.run(handlers._on_child("Job", "DELETED", body, "j9", {RUN_UID_LABEL: "gone"}, {}))  # type: ignore[arg-type]
    asyncio.run(handlers._on_child("Job", None, body, "j9", {RUN_UID_LABEL: "gone"}, {}))  # type: ignore[arg-type]
    assert (count("Job", "DELETED"), count("Job", "LISTED")) == (deleted + 1, listed + 1)
