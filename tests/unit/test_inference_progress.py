"""Progress: snapshot JSON shape and the ConfigMap reporter's patch of its own key only."""

import json
from typing import Any

from inference.progress import ConfigMapReporter, ProgressTracker, State


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
    assert document["state"] == State.RUNNING and "1 not an image" in document["message"]


def test_configmap_reporter_patches_its_shard_key():
    api = _RecordingApi()
    ConfigMapReporter("ns", "run-progress", 3, api=api).report(ProgressTracker().snapshot())
    ((name, namespace, body),) = api.calls
    assert (name, namespace, list(body["data"])) == ("run-progress", "ns", ["shard-3"])


def test_configmap_reporter_failure_is_not_fatal():
    ConfigMapReporter("ns", "cm", 0, api=_RecordingApi(fail=True)).report(ProgressTracker().snapshot())
