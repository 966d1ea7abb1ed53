"""Prometheus metrics of the controller, served on their own port (default 9090, path /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RUNS_BY_PHASE = Gauge("autolabel_runs", "AutoLabelRuns by phase, as last reconciled.", ["phase"])
RECONCILE_ERRORS = Counter("autolabel_reconcile_errors_total", "Reconciles that raised.", ["kind"])
RECONCILE_DURATION = Histogram(
    "autolabel_reconcile_duration_seconds",
    "Duration of one reconcile.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180),
)
JOB_DURATION = Histogram(
    "autolabel_job_duration_seconds",
    "From worker Job creation to the end of inference, per run.",
    buckets=(10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
VALIDATIONS = Counter("autolabel_validations_total", "Validations by outcome reason.", ["reason"])
STATUS_WRITES = Counter("autolabel_status_writes_total", "Status patches the API server accepted.")
STATUS_WRITE_RETRIES = Counter(
    "autolabel_status_write_retries_total", "Status patches refused or lost and sent again."
)
RECONCILES = Counter("autolabel_reconciles_total", "Reconciles by what caused them.", ["cause"])
CHILD_EVENTS = Counter(
    "autolabel_child_events_total",
    "Watch events of runs' children (Jobs, worker pods, ConfigMaps, Workloads) handled, by kind and type.",
    ["kind", "type"],
)


class PhaseBook:
    """Remembers each run's last phase so the by-phase gauge counts every run once."""

    def __init__(self) -> None:
        self._phases: dict[str, str] = {}

    def record(self, run_uid: str, phase: str | None) -> None:
        previous = self._phases.get(run_uid)
        if previous == phase:
            return
        if previous is not None:
            RUNS_BY_PHASE.labels(previous).dec()
        if phase is None:
            self._phases.pop(run_uid, None)
            return
        self._phases[run_uid] = phase
        RUNS_BY_PHASE.labels(phase).inc()


def serve(port: int) -> None:
    start_http_server(port, addr="0.0.0.0")
