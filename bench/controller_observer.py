"""What the controller benchmark sees: watches of the worker Jobs and the runs, and a wait that tells.

`Observer` records, per run uid, when its worker Job and its phase Review were first
seen, its staging field, and the `status.review.total` the controller last wrote;
`wait()` polls a condition twice a second and prints how far it has got every 15 s.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from kubernetes import client, watch

from bench.controller_workload import NAMESPACE
from contract.wire import RUN_UID_LABEL


class Observer:
    """Watches worker Jobs and runs; records when each run's Job and its phase Review were first seen."""

    def __init__(self, api: Any) -> None:
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.job_seen: dict[str, float] = {}
        self.review_seen: dict[str, float] = {}
        self.reviewed: dict[str, int] = {}  # run uid -> status.review.total
        self.review_fields: dict[str, str] = {}
        for target in (self._jobs, self._runs):
            threading.Thread(target=self._forever, args=(target,), daemon=True).start()

    stopped = False

    def _forever(self, target: Any) -> None:
        while not self.stopped:
            try:
                target()
            except Exception as error:
                if not self.stopped:
                    print(f"observer: {error}", file=sys.stderr)
                time.sleep(1)

    def _jobs(self) -> None:
        stream = watch.Watch().stream(
            self.batch.list_namespaced_job,
            NAMESPACE,
            label_selector="app.kubernetes.io/component=worker",
            timeout_seconds=300,
        )
        for event in stream:
            uid = event["object"].metadata.labels.get(RUN_UID_LABEL)
            if uid:
                self.job_seen.setdefault(uid, time.monotonic())

    def _runs(self) -> None:
        stream = watch.Watch().stream(
            self.custom.list_namespaced_custom_object,
            "autolabel.dev",
            "v1alpha1",
            NAMESPACE,
            "autolabelruns",
            timeout_seconds=300,
        )
        for event in stream:
            run = event["object"]
            uid, status = run["metadata"]["uid"], run.get("status") or {}
            if status.get("phase") == "Review":
                self.review_seen.setdefault(uid, time.monotonic())
            if status.get("reviewField"):
                self.review_fields[uid] = status["reviewField"]
            if (status.get("review") or {}).get("total") is not None:
                self.reviewed[uid] = int(status["review"]["total"])


def wait(what: str, done: Any, timeout: float, progress: Any = None) -> None:
    deadline, last = time.monotonic() + timeout, 0.0
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        if progress is not None and time.monotonic() - last > 15:
            print(f"  ... {what}: {progress()}", flush=True)
            last = time.monotonic()
        time.sleep(0.5)
