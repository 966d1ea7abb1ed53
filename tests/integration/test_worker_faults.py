"""The worker under faults: SIGKILL mid-shard and rerun, unreadable images, Triton restarted mid-run.

The worker runs as a Job pod runs it (``python -m worker run --config FILE``
with ``JOB_COMPLETION_INDEX``), against the session's real Triton and mongod.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from inference.partition import shard_ids
from tests.integration.worker_helpers import (
    classifier_model,
    make_dataset,
    run_worker,
    start_worker,
    wait_for_marked,
    worker_config,
    write_images,
)

pytestmark = pytest.mark.integration


def _marked(dataset: Any, uid: str) -> int:
    dataset.reload()  # the worker, another process, adds the fields
    if not dataset.has_sample_field("auto_in_review_run"):
        return 0
    count: int = dataset.count_values("auto_in_review_run").get(uid, 0)
    return count


def _assert_exactly_one_prediction_each(dataset: Any, ids: list[str], uid: str) -> None:
    dataset.reload()
    view = dataset.select(ids)
    labels = view.values("auto_in_review")
    assert len(labels) == len(ids)
    assert all(label is not None and label["autolabel_run"] == uid for label in labels)
    assert view.values("auto_in_review_run") == [uid] * len(ids)


def test_sigkill_mid_shard_then_rerun(mongo, triton, tmp_path):
    # About 32 samples a shard: the kill lands right after the write that reaches 8 (a change stream
    # reports it), with more than a write batch still to do.
    dataset = make_dataset(write_images(tmp_path / "images", 64))
    config = worker_config(
        dataset.name, classifier_model(triton.grpc_url), "classification", shards=2, maxInFlight=2
    )
    uid = config["run"]["uid"]
    mine = list(shard_ids(dataset.values("id"), 1, 2))
    process = start_worker(config, 1, tmp_path)
    done_at_kill = wait_for_marked(dataset, uid, 8, process, 120)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert 8 <= done_at_kill < len(mine), "the shard finished before the kill; the test needs more images"

    code, output = run_worker(config, 1, tmp_path)
    assert code == 0, output
    assert f"{len(mine)} samples, " in output and "already done" in output
    _assert_exactly_one_prediction_each(dataset, mine, uid)
    others = sorted(set(dataset.values("id")) - set(mine))
    assert set(dataset.select(others).values("auto_in_review_run")) == {None}  # shard 0 untouched


def test_unreadable_images_are_counted_and_the_run_goes_on(mongo, triton, tmp_path):
    good = write_images(tmp_path / "images", 6)
    corrupt = tmp_path / "images" / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    missing = tmp_path / "images" / "missing.jpg"
    dataset = make_dataset([*good, corrupt, missing])
    config = worker_config(dataset.name, classifier_model(triton.grpc_url), "classification")
    code, output = run_worker(config, 0, tmp_path)
    dataset.reload()
    assert code == 0, output
    assert "state=Succeeded processed=6/8 failed=2" in output
    assert "file not found" in output and ("not an image" in output or "decode error" in output)
    by_path = dict(zip(dataset.values("filepath"), dataset.values("auto_in_review_run"), strict=True))
    assert by_path[str(corrupt)] is None and by_path[str(missing)] is None
    assert all(by_path[str(path)] == config["run"]["uid"] for path in good)


def test_triton_restarted_mid_run(mongo, triton, tmp_path):
    if not hasattr(triton, "process"):
        pytest.skip("Triton is not managed by the tests")
    dataset = make_dataset(write_images(tmp_path / "images", 80))
    config = worker_config(dataset.name, classifier_model(triton.grpc_url), "classification", maxInFlight=2)
    uid = config["run"]["uid"]
    process = start_worker(config, 0, tmp_path)
    done_at_restart = wait_for_marked(dataset, uid, 8, process, 120)
    restart = threading.Thread(target=triton.restart)
    restart.start()
    output, _ = process.communicate(timeout=300)
    restart.join(timeout=120)
    assert done_at_restart < 80, "the run finished before the restart; the test needs more images"
    assert process.returncode == 0, output
    assert "state=Succeeded processed=80/80 failed=0" in output
    assert _marked(dataset, uid) == 80
