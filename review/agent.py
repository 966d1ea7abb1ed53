"""`python -m worker review-agent`: the review loop of one namespace and database, in one process.

The controller runs one agent per namespace and database Secret (a Deployment
under the namespace's worker ServiceAccount). Each run in Review has a request
(`contract.review_agent.ReviewRequest`) in its result ConfigMap: the agent name, the
generation, ``spec.review`` and the refresh interval. The agent watches those
ConfigMaps (one list, then one open watch) and imports FiftyOne once. A dataset
is checked when it may have changed: when the database's change stream says so
(`review.change_feed`, on a replica set), or once per refresh interval on a
standalone server. The check costs the same whatever the number of runs or
samples: the dataset's sample count (from the collection's metadata), its latest
``last_modified_at`` (an index FiftyOne keeps; tagging a label in the App, or a
rule, updates it) and the finalize requests recorded in the dataset. Only when
that, or a run's request, changed does it recompute that run: rules (on a new
request), review aids (once), statistics. The verdict (`AgentVerdict`) goes beside
the request; the controller turns it into ``status.review``. So idle runs cost no
API request, and no query at all while the change stream is quiet.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contract.env import WORKER_CONFIG_KEY
from contract.review_agent import (
    REQUEST_KEY,
    VERDICT_KEY,
    AgentVerdict,
    ReviewRequest,
    read_request,
    request_id,
)
from contract.wire import RESULT_SELECTOR, RUN_UID_LABEL
from contract.worker import WorkerConfig
from review.change_feed import DATASETS_COLLECTION, ChangeFeed
from runtime import kube, run_record
from runtime.errors import FatalError

MIN_SLEEP_SECONDS = 1.0  # one round per second at most: a burst of events, or checks due together
MAX_SLEEP_SECONDS = 60.0
RETRY_SECONDS = 2.0
LOG = logging.getLogger("autolabel.review_agent")
Token = tuple[str, int, str, str]


@dataclass
class _Run:
    """What the agent remembers of one run between passes."""

    config: WorkerConfig
    request_id: str | None = None  # of the request last computed in full
    token: Token | None = None  # the dataset's change token when this run was last computed
    aids: dict[str, Any] | None = None


@dataclass
class _Dataset:
    """When a dataset is checked next, and what its last check saw."""

    next_check: float = 0.0
    token: Token | None = None
    document_id: Any = None  # its document in FiftyOne's datasets collection
    dirty: bool = True  # the change feed saw a change since the last check


def change_token(dataset_name: str) -> tuple[Token, Any] | None:
    """(token, id of the dataset's document), None when there is no such dataset.

    The token changes when anything a review shows may have changed: (sample collection,
    estimated sample count, latest ``last_modified_at``, digest of the finalize requests
    recorded in the dataset). It costs a metadata read, one indexed document and the
    dataset's own document, however many runs and samples the dataset holds.
    """
    from fiftyone.core.odm import get_db_conn

    db = get_db_conn()
    document = db.datasets.find_one(
        {"name": dataset_name}, {"sample_collection_name": 1, f"info.{run_record.RECORD_KEY}": 1}
    )
    if document is None:
        return None
    collection = db[document["sample_collection_name"]]
    latest = collection.find_one({}, {"last_modified_at": 1}, sort=[("last_modified_at", -1)])
    records = (document.get("info") or {}).get(run_record.RECORD_KEY) or {}
    requests = sorted(
        (uid, json.dumps(record.get("finalizeRequest"), sort_keys=True, default=str))
        for uid, record in records.items()
        if isinstance(record, dict) and record.get("finalizeRequest")
    )
    token = (
        str(document["sample_collection_name"]),
        collection.estimated_document_count(),
        str((latest or {}).get("last_modified_at", "")),
        request_id(json.dumps(requests)),
    )
    return token, document["_id"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ReviewAgent:
    """Serves the review requests addressed to `agent` in `namespace`."""

    def __init__(self, namespace: str, agent: str, unavailable: str | None = None) -> None:
        self.namespace = namespace
        self.agent = agent
        self.unavailable = unavailable  # why the database cannot be opened (its Secret is missing)
        self.runs: dict[str, _Run] = {}
        self.datasets: dict[str, _Dataset] = {}
        self.failed_until: dict[str, float] = {}
        self.parsed: dict[str, tuple[str, ReviewRequest | None]] = {}  # ConfigMap -> (its request, read)
        self.wake = threading.Event()
        self.config_maps = kube.ConfigMapWatch(namespace, RESULT_SELECTOR, self.wake.set)
        self.feed = ChangeFeed(self._changed, self._gap)
        self._seen_collections: set[str] = set()  # changes from the feed, not yet applied
        self._seen_datasets: set[Any] = set()  # ids of changed documents of the datasets collection
        self._everything_changed = False
        self._seen_lock = threading.Lock()

    def _changed(self, collection: str, document_id: Any) -> None:
        with self._seen_lock:
            if collection == DATASETS_COLLECTION:
                self._seen_datasets.add(document_id)
            else:
                self._seen_collections.add(collection)
        self.wake.set()

    def _gap(self) -> None:
        with self._seen_lock:
            self._everything_changed = True
        self.wake.set()

    def _apply_changes(self) -> None:
        """Marks the datasets the feed saw change (or all of them, after a gap) for a check."""
        with self._seen_lock:
            changed_collections, changed_ids = self._seen_collections, self._seen_datasets
            everything = self._everything_changed
            self._seen_collections, self._seen_datasets, self._everything_changed = set(), set(), False
        for checked in self.datasets.values():
            collection = checked.token[0] if checked.token else None
            if everything or checked.document_id in changed_ids or collection in changed_collections:
                checked.dirty = True

    def _requests(self) -> dict[str, tuple[str, str, ReviewRequest]]:
        """uid -> (result ConfigMap, request id, request) of the runs asking this agent.

        A request that is no `ReviewRequest` is left alone, like one for another agent.
        """
        found, parsed = {}, {}
        for name, labels, data in self.config_maps.snapshot():
            raw, uid = data.get(REQUEST_KEY), labels.get(RUN_UID_LABEL)
            if not raw or not uid:
                continue
            known = self.parsed.get(name)
            request = known[1] if known is not None and known[0] == raw else read_request(raw)
            parsed[name] = (raw, request)
            if request is not None and request.agent == self.agent:
                found[uid] = (name, request_id(raw), request)
        self.parsed = parsed
        return found

    def _load(self, request: ReviewRequest) -> _Run:
        data = kube.read_config_map(self.namespace, request.snapshot)
        if data is None or WORKER_CONFIG_KEY not in data:
            raise FatalError(f"snapshot ConfigMap {request.snapshot} is missing")
        return _Run(WorkerConfig.from_json(data[WORKER_CONFIG_KEY]))

    def _token(self, name: str, interval: float, now: float, force: bool) -> Token | None:
        """The dataset's change token, checked again only when `force`d or it may have changed.

        With a healthy change feed, "may have changed" is "the feed saw it change"; without
        one, once per `interval`.
        """
        checked = self.datasets.setdefault(name, _Dataset())
        polling = not self.feed.healthy.is_set()
        if force or checked.dirty or (polling and now >= checked.next_check):
            checked.dirty = False
            found = change_token(name)
            checked.token, checked.document_id = found if found is not None else (None, None)
            checked.next_check = now + interval
        return checked.token

    def _serve(self, uid: str, config_map: str, rid: str, request: ReviewRequest, now: float) -> None:
        if now < self.failed_until.get(uid, 0.0):
            return
        interval = float(request.refresh_interval_seconds)
        state = self.runs.get(uid)
        try:
            if self.unavailable:
                raise FatalError(self.unavailable)
            if state is None:
                state = self.runs[uid] = self._load(request)
            new_request = state.request_id != rid
            token = self._token(state.config.dataset, interval, now, force=new_request)
            if not new_request and token == state.token:
                return
            computed = self._pass(state, rid, request, new_request)
            # A verdict out of the contract's bounds fails here, as this run's failure.
            verdict = AgentVerdict.model_validate(
                {"requestId": rid, "generation": request.generation, **computed, "computedAt": _now()}
            )
            # The token read before the pass: a change made while it ran (a reviewer's tags, or
            # the pass's own writes) makes the next check differ and the run is computed again.
            state.token = token
        except Exception as error:
            LOG.warning("review of run %s failed: %s", uid, error)
            verdict = AgentVerdict(
                request_id=rid,
                generation=request.generation,
                error=f"review: {type(error).__name__}: {error}",
                computed_at=_now(),
            )
            self.failed_until[uid] = now + interval
            if state is not None:
                state.request_id = None  # a new attempt recomputes in full
        kube.write_key(self.namespace, config_map, VERDICT_KEY, verdict.to_json())

    def _pass(self, state: _Run, rid: str, request: ReviewRequest, new_request: bool) -> dict[str, Any]:
        """The run's review numbers, computed in full (rules too when the request is new)."""
        import fiftyone as fo

        from review.aids import create_aids
        from review.decisions import apply_rules, review_stats

        config = state.config
        if not fo.dataset_exists(config.dataset):
            raise FatalError(f"dataset {config.dataset!r} does not exist")
        dataset = fo.load_dataset(config.dataset)
        dataset.reload()
        review = request.review
        rules = apply_rules(dataset, config, review) if new_request else None
        if state.aids is None:
            state.aids = create_aids(dataset, config, review)
        calibration = None
        if review.auto_approve is not None:
            from review.auto_approve import auto_approve

            calibration = auto_approve(dataset, config, review.auto_approve)
        stats = review_stats(dataset, config, review)
        stats["calibration"] = calibration
        run_record.reviewed(config, stats, state.aids)
        state.request_id = rid
        return {
            "rulesApplied": True,
            "rules": rules,
            "aids": state.aids,
            "stats": stats,
            "finalizeRequested": run_record.finalize_request(config),
        }

    def run_once(self) -> float:
        """Serves what is due; returns the seconds until the next dataset check is due."""
        requests = self._requests()
        for uid in set(self.runs) - set(requests):
            del self.runs[uid]  # finalized, discarded, deleted: forgotten
        for uid in set(self.failed_until) - set(requests):
            del self.failed_until[uid]
        self._apply_changes()
        now = time.monotonic()
        for uid, (config_map, rid, request) in requests.items():
            self._serve(uid, config_map, rid, request, now)
        wanted = {state.config.dataset for state in self.runs.values()}
        for name in set(self.datasets) - wanted:
            del self.datasets[name]
        due = list(self.failed_until.values())
        if not self.feed.healthy.is_set():
            due += [checked.next_check for checked in self.datasets.values()]
        return min([*due, now + MAX_SLEEP_SECONDS]) - time.monotonic()

    def run_forever(self) -> None:
        self.config_maps.start()
        if not self.unavailable:
            from fiftyone.core.odm import get_db_conn

            try:
                get_db_conn()  # connects here, not in two threads at once
            except Exception as error:  # the passes report it; the feed keeps trying
                LOG.warning("the database is not reachable yet: %s", error)
            self.feed.start()
        self.config_maps.synced.wait()
        while True:
            self.wake.clear()
            started = time.monotonic()
            try:
                delay = self.run_once()
            except Exception as error:  # the API or the database hiccupped: try again soon
                LOG.warning("review agent pass failed: %s", error)
                delay = RETRY_SECONDS
            self.wake.wait(max(delay, 0.0))
            time.sleep(max(0.0, started + MIN_SLEEP_SECONDS - time.monotonic()))


def main(agent: str, unavailable: str | None = None) -> int:
    namespace = os.environ.get("POD_NAMESPACE", "")
    if not namespace:
        raise FatalError("POD_NAMESPACE is not set (the Deployment passes it from the downward API)")
    LOG.info("review agent %s serving namespace %s", agent, namespace)
    ReviewAgent(namespace, agent, unavailable).run_forever()
    return 0
