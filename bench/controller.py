"""``python -m bench.controller`` (``make bench-controller``): the controller's cost at 50, 200 and 500 runs.

The stage is `bench/controller_cluster.py`: a real API server with kwok nodes
(pods completed by a kwok stage), the real controller cluster-wide under its
chart RBAC, a real mongod, and the real review agent of the namespace. Sizes
are cumulative: runs are added to reach each size, and the measures of a size
are taken with all its runs in Review. Per size it reports:

- apply -> worker Job created (p50, p99) and run created -> phase Review (p50,
  p99) for the runs added at that size, from the benchmark's own create call to
  its watch seeing the Job / the phase (the validation step is answered by the
  benchmark at once, as a passing step pod would);
- then, once the agent has served every run (each has `status.review`; the
  benchmark wrote two predictions per run into the run's own dataset, as the
  workers would), a steady window with nobody reviewing: the controller's CPU
  (cores, from /proc), its peak RSS (VmHWM), its API requests per second and
  the same for the review agents, counted per user from the API server's audit
  log, plus the reconciles the controller made in the window.

Results go to ``bench/results/controller-<timestamp>.json`` and a table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from bench.controller_cluster import (
    WORKER_SA,
    AgentRunner,
    Controller,
    StepPlayer,
    admin_client,
    install_chart,
    service_account_kubeconfig,
    start_cluster,
    user_of,
)
from bench.controller_measure import Audit, busiest_processes, cpu_seconds, peak_rss_mib, percentile
from contract.wire import RUN_UID_LABEL
from tools.cluster.chart import CONTROLLER_SA, SYSTEM_NAMESPACE
from tools.services.mongo import MongoServer

NAMESPACE = "bench"
SAMPLES = 2
LABEL_FIELD = "bench_labels"
RESULTS = Path(__file__).resolve().parent / "results"


def run_manifest(name: str, dataset: str) -> dict[str, Any]:
    return {
        "apiVersion": "autolabel.dev/v1alpha1",
        "kind": "AutoLabelRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "task": "classification",
            "dataset": {
                "name": dataset,
                "target": {"all": True},
                "databaseSecretRef": {"name": "fiftyone-db"},
            },
            "model": {
                "endpoint": {"address": "127.0.0.1:1"},  # never called: the benchmark answers validation
                "name": "efficientnet_lite0",
                "outputFormat": "logits",
                "tensors": {"output": "LOGITS"},
            },
            "labelField": LABEL_FIELD,
            "execution": {"parallelism": 1},
        },
    }


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


def reconciles(metrics_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("autolabel_reconciles_total{")
    )


def create_datasets(names: list[str]) -> None:
    import fiftyone as fo

    for name in names:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
        dataset = fo.Dataset(name, persistent=True)
        dataset.add_samples(
            [fo.Sample(filepath=f"/bench/{name}/{i}.jpg") for i in range(SAMPLES)], progress=False
        )


def write_predictions(runs: dict[str, str], review_fields: dict[str, str]) -> None:
    """The workers' part: two classifications per run in its staging field, marked with the run's uid."""
    import fiftyone as fo

    from contract.worker import MARKER_FIELD_SUFFIX

    for uid, dataset_name in runs.items():
        dataset = fo.load_dataset(dataset_name)
        staging = review_fields[uid]
        dataset.set_values(
            staging, [fo.Classification(label="cat", confidence=0.5 + i / 10) for i in range(len(dataset))]
        )
        dataset.set_values(f"{staging}{MARKER_FIELD_SUFFIX}", [uid] * len(dataset))


def measure_size(
    size: int,
    created: dict[str, tuple[float, str, str]],
    observer: Observer,
    controller: Controller,
    agents: AgentRunner,
    audit: Audit,
    steady_seconds: float,
    custom: Any,
) -> dict[str, Any]:
    start_index = len(created)
    names = [f"bench-{i:04d}" for i in range(start_index, size)]
    print(f"size {size}: creating {len(names)} datasets", flush=True)
    create_datasets([f"ds-{name}" for name in names])
    print(f"size {size}: applying {len(names)} runs", flush=True)
    pid = controller.process.pid if controller.process else 0
    busy_cpu0, busy_reconciles0 = cpu_seconds([pid]), reconciles(controller.metrics_port)
    added: dict[str, str] = {}
    for name in names:
        started = time.monotonic()
        body = custom.create_namespaced_custom_object(
            "autolabel.dev", "v1alpha1", NAMESPACE, "autolabelruns", run_manifest(name, f"ds-{name}")
        )
        uid = body["metadata"]["uid"]
        created[uid] = (started, name, f"ds-{name}")
        added[uid] = f"ds-{name}"
    wait(
        f"{len(added)} runs in Review",
        lambda: all(uid in observer.review_seen for uid in added),
        120 + 3 * len(added),
        lambda: (
            f"{sum(u in observer.job_seen for u in added)} Jobs, "
            f"{sum(u in observer.review_seen for u in added)} in Review"
        ),
    )
    busy_cpu = cpu_seconds([pid]) - busy_cpu0
    busy_reconciles = reconciles(controller.metrics_port) - busy_reconciles0
    to_job = [observer.job_seen[u] - created[u][0] for u in added]
    to_review = [observer.review_seen[u] - created[u][0] for u in added]
    wait("the review fields", lambda: all(u in observer.review_fields for u in added), 60)
    print(
        f"size {size}: writing predictions, then waiting for the review agent to serve every run", flush=True
    )
    write_predictions(added, observer.review_fields)

    def agent_running() -> bool:
        agents.sync()
        return bool(agents.pids())

    wait("the agent Deployment", agent_running, 120)
    wait(
        f"status.review of all {size} runs",
        lambda: sum(observer.reviewed.get(u) == SAMPLES for u in created) == len(created),
        300 + 2 * size,
        lambda: f"{sum(observer.reviewed.get(u) == SAMPLES for u in created)}/{len(created)} reviewed",
    )
    time.sleep(10)  # the last verdicts' writes settle
    audit.mark()
    begin, cpu0, agent0 = datetime.now(UTC), cpu_seconds([pid]), cpu_seconds(agents.pids())
    reconciles0, t0 = reconciles(controller.metrics_port), time.monotonic()
    print(f"size {size}: steady window of {steady_seconds:.0f}s", flush=True)
    time.sleep(steady_seconds)
    elapsed = time.monotonic() - t0
    end, cpu1, agent1 = datetime.now(UTC), cpu_seconds([pid]), cpu_seconds(agents.pids())
    reconciles1 = reconciles(controller.metrics_port)
    load, others = os.getloadavg(), busiest_processes()
    time.sleep(3)  # requests received before `end` are in the log once they complete
    counts = audit.count_since(begin, end)
    controller_requests = counts.get(user_of(CONTROLLER_SA, SYSTEM_NAMESPACE), {})
    agent_requests = counts.get(user_of(WORKER_SA, NAMESPACE), {})
    return {
        "runs": size,
        "runsAdded": len(added),
        "applyToJobP50Seconds": round(percentile(to_job, 50), 3),
        "applyToJobP99Seconds": round(percentile(to_job, 99), 3),
        "createdToReviewP50Seconds": round(percentile(to_review, 50), 3),
        "createdToReviewP99Seconds": round(percentile(to_review, 99), 3),
        "controllerCpuSecondsApplyToReview": round(busy_cpu, 1),
        "controllerReconcilesApplyToReview": busy_reconciles,
        "controllerPeakRssMiB": round(peak_rss_mib(pid), 1),
        "controllerCpuCores": round((cpu1 - cpu0) / elapsed, 4),
        "controllerCpuSecondsPerMinute": round((cpu1 - cpu0) / elapsed * 60, 2),
        "controllerRequestsPerSecond": round(sum(controller_requests.values()) / elapsed, 3),
        "controllerRequests": controller_requests,
        "controllerReconcilesInWindow": reconciles1 - reconciles0,
        "reviewWorkCpuCores": round((agent1 - agent0) / elapsed, 4),
        "reviewWorkRequestsPerSecond": round(sum(agent_requests.values()) / elapsed, 3),
        "reviewWorkRequests": agent_requests,
        "reviewAgents": len(agents.pids()),
        "steadySeconds": round(elapsed, 1),
        "loadAverage": [round(x, 2) for x in load],
        "busiestProcessesAtWindowEnd": others,
    }


TABLE = (
    ("runs", "runs"),
    ("applyToJobP50Seconds", "apply->Job p50 s"),
    ("applyToJobP99Seconds", "p99 s"),
    ("createdToReviewP50Seconds", "created->Review p50 s"),
    ("createdToReviewP99Seconds", "p99 s"),
    ("controllerPeakRssMiB", "peak RSS MiB"),
    ("controllerCpuCores", "CPU cores"),
    ("controllerRequestsPerSecond", "req/s"),
    ("reviewWorkCpuCores", "review work cores"),
    ("reviewWorkRequestsPerSecond", "review req/s"),
)


def print_table(sizes: list[dict[str, Any]]) -> None:
    print("| " + " | ".join(title for _, title in TABLE) + " |")
    print("|" + "---|" * len(TABLE))
    for entry in sizes:
        print("| " + " | ".join(str(entry[key]) for key, _ in TABLE) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,500", help="cumulative run counts (default 50,200,500)")
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--state-dir", type=Path, default=None, help="default: a temporary directory")
    parser.add_argument(
        "--standalone-database",
        action="store_true",
        help="a standalone mongod (no change streams: the review agent checks each dataset per interval)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop everything it started (finally)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="bench-controller-"))
    state.mkdir(parents=True, exist_ok=True)
    replica_set = None if args.standalone_database else "rs0"  # production databases are replica sets
    mongo = MongoServer(state / "mongo" / "db", replica_set=replica_set).start()
    database_env = mongo.fiftyone_environment(database_name="autolabel-bench")
    os.environ.update(database_env)  # before FiftyOne is imported (datasets, predictions)
    cluster = start_cluster(state / "cluster")
    controller: Controller | None = None
    agents: AgentRunner | None = None
    step_player: StepPlayer | None = None
    observer: Observer | None = None
    results: list[dict[str, Any]] = []
    failure: str | None = None
    started_at = datetime.now(UTC)
    try:
        install_chart(cluster, NAMESPACE)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "fiftyone-db", "namespace": NAMESPACE},
            "stringData": {"uri": database_env["FIFTYONE_DATABASE_URI"], "database": "autolabel-bench"},
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(secret))
        api = admin_client(cluster)
        controller = Controller(
            service_account_kubeconfig(
                cluster, CONTROLLER_SA, SYSTEM_NAMESPACE, state / "controller.kubeconfig"
            ),
            state / "controller.log",
        )
        controller.start()
        wait("the controller's metrics", lambda: _answers(controller), 120)
        agent_kubeconfig = service_account_kubeconfig(
            cluster, WORKER_SA, NAMESPACE, state / "worker.kubeconfig"
        )
        agents = AgentRunner(api, NAMESPACE, agent_kubeconfig, database_env, state)
        step_player = StepPlayer(api, NAMESPACE, SAMPLES)
        step_player.start()
        observer = Observer(api)
        created: dict[str, tuple[float, str, str]] = {}
        custom = client.CustomObjectsApi(api)
        audit = Audit(cluster.audit_log)
        for size in sizes:
            entry = measure_size(
                size, created, observer, controller, agents, audit, args.steady_seconds, custom
            )
            results.append(entry)
            print(
                json.dumps({k: v for k, v in entry.items() if k != "busiestProcessesAtWindowEnd"}), flush=True
            )
    except Exception as error:  # the sizes measured so far are still written, with what stopped the rest
        failure = f"{type(error).__name__}: {error}"
        print(f"stopped: {failure}", file=sys.stderr)
    finally:
        if observer is not None:
            observer.stopped = True
        if step_player is not None:
            step_player.stop()
        if agents is not None:
            agents.stop()
        if controller is not None:
            controller.stop()
        cluster.stop()
        mongo.stop()
    document = {
        "benchmark": "controller",
        "startedAt": started_at.isoformat(),
        "machine": {"cpus": os.cpu_count(), "note": "shared machine: see loadAverage and busiest processes"},
        "database": "standalone mongod" if replica_set is None else "single-node replica set",
        "sizes": results,
    }
    if failure is not None:
        document["failure"] = failure
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"controller-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(document, indent=1) + "\n")
    print_table(results)
    print(f"results: {out}")
    return 0 if failure is None else 1


def _answers(controller: Controller) -> bool:
    try:
        reconciles(controller.metrics_port)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
