"""The run record: a small summary of each run kept in its dataset, so the App shows runs without Kubernetes.

``dataset.info["autolabel_runs"][<run uid>]`` holds the run's identity (name,
namespace, uid), a summary of its spec (task, model, classes, minimum
confidence, label and staging fields), its phase (``Generating``,
``In Review``, ``Finalized``, ``Discarded``, ``Failed``) and its counts
(per-shard progress while generating; review totals and, with
``spec.review.autoApprove``, the calibration table; finalize or discard
outcome). The run's own dataset work writes it at the few points where these
change: every worker progress tick, each review pass, finalize and discard.

A reviewer's finalize request from the App (the Auto-Label panel, when the App
has no Kubernetes credentials) is written here as ``finalizeRequest``; the next
review pass reports it in its JSON result and the controller finalizes the run
as it would for ``spec.finalize``.

Every write is one atomic ``$set`` on the dataset's document for the keys it
changes, so shards, review passes and the App never overwrite each other's parts
(a read-modify-write of ``dataset.info`` would). Writes are best effort for the
progress tick only; the other writes raise like any dataset write.
"""

from __future__ import annotations

import getpass
import logging
import socket
from datetime import UTC, datetime
from typing import Any

from contract.progress import ProgressReport, ProgressState
from contract.verdicts import ProbeVerdict
from contract.worker import WorkerConfig
from runtime.reporters import ProgressReporter

RECORD_KEY = "autolabel_runs"
GENERATING, IN_REVIEW, FINALIZED, DISCARDED, FAILED = (
    "Generating",
    "In Review",
    "Finalized",
    "Discarded",
    "Failed",
)
PHASES = (GENERATING, IN_REVIEW, FINALIZED, DISCARDED, FAILED)
_TERMINAL = (FINALIZED, DISCARDED)
LOG = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _datasets() -> Any:
    from fiftyone.core.odm import get_db_conn

    return get_db_conn().datasets


def summary(config: WorkerConfig) -> dict[str, Any]:
    """The run's identity and spec summary, as the App shows it on the run's card."""
    model = config.model
    if model is None:
        assert config.source is not None
        source = {"model": f"field {config.source.field}", "classes": [], "minConfidence": 0.0}
    else:
        source = {
            "model": model.name + (f":{model.version}" if model.version else ""),
            "classes": list(model.keep_classes or model.classes or []),
            "minConfidence": model.confidence_threshold,
        }
    return {
        "uid": config.run.uid,
        "name": config.run.name,
        "namespace": config.run.namespace,
        "task": str(config.task),
        **source,
        "labelField": config.label_field,
        "stagingField": config.staging,
        "markerField": config.marker_field,
        "shards": config.shards,
    }


def _set(dataset_name: str, uid: str, values: dict[str, Any], only_if: dict[str, Any] | None = None) -> bool:
    """One atomic ``$set`` of ``info.autolabel_runs.<uid>.<key>`` for each key of `values`."""
    prefix = f"info.{RECORD_KEY}.{uid}"
    query: dict[str, Any] = {"name": dataset_name}
    for key, condition in (only_if or {}).items():
        query[f"{prefix}.{key}"] = condition
    update = {f"{prefix}.{key}": value for key, value in {**values, "updatedAt": _now()}.items()}
    return bool(_datasets().update_one(query, {"$set": update}).matched_count)


def _write(config: WorkerConfig, phase: str | None, values: dict[str, Any]) -> None:
    """Writes the summary and `values`; the phase only moves forward from a terminal phase never."""
    _set(config.dataset, config.run.uid, {**summary(config), **values})
    if phase is not None:
        _set(config.dataset, config.run.uid, {"phase": phase}, only_if={"phase": {"$nin": list(_TERMINAL)}})


def shard_progress(config: WorkerConfig, shard: int, processed: int, total: int, state: str) -> None:
    """A worker's progress tick: the shard's counts; phase Generating, or Failed when the shard failed.

    Best effort, like the ConfigMap progress: a failed write is logged and the next tick tries again.
    """
    failed = state == ProgressState.FAILED
    try:
        phase = FAILED if failed else GENERATING
        only_if = {"phase": {"$nin": [IN_REVIEW, *_TERMINAL]}}
        shard_doc = {"processed": processed, "total": total, "state": state}
        _set(config.dataset, config.run.uid, {**summary(config), f"progress.{shard}": shard_doc})
        _set(config.dataset, config.run.uid, {"phase": phase}, only_if=only_if)
    except Exception as error:
        LOG.warning("run record of %s not updated: %s", config.run.name, error)


def validated(config: WorkerConfig, verdict: ProbeVerdict) -> None:
    """The validation step's verdict: the run has a card from the start, Generating or Failed.

    ``target`` is the number of target samples (the card's N/M until the shards report); a
    refused run records ``failure`` (reason and message, scrubbed of credentials). Never over a
    run in review or done (validation runs again only for a new generation of a run not started),
    and best effort: the verdict reaches the controller whatever happens here.
    """
    from runtime.redact import scrub

    values: dict[str, Any] = {**summary(config), "target": verdict.total or 0}
    ok = verdict.ok
    values["failure"] = (
        None if ok else {"reason": verdict.reason.value, "message": scrub(verdict.message)[:500]}
    )
    try:
        _set(config.dataset, config.run.uid, values)
        only_if = {"phase": {"$nin": [IN_REVIEW, *_TERMINAL]}}
        _set(config.dataset, config.run.uid, {"phase": GENERATING if ok else FAILED}, only_if=only_if)
    except Exception as error:
        LOG.warning("run record of %s not updated: %s", config.run.name, error)


class RecordingReporter:
    """A progress reporter that also writes each snapshot into the run record, then passes it on."""

    def __init__(self, config: WorkerConfig, shard: int, inner: ProgressReporter) -> None:
        self.config, self.shard, self.inner = config, shard, inner

    def report(self, snapshot: ProgressReport) -> None:
        # Not while starting: the dataset (and FiftyOne's import) is still loading on another thread,
        # and importing FiftyOne from this thread at the same time deadlocks the import.
        if snapshot.state != ProgressState.STARTING:
            shard_progress(self.config, self.shard, snapshot.processed, snapshot.total, snapshot.state)
        self.inner.report(snapshot)


def reviewed(config: WorkerConfig, stats: dict[str, Any], aids: dict[str, Any] | None) -> None:
    """A review pass: the run is In Review with these totals (and its saved views and brain key)."""
    counts = {key: int(stats.get(key) or 0) for key in ("total", "approved", "rejected", "unreviewed")}
    values: dict[str, Any] = {
        "counts": counts,
        "classCount": len(stats.get("classes") or []),
        "problemTags": list(stats.get("problemTags") or {}),
    }
    calibration = stats.get("calibration")
    if calibration:  # the App panel's Verification tab shows it
        values["calibration"] = {key: value for key, value in calibration.items() if key != "changed"}
    if aids and not aids.get("error"):
        values["savedViews"] = list(aids.get("savedViews") or [])
        values["brainKey"] = aids.get("brainKey")
    _write(config, IN_REVIEW, values)


def finalized(config: WorkerConfig, counts: dict[str, int]) -> None:
    """Finalize done: the run is Finalized, keeping ``promoted`` labels and removing ``discarded``."""
    _write(config, FINALIZED, {"finalized": dict(counts)})


def discarded(config: WorkerConfig, result: dict[str, int]) -> dict[str, int]:
    """Discard done (`result` is discard's answer, returned as is): the run's predictions are gone."""
    _write(config, DISCARDED, {"discarded": {"removed": int(result.get("removed", 0))}})
    return result


def records(dataset_name: str) -> dict[str, dict[str, Any]]:
    """Every run record of the dataset, read from the database (never a cached ``dataset.info``)."""
    document = _datasets().find_one({"name": dataset_name}, {f"info.{RECORD_KEY}": 1}) or {}
    found = (document.get("info") or {}).get(RECORD_KEY) or {}
    return {uid: dict(record) for uid, record in found.items() if isinstance(record, dict)}


def request_finalize(dataset_name: str, uid: str, approved: int, removed: int) -> dict[str, Any]:
    """Records a reviewer's finalize request (App without Kubernetes credentials); returns it.

    Only a run in review can be asked; asking twice keeps the first request.
    """
    request = {
        "requestedAt": _now(),
        "requestedBy": f"{getpass.getuser()}@{socket.gethostname()}",
        "approved": approved,
        "removed": removed,
    }
    prefix = f"info.{RECORD_KEY}.{uid}"
    result = _datasets().update_one(
        {"name": dataset_name, f"{prefix}.phase": IN_REVIEW, f"{prefix}.finalizeRequest": {"$exists": False}},
        {"$set": {f"{prefix}.finalizeRequest": request}},
    )
    if result.matched_count:
        return request
    record = records(dataset_name).get(uid)
    if record is None:
        raise LookupError(f"dataset {dataset_name!r} has no record of run {uid!r}")
    if record.get("finalizeRequest"):
        return dict(record["finalizeRequest"])
    raise ValueError(
        f"run {record.get('name')!r} is {record.get('phase')}, not In Review: it cannot be finalized"
    )


def finalize_request(config: WorkerConfig) -> dict[str, Any] | None:
    """The finalize request recorded for this run, if any."""
    request = (records(config.dataset).get(config.run.uid) or {}).get("finalizeRequest")
    return dict(request) if request else None
