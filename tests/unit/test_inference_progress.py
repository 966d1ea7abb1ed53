"""Progress: snapshot JSON shape and the ConfigMap reporter's patch of its own key only."""

import json
from typing import Any

from contract.progress import ProgressState
from inference.progress import ProgressTracker
from runtime.reporters import ConfigMapReporter


class _RecordingApi:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[Any] = []
        self.fail = fail

    def patch_namespaced_config_map(self, name, namespace, body):
        if self.fail:
            raise RuntimeError("apiserver down")
        self.calls.append((name, namespace, body))


def test_snapshot_json_keys():
    tracker = ProgressTracker()
    tracker.start(total=10, already_done=3)
    tracker.add_processed(2)
    tracker.add_failure("not an image")
    document = json.loads(tracker.snapshot().to_json())
    assert set(document) == {
        "processed",
        "failed",
        "total",
        "imagesPerSecond",
        "state",
        "message",
        "updatedAt",
    }
    assert (document["processed"], document["failed"], document["total"]) == (5, 1, 10)
    assert document["state"] == ProgressState.RUNNING and "1 not an image" in document["message"]


def test_configmap_reporter_patches_its_shard_key():
    api = _RecordingApi()
    ConfigMapReporter("ns", "run-progress", 3, api=api).report(ProgressTracker().snapshot())
    ((name, namespace, body),) = api.calls
    assert (name, namespace, list(body["data"])) == ("run-progress", "ns", ["shard-3"])


def test_configmap_reporter_failure_is_not_fatal():
    ConfigMapReporter("ns", "cm", 0, api=_RecordingApi(fail=True)).report(ProgressTracker().snapshot())


def test_a_slow_early_report_never_overwrites_the_final_one():
    """The tick's first patch (slow: it also builds the client) must not land after the final state."""
    import threading
    import time
    from datetime import UTC, datetime

    from contract.progress import ProgressReport

    sent: list[str] = []
    first_started = threading.Event()

    class SlowFirstApi:
        calls = 0

        def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any]) -> None:
            self.calls += 1
            state = json.loads(body["data"]["shard-0"])["state"]
            if state == ProgressState.STARTING:
                first_started.set()
                time.sleep(0.5)
            sent.append(state)

    def snapshot(state: str) -> ProgressReport:
        return ProgressReport(
            processed=0,
            failed=0,
            total=0,
            images_per_second=0.0,
            state=state,
            message="",
            updated_at=datetime(2026, 12, 1, tzinfo=UTC),
        )

    reporter = ConfigMapReporter("ns", "cm", 0, api=SlowFirstApi())
    early = threading.Thread(target=reporter.report, args=(snapshot(ProgressState.STARTING),))
    early.start()
    first_started.wait(5)
    reporter.report(snapshot(ProgressState.SUCCEEDED))
    early.join()
    assert sent[-1] == ProgressState.SUCCEEDED


def test_a_final_report_is_retried():
    class FlakyApi:
        calls = 0

        def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any]) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("connection reset")

    api = FlakyApi()
    reporter = ConfigMapReporter("ns", "cm", 0, api=api)
    tracker = ProgressTracker()
    tracker.start(total=1, already_done=0)
    tracker.state = ProgressState.SUCCEEDED
    reporter.report(tracker.snapshot())
    assert api.calls == 2
