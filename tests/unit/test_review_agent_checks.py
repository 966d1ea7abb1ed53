"""The review agent's schedule: what an idle run costs, and when a run is computed again.

Pure logic: the database check (`change_token`), the full pass and the ConfigMap writes are
replaced by recorders; the real agent against the real database and API server is covered by
tests/integration (test_review_scale, test_change_feed, the review flows).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from contract.review import ReviewConfig
from contract.review_agent import REQUEST_KEY, ReviewRequest
from contract.wire import RUN_UID_LABEL
from review import agent as review_agent
from review.agent import ReviewAgent, _Run


class Database:
    """What `change_token` would read: a token per dataset, and how often it was asked."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, int, str, str]] = {}
        self.checks: list[str] = []

    def token(self, name: str) -> Any:
        self.checks.append(name)
        return self.tokens[name], f"doc-{name}"


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> tuple[ReviewAgent, Database, list[str], list[str]]:
    database, passes, writes = Database(), [], []
    runs = {"u1": "d1", "u2": "d1", "u3": "d2"}  # two runs share dataset d1
    for name in ("d1", "d2"):
        database.tokens[name] = (f"samples.{name}", 2, "t0", "none")
    monkeypatch.setattr(review_agent, "change_token", database.token)
    monkeypatch.setattr("runtime.kube.write_key", lambda *args: writes.append(args[1]))
    agent = ReviewAgent("team-a", "agent-1")
    monkeypatch.setattr(agent, "_load", lambda request: _Run(SimpleNamespace(dataset=runs[_uid(request)])))  # type: ignore[arg-type]

    def full_pass(state: _Run, rid: str, request: ReviewRequest, new_request: bool) -> dict[str, Any]:
        passes.append(_uid(request))
        state.request_id = rid
        return {}

    monkeypatch.setattr(agent, "_pass", full_pass)
    requests = [
        (f"result-{uid}", {RUN_UID_LABEL: uid}, {REQUEST_KEY: _request(uid).to_json()}) for uid in runs
    ]
    monkeypatch.setattr(agent.config_maps, "snapshot", lambda: requests)
    return agent, database, passes, writes


def _request(uid: str) -> ReviewRequest:
    """The request of run `uid`; its snapshot's name tells the run (the fakes above read it)."""
    return ReviewRequest(
        agent="agent-1", generation=1, review=ReviewConfig(), refresh_interval_seconds=5, snapshot=f"s-{uid}"
    )


def _uid(request: ReviewRequest) -> str:
    return request.snapshot.removeprefix("s-")


def test_with_a_change_feed_idle_runs_cost_no_check_at_all(
    agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, database, passes, writes = agent
    agent.feed.healthy.set()
    clock = [100.0]
    monkeypatch.setattr("review.agent.time.monotonic", lambda: clock[0])
    agent.run_once()
    assert sorted(passes) == ["u1", "u2", "u3"] and len(writes) == 3  # every new request computed
    database.checks.clear()
    for _ in range(10):  # a minute of rounds, nobody changes anything
        clock[0] += 6
        agent.run_once()
    assert database.checks == [] and len(passes) == 3

    # The feed saw d1's samples change, but nothing a review shows: one check, no pass.
    agent._changed("samples.d1", "x")
    agent.run_once()
    assert database.checks == ["d1"] and len(passes) == 3
    # A real change of d1 (a tag in the App): both of its runs are computed again, d2's is not.
    database.tokens["d1"] = ("samples.d1", 2, "t1", "none")
    agent._changed("samples.d1", "x")
    agent.run_once()
    assert sorted(passes[3:]) == ["u1", "u2"]
    # A finalize request recorded in d2's document: the datasets collection, by document id.
    database.tokens["d2"] = ("samples.d2", 2, "t0", "asked")
    agent._changed("datasets", "doc-d2")
    agent.run_once()
    assert passes[5:] == ["u3"]


def test_without_a_change_feed_each_dataset_is_checked_once_per_interval(
    agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, database, passes, _ = agent
    assert not agent.feed.healthy.is_set()  # a standalone server: no change stream
    clock = [100.0]
    monkeypatch.setattr("review.agent.time.monotonic", lambda: clock[0])
    agent.run_once()
    database.checks.clear()
    clock[0] += 2
    assert 0 < agent.run_once() <= 3  # it sleeps until the next check is due
    assert database.checks == []
    clock[0] += 4  # past the 5 s interval
    agent.run_once()
    assert sorted(database.checks) == ["d1", "d2"]  # one check per dataset, not per run
    assert len(passes) == 3  # nothing changed: nothing computed


def test_after_a_gap_in_the_feed_every_dataset_is_checked_again(agent: Any) -> None:
    agent, database, passes, _ = agent
    agent.feed.healthy.set()
    agent.run_once()
    database.checks.clear()
    agent._gap()  # the stream broke and opened again
    agent.run_once()
    assert sorted(database.checks) == ["d1", "d2"] and len(passes) == 3


def test_a_change_made_while_a_pass_runs_is_computed_next_round(
    agent: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reviewer tags labels while the agent computes (or the pass writes auto-approvals): the
    verdict written does not show it yet, so the next round computes again; then it rests."""
    agent, database, passes, _ = agent
    agent.feed.healthy.set()
    computed = agent._pass

    def pass_meanwhile_changed(state: _Run, rid: str, request: ReviewRequest, new_request: bool) -> Any:
        if _uid(request) == "u3" and passes.count("u3") == 0:
            database.tokens["d2"] = ("samples.d2", 2, "t-during", "none")
            agent._changed("samples.d2", "x")
        return computed(state, rid, request, new_request)

    monkeypatch.setattr(agent, "_pass", pass_meanwhile_changed)
    agent.run_once()
    assert passes.count("u3") == 1
    agent.run_once()
    assert passes.count("u3") == 2  # the change made during the first pass
    for _ in range(3):
        agent.run_once()
    assert passes.count("u3") == 2 and len(passes) == 4  # nothing changed since: no more passes
