"""The real mongod SIGKILLed and restarted under a shard and under finalize; many runs at once on one dataset.

The session's mongod (a single-node replica set unless AUTOLABEL_MONGO_REPLSET=0)
is killed with SIGKILL, as a crash, and started again on the same port and data;
the worker runs as a Job pod runs it. When a shard fails, running it again is
what the Job's retry does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_review_dataset import config as review_config
from tests.integration.test_review_dataset import environment, inference, prepared_pair, snapshot
from tests.integration.worker_helpers import (
    REPO_ROOT,
    Output,
    classifier_model,
    fresh_schema,
    make_dataset,
    run_command,
    run_worker,
    start_worker,
    wait_for_marked,
    worker_config,
    write_images,
)

pytestmark = pytest.mark.integration
IMAGES = 40  # five write batches of 8: a kill can land after the first, the middle or before the last


def _marked(dataset: Any, uid: str, marker: str = "auto_in_review_run") -> int:
    dataset.reload()
    if not dataset.has_sample_field(marker):
        return 0
    count: int = dataset.count_values(marker).get(uid, 0)
    return count


def _assert_exactly_one_prediction_each(dataset: Any, uid: str) -> None:
    dataset.reload()
    labels, markers = dataset.values(["auto_in_review", "auto_in_review_run"])
    assert len(labels) == IMAGES
    assert all(label is not None and label["autolabel_run"] == uid for label in labels)
    assert markers == [uid] * IMAGES


def met_a_dead_database(line: str) -> bool:
    """A database call failed and is being retried (runtime.durable), or the process ended on it."""
    return "retrying in" in line or line.startswith("fatal") or "DatabaseUnavailable" in line


@pytest.mark.parametrize("kill_at", [8, IMAGES // 2, IMAGES - 8], ids=["early", "middle", "last-batch"])
def test_mongod_killed_during_a_shard_loses_no_prediction(
    mongo: Any, triton: Any, tmp_path: Path, kill_at: int
):
    dataset = make_dataset(write_images(tmp_path / "images", IMAGES))
    config = worker_config(dataset.name, classifier_model(triton.grpc_url), "classification", maxInFlight=2)
    uid = config["run"]["uid"]
    process = start_worker(config, 0, tmp_path)
    try:
        done_at_kill = wait_for_marked(dataset, uid, kill_at, process)
        mongo.kill()  # down for as long as its restart takes, while the worker goes on writing
    finally:
        mongo.start()  # no-op unless it is down
    output, _ = process.communicate(timeout=300)
    assert done_at_kill < IMAGES, "the shard finished before the kill; the test needs more images"
    if process.returncode != 0:  # the Job retries a failed index
        code, retry = run_worker(config, 0, tmp_path)
        assert code == 0, output + retry
        output = retry
    assert f"state=Succeeded processed={IMAGES}/{IMAGES} failed=0" in output, output[-3000:]
    _assert_exactly_one_prediction_each(dataset, uid)


def test_predictions_lost_after_their_write_are_processed_again_before_the_shard_succeeds(
    mongo: Any, triton: Any, tmp_path: Path
):
    """As an acknowledged batch that a crash takes back: the end-of-shard check finds and redoes it."""
    dataset = make_dataset(write_images(tmp_path / "images", IMAGES))
    config = worker_config(dataset.name, classifier_model(triton.grpc_url), "classification", maxInFlight=2)
    uid = config["run"]["uid"]
    process = start_worker(config, 0, tmp_path)
    wait_for_marked(dataset, uid, 24, process)
    lost = dataset._sample_collection.update_many(
        {"auto_in_review_run": uid}, {"$unset": {"auto_in_review": "", "auto_in_review_run": ""}}
    ).modified_count
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert 24 <= lost < IMAGES, "the shard finished before the loss; the test needs more images"
    assert f"verification pass 1: {lost} samples hold no prediction of this run" in output, output[-3000:]
    assert f"state=Succeeded processed={IMAGES}/{IMAGES} failed=0" in output
    _assert_exactly_one_prediction_each(dataset, uid)


def test_database_down_longer_than_the_patience_fails_the_shard_and_a_retry_completes_it(
    mongo: Any, triton: Any, tmp_path: Path
):
    dataset = make_dataset(write_images(tmp_path / "images", IMAGES))
    config = worker_config(
        dataset.name,
        classifier_model(triton.grpc_url),
        "classification",
        maxInFlight=2,
        database={"patienceS": 6},
    )
    uid = config["run"]["uid"]
    process = start_worker(config, 0, tmp_path)
    try:
        wait_for_marked(dataset, uid, 8, process)
        mongo.kill()
        output, _ = process.communicate(timeout=120)
    finally:
        mongo.start()
    assert process.returncode == 1, output[-3000:]
    assert "state=Failed" in output and "DatabaseUnavailable" in output, output[-3000:]
    assert f"the FiftyOne database at 127.0.0.1:{mongo.port}" in output, output[-3000:]
    code, retry = run_worker(config, 0, tmp_path)
    assert code == 0, retry
    assert f"state=Succeeded processed={IMAGES}/{IMAGES} failed=0" in retry
    _assert_exactly_one_prediction_each(dataset, uid)


def app_fields(app_server: Any, dataset_name: str) -> set[str]:
    """The dataset's sample fields as the FiftyOne App server serves them to the browser (GraphQL)."""
    query = {
        "query": "query($name: String!) { dataset(name: $name) { sampleFields { path } } }",
        "variables": {"name": dataset_name},
    }
    request = urllib.request.Request(
        f"{app_server.url}/graphql",
        data=json.dumps(query).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.loads(response.read())
    return {field["path"] for field in body["data"]["dataset"]["sampleFields"]}


def test_several_runs_with_several_shards_at_once_declare_every_field(
    mongo: Any, triton: Any, app_server: Any, tmp_path: Path
):
    dataset = make_dataset(write_images(tmp_path / "images", 12))
    dataset.persistent = True  # the App server, another process, opens it
    configs = [
        worker_config(
            dataset.name, classifier_model(triton.grpc_url), "classification", shards=2, label_field=f"run{i}"
        )
        for i in range(3)
    ]
    for config in configs[:2]:  # as the controller does; the third run's workers declare by themselves
        assert run_command(config, "probe")["ok"] is True
    workers = [start_worker(config, shard, tmp_path) for config in configs for shard in range(2)]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), "\n".join(o[-1500:] for o in outputs)
    schema = fresh_schema(dataset.name)
    for i, config in enumerate(configs):
        assert schema.get(f"run{i}_in_review") == "EmbeddedDocumentField", sorted(schema)
        assert schema.get(f"run{i}_in_review_run") == "StringField", sorted(schema)
        assert _marked(dataset, config["run"]["uid"], f"run{i}_in_review_run") == 12
    shown = app_fields(app_server, dataset.name)
    for i in range(3):
        assert {f"run{i}_in_review", f"run{i}_in_review_run"} <= shown, sorted(shown)
    dataset.delete()


def test_mongod_killed_during_finalize_then_rerun_equals_an_uninterrupted_finalize(mongo: Any) -> None:
    uninterrupted, interrupted = prepared_pair()
    assert inference(uninterrupted, "finalize", "--batch-size", "2") == {"promoted": 3, "discarded": 9}
    expected = snapshot(uninterrupted)
    # A short patience: the first call that meets no database says so within 2 s (server selection
    # waits a third of it), and the retries after the restart may still succeed.
    impatient = {**review_config(interrupted), "database": {"patienceS": 6}}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.paused_finalize", "2", "--batch-size", "2"],
        env=environment(interrupted, AUTOLABEL_WORKER_CONFIG=json.dumps(impatient)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    finalize = Output(process, process.stderr)
    try:
        finalize.wait_for("finalize's second batch", lambda line: "promoted batch 2" in line, 180)
        mongo.kill()  # while finalize pauses after its second batch: the next batch meets no database
        met = finalize.wait_for("finalize's next batch to meet no database", met_a_dead_database, 60)
        assert met, "finalize ended without meeting the dead database:\n" + "".join(finalize.lines[-20:])
    finally:
        mongo.start()
    finalize.text(timeout_s=300)  # ended by the outage or not: the rerun below must complete it either way
    assert inference(interrupted, "finalize", "--batch-size", "2") == {"promoted": 3, "discarded": 9}
    assert snapshot(interrupted) == expected


def test_write_concerns_are_accepted_by_standalone_and_replica_set(mongo: Any, standalone_mongo: Any) -> None:
    import pymongo

    from contract.worker import DatabaseWrites
    from runtime.durable import write_concern

    for server, replica_set in (
        (mongo, os.environ.get("AUTOLABEL_MONGO_REPLSET", "1") != "0"),
        (standalone_mongo, False),
    ):
        client: Any = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
        try:
            assert bool(client.admin.command("hello").get("setName")) is replica_set
            for mode in ("majority", "journaled"):
                concern = write_concern(DatabaseWrites.model_validate({"writeConcern": mode}))
                collection = client["autolabel-wc"]["probe"].with_options(write_concern=concern)
                assert collection.insert_one({"mode": mode}).acknowledged
        finally:
            client.close()
