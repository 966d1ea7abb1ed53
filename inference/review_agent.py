"""`python -m inference review-agent`: the review loop of one namespace and database, in one process.

The controller runs one agent per namespace and database Secret (a Deployment
under the namespace's worker ServiceAccount). Each run in Review has a request
in the key ``review-request`` of its result ConfigMap: the agent name, the
generation, ``spec.review`` and the refresh interval. The agent imports
FiftyOne once and, per run and interval, makes one cheap change check (the
count and the latest ``last_modified_at`` of the run's samples: tagging a
label in the App, or a rule, updates it); only when that, or the request,
changed does it recompute: rules (on a new request), review aids (once),
statistics. The verdict goes to the key ``review``; the controller turns it
into ``status.review``. So an idle run costs one aggregation per interval,
never a FiftyOne start-up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inference import result, run_record
from inference.config import WorkerConfig
from inference.errors import FatalError

REQUEST_KEY = "review-request"
RESULT_KEY = "review"
RESULT_SELECTOR = "app.kubernetes.io/component=result"
RUN_UID_LABEL = "autolabel.dev/run-uid"
POLL_SECONDS = 2.0
LOG = logging.getLogger("autolabel.review_agent")


@dataclass
class _Run:
    """What the agent remembers of one run between passes."""

    config: WorkerConfig
    request_id: str | None = None
    fingerprint: tuple[int, str, bool] | None = None  # (fingerprint(), a finalize request recorded)
    aids: dict[str, Any] | None = None
    next_check: float = 0.0


def request_id(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def fingerprint(dataset: Any, config: WorkerConfig) -> tuple[int, str]:
    """(samples of the run, latest last_modified_at among them): one aggregation, no label loaded."""
    rows = list(
        dataset._sample_collection.aggregate(
            [
                {"$match": {config.marker_field: config.run.uid}},
                {"$group": {"_id": None, "n": {"$sum": 1}, "t": {"$max": "$last_modified_at"}}},
            ]
        )
    )
    if not rows:
        return 0, ""
    return int(rows[0]["n"]), str(rows[0]["t"])


class ReviewAgent:
    """Serves the review requests addressed to `agent` in `namespace`."""

    def __init__(self, namespace: str, agent: str, unavailable: str | None = None) -> None:
        self.namespace = namespace
        self.agent = agent
        self.unavailable = unavailable  # why the database cannot be opened (its Secret is missing)
        self.runs: dict[str, _Run] = {}
        self.failed_until: dict[str, float] = {}

    def _requests(self) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """uid -> (result ConfigMap, request id, request) of the runs asking this agent."""
        found = {}
        for name, labels, data in result.list_config_maps(self.namespace, RESULT_SELECTOR):
            raw, uid = data.get(REQUEST_KEY), labels.get(RUN_UID_LABEL)
            if not raw or not uid:
                continue
            try:
                request = json.loads(raw)
            except ValueError:
                continue
            if request.get("agent") == self.agent:
                found[uid] = (name, request_id(raw), request)
        return found

    def _load(self, request: dict[str, Any]) -> _Run:
        data = result.read_config_map(self.namespace, request["snapshot"])
        if data is None or "worker.json" not in data:
            raise FatalError(f"snapshot ConfigMap {request['snapshot']} is missing")
        return _Run(WorkerConfig.from_json(data["worker.json"]))

    def _serve(self, uid: str, config_map: str, rid: str, request: dict[str, Any], now: float) -> None:
        state = self.runs.get(uid)
        if state is not None and state.request_id == rid and now < state.next_check:
            return
        if now < self.failed_until.get(uid, 0.0):
            return
        verdict: dict[str, Any] = {"requestId": rid, "generation": request.get("generation")}
        try:
            if self.unavailable:
                raise FatalError(self.unavailable)
            if state is None:
                state = self.runs[uid] = self._load(request)
            state.next_check = now + float(request.get("refreshIntervalSeconds") or 30)
            changed = self._pass(state, rid, request)
        except Exception as error:
            LOG.warning("review of run %s failed: %s", uid, error)
            verdict["error"] = f"review: {type(error).__name__}: {error}"[:4000]
            self.failed_until[uid] = now + float(request.get("refreshIntervalSeconds") or 30)
            if state is not None:
                state.request_id = None  # a new attempt recomputes in full
        else:
            if changed is None:
                return
            verdict.update(changed)
        verdict["computedAt"] = datetime.now(UTC).isoformat()
        result.write_key(self.namespace, config_map, RESULT_KEY, json.dumps(verdict, separators=(",", ":")))

    def _pass(self, state: _Run, rid: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """The run's review numbers when something changed since the last pass, else None."""
        import fiftyone as fo

        from inference.review import ReviewConfig, apply_rules, review_stats
        from inference.review_aids import create_aids

        config = state.config
        if not fo.dataset_exists(config.dataset):
            raise FatalError(f"dataset {config.dataset!r} does not exist")
        dataset = fo.load_dataset(config.dataset)
        new_request = state.request_id != rid
        seen = (*fingerprint(dataset, config), bool(run_record.finalize_request(config)))
        if not new_request and seen == state.fingerprint:
            return None
        dataset.reload()
        review = ReviewConfig.model_validate(request.get("review") or {})
        rules = apply_rules(dataset, config, review) if new_request else None
        if state.aids is None:
            state.aids = create_aids(dataset, config, review)
        calibration = None
        if review.auto_approve is not None:
            from inference.auto_approve import auto_approve

            calibration = auto_approve(dataset, config, review.auto_approve)
        stats = review_stats(dataset, config, review)
        stats["calibration"] = calibration
        run_record.reviewed(config, stats, state.aids)
        finalize_request = run_record.finalize_request(config)
        state.request_id = rid
        state.fingerprint = (*fingerprint(dataset, config), bool(finalize_request))
        return {
            "rulesApplied": True,
            "rules": rules,
            "aids": state.aids,
            "stats": stats,
            "finalizeRequested": finalize_request,
        }

    def run_once(self) -> None:
        requests = self._requests()
        for uid in set(self.runs) - set(requests):
            del self.runs[uid]  # finalized, discarded, deleted: forgotten
        for uid in set(self.failed_until) - set(requests):
            del self.failed_until[uid]
        now = time.monotonic()
        for uid, (config_map, rid, request) in requests.items():
            self._serve(uid, config_map, rid, request, now)

    def run_forever(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception as error:  # the API or the database hiccupped: try again next round
                LOG.warning("review agent pass failed: %s", error)
            time.sleep(POLL_SECONDS)


def main(agent: str, unavailable: str | None = None) -> int:
    namespace = os.environ.get("POD_NAMESPACE", "")
    if not namespace:
        raise FatalError("POD_NAMESPACE is not set (the Deployment passes it from the downward API)")
    LOG.info("review agent %s serving namespace %s", agent, namespace)
    ReviewAgent(namespace, agent, unavailable).run_forever()
    return 0
