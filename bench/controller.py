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

Results go to ``bench/results/controller-<timestamp>.json`` and a table is printed. The runs and
their datasets are `bench/controller_workload.py`, the watches that time them
`bench/controller_observer.py`, the /proc, audit-log and metrics readings `bench/controller_measure.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client

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
from bench.controller_measure import (
    Audit,
    busiest_processes,
    cpu_seconds,
    metrics_answer,
    peak_rss_mib,
    percentile,
    reconciles,
)
from bench.controller_observer import Observer, wait
from bench.controller_workload import (
    NAMESPACE,
    SAMPLES,
    create_datasets,
    run_manifest,
    write_predictions,
)
from tools.cluster.chart import CONTROLLER_SA, SYSTEM_NAMESPACE
from tools.services.mongo import MongoServer

RESULTS = Path(__file__).resolve().parent / "results"


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
        wait("the controller's metrics", lambda: metrics_answer(controller.metrics_port), 120)
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


if __name__ == "__main__":
    sys.exit(main())
