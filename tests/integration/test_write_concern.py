"""Every write of a run's dataset work reaches the real mongod with the durable write concern.

pymongo's command monitor, registered in the process before FiftyOne connects,
records the ``writeConcern`` of every insert, update, delete and findAndModify
that process sends. Each step runs as the controller runs it (``python -m
inference ...``), the review agent's pass as its process runs it (the agent's
entry point, with its Kubernetes loop replaced by one pass over a request).
A write without ``w: majority, j: true`` could be taken back by a crash or a
failover after it was acknowledged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contract.review import APPROVED_TAG
from tests.integration.test_review_dataset import STAGING, environment, make_run_dataset
from tests.integration.worker_helpers import (
    REPO_ROOT,
    classifier_model,
    make_dataset,
    worker_config,
    worker_environment,
    write_images,
)

pytestmark = pytest.mark.integration

MONITORED = """
import json, sys
from pymongo import monitoring

seen = []


class Writes(monitoring.CommandListener):
    def started(self, event):
        if event.command_name in ("insert", "update", "delete", "findAndModify"):
            concern = event.command.get("writeConcern")
            target = str(event.command[event.command_name])
            seen.append([event.command_name, target, concern and dict(concern)])

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


monitoring.register(Writes())
out, argv = sys.argv[1], sys.argv[2:]
if argv[:1] == ["review-agent"]:
    import os

    import review.agent as agent
    from contract.review_agent import ReviewRequest
    from contract.worker import WorkerConfig

    def one_pass(name, unavailable=None):
        state = agent._Run(WorkerConfig.from_json(os.environ["AUTOLABEL_WORKER_CONFIG"]))
        review = json.loads(os.environ["AUTOLABEL_REVIEW_CONFIG"])
        request = ReviewRequest(agent=name, generation=1, review=review, snapshot="unused")
        agent.ReviewAgent("runs", name)._pass(state, "request-1", request, True)
        return 0

    agent.main = one_pass
from worker.__main__ import main

code = main(argv)
with open(out, "w") as file:
    json.dump(seen, file)
sys.exit(code)
"""
RULES = {"approve": [{"minConfidence": 0.5}], "reject": [{"maxConfidence": 0.2}]}


def monitored(env: dict[str, str], tmp_path: Path, *argv: str) -> list[tuple[str, str, Any]]:
    """Runs ``python -m worker <argv>`` under the monitor; the writes it sent."""
    out = tmp_path / f"writes-{argv[0]}.json"
    done = subprocess.run(
        [sys.executable, "-c", MONITORED, str(out), *argv],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [(command, target, concern) for command, target, concern in json.loads(out.read_text())]


def assert_durable(writes: list[tuple[str, str, Any]]) -> None:
    assert any(command == "update" and target.startswith("samples.") for command, target, _ in writes), writes
    weak = [(command, target, concern) for command, target, concern in writes if concern is None]
    weak += [
        (command, target, concern)
        for command, target, concern in writes
        if concern is not None and (concern.get("w") != "majority" or concern.get("j") is not True)
    ]
    assert not weak, f"{len(weak)} of {len(writes)} writes without w: majority, j: true, e.g. {weak[:3]}"


def tags(dataset: Any) -> list[str]:
    dataset.reload()
    return [tag for value in dataset.values(f"{STAGING}.detections.tags") for ts in value for tag in ts]


def test_the_review_agents_pass_writes_durably(mongo: Any, tmp_path: Path) -> None:
    """Rules applied in Review, review aids and the run record, by the agent's process."""
    dataset = make_run_dataset(6)
    writes = monitored(environment(dataset, RULES), tmp_path, "review-agent", "--agent", "test-agent")
    assert_durable(writes)
    assert tags(dataset).count(APPROVED_TAG) > 0  # the pass really applied the rules


@pytest.mark.parametrize(
    "argv",
    [
        ("probe", "--skip-triton"),
        ("apply-rules",),
        ("finalize", "--apply-rules"),
        ("discard", "--review-aids"),
    ],
    ids=["probe", "apply-rules", "finalize", "discard"],
)
def test_each_dataset_step_writes_durably(mongo: Any, tmp_path: Path, argv: tuple[str, ...]) -> None:
    dataset = make_run_dataset(6)
    if argv[0] == "discard":  # something of the run's own to remove besides its predictions
        subprocess.run(
            [sys.executable, "-m", "worker", "visualize"],
            env=environment(dataset),
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
    writes = monitored(environment(dataset, RULES), tmp_path, *argv)
    if argv[0] == "probe":  # the probe writes claims and declarations, no sample
        assert writes and all(concern for _, _, concern in writes), writes
        assert all(c.get("w") == "majority" and c.get("j") is True for _, _, c in writes), writes
        return
    assert_durable(writes)


def test_the_worker_writes_predictions_durably(mongo: Any, triton: Any, tmp_path: Path) -> None:
    dataset = make_dataset(write_images(tmp_path / "images", 4))
    config = worker_config(dataset.name, classifier_model(triton.grpc_url), "classification")
    path = tmp_path / "worker.json"
    path.write_text(json.dumps(config))
    writes = monitored(worker_environment(0), tmp_path, "run", "--config", str(path))
    assert_durable(writes)
    dataset.reload()
    assert dataset.count("auto_in_review") == 4


def test_a_run_asking_for_journaled_writes_gets_them(mongo: Any, triton: Any, tmp_path: Path) -> None:
    """``spec.dataset.writeConcern: journaled`` reaches the worker: w 1, still journaled."""
    dataset = make_dataset(write_images(tmp_path / "images", 4))
    config = worker_config(dataset.name, classifier_model(triton.grpc_url), "classification")
    config["database"] = {"writeConcern": "journaled"}
    path = tmp_path / "worker.json"
    path.write_text(json.dumps(config))
    writes = monitored(worker_environment(0), tmp_path, "run", "--config", str(path))
    samples = [concern for command, target, concern in writes if target.startswith("samples.")]
    assert samples and all(c is not None and c.get("w") == 1 and c.get("j") is True for c in samples), samples
    dataset.reload()
    assert dataset.count("auto_in_review") == 4
