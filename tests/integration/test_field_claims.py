"""What a run owns, on the real mongod: fields, review aids and mask files, claimed and touched by it alone.

Predictions are written with the worker's own `PredictionWriter` (in this
process), so these tests need no Triton; probe, finalize, visualize and discard
run as the commands the controller runs (``python -m worker ...``).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract.review import APPROVED_TAG
from contract.worker import WorkerConfig
from inference.adapters import ClassificationPrediction, SegmentationPrediction
from inference.writer import PredictionWriter, SampleResult
from tests.integration.worker_helpers import (
    fresh_schema,
    make_dataset,
    run_command,
    start_command,
    worker_config,
)

pytestmark = pytest.mark.integration
MODEL = {"url": "127.0.0.1:1", "name": "m", "outputFormat": "logits"}
SEG_MODEL = {"url": "127.0.0.1:1", "name": "m", "outputFormat": "class_ids"}


def run_config(
    dataset: Any, name: str, label_field: str, namespace: str = "runs", **extra: Any
) -> dict[str, Any]:
    run = {"namespace": namespace, "name": name, "uid": f"uid-{uuid.uuid4().hex[:12]}"}
    return worker_config(
        dataset.name,
        extra.pop("model", MODEL),
        extra.pop("task", "classification"),
        label_field=label_field,
        run=run,
        **extra,
    )


def probe(config: dict[str, Any]) -> dict[str, Any]:
    return run_command(config, "probe", "--skip-triton")


def new_dataset(tmp_path: Path, samples: int = 4) -> Any:
    return make_dataset(
        [tmp_path / f"img-{i}.jpg" for i in range(samples)], name=f"claims-{uuid.uuid4().hex[:8]}"
    )


def write_predictions(
    dataset: Any, config: dict[str, Any], sample_ids: list[str], embeddings: bool = False
) -> None:
    """What a worker writes for `sample_ids`, with the worker's writer."""
    worker = WorkerConfig.model_validate(config)
    field = worker.embeddings.field if embeddings and worker.embeddings else None
    writer = PredictionWriter(dataset, worker, field)
    writer.write(
        [
            SampleResult(sample_id, ClassificationPrediction("cat", 0.9), np.ones(4, dtype=np.float32))
            for sample_id in sample_ids
        ]
    )
    dataset.reload()


def test_a_second_run_naming_a_claimed_field_is_refused(mongo: Any, tmp_path: Path) -> None:
    dataset = new_dataset(tmp_path)
    first = run_config(
        dataset, "run-a", "auto", model={**MODEL, "embeddings": {"tensor": "E", "field": "emb"}}
    )
    assert probe(first)["ok"] is True
    assert probe(first)["ok"] is True  # validation re-run for the same run: no change, no conflict
    schema = fresh_schema(dataset.name)
    assert (
        schema["auto_in_review"] == "EmbeddedDocumentField" and schema["auto_in_review_run"] == "StringField"
    )
    assert schema["emb"] == "VectorField" and "auto" not in schema  # labelField is declared at finalize

    same_label = probe(run_config(dataset, "run-b", "auto"))
    assert (same_label["ok"], same_label["reason"]) == (False, "LabelFieldExists")
    assert "'auto'" in same_label["message"] and "runs/run-a" in same_label["message"]
    same_staging = probe(run_config(dataset, "run-c", "other", stagingField="auto_in_review"))
    assert same_staging["reason"] == "LabelFieldExists" and "'auto_in_review'" in same_staging["message"]
    same_embeddings = probe(
        run_config(dataset, "run-d", "third", model={**MODEL, "embeddings": {"tensor": "E", "field": "emb"}})
    )
    assert same_embeddings["reason"] == "LabelFieldExists" and "'emb'" in same_embeddings["message"]
    # The refused runs hold nothing: their other fields are free for the next run.
    assert probe(run_config(dataset, "run-e", "other"))["ok"] is True
    assert probe(run_config(dataset, "run-f", "third"))["ok"] is True

    import fiftyone as fo

    dataset.add_sample_field("mine", fo.StringField)
    existing = probe(run_config(dataset, "run-g", "mine"))
    assert existing["reason"] == "LabelFieldExists" and "already exists" in existing["message"]


def test_probes_started_at_the_same_moment_all_declare_their_fields(mongo: Any, tmp_path: Path) -> None:
    dataset = new_dataset(tmp_path)
    configs = [run_config(dataset, f"run-{i}", f"field{i}") for i in range(6)]
    processes = [start_command(config, "probe", "--skip-triton") for config in configs]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    assert all('"ok": true' in out for out, _ in outputs), outputs
    schema = fresh_schema(dataset.name)
    for i in range(6):
        assert schema.get(f"field{i}_in_review") == "EmbeddedDocumentField", sorted(schema)
        assert schema.get(f"field{i}_in_review_run") == "StringField", sorted(schema)


def test_runs_started_at_the_same_moment_naming_one_field_get_it_once(mongo: Any, tmp_path: Path) -> None:
    """The claim is the atomic step: of runs validated at once with one labelField, exactly one wins."""
    dataset = new_dataset(tmp_path)
    configs = [run_config(dataset, f"race-{i}", "shared") for i in range(4)]
    processes = [start_command(config, "probe", "--skip-triton") for config in configs]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    verdicts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    winners = [config["run"]["name"] for config, v in zip(configs, verdicts, strict=True) if v["ok"]]
    assert len(winners) == 1, verdicts
    for verdict in verdicts:
        if not verdict["ok"]:
            assert verdict["reason"] == "LabelFieldExists" and f"runs/{winners[0]}" in verdict["message"]
    schema = fresh_schema(dataset.name)
    assert schema["shared_in_review"] == "EmbeddedDocumentField" and "shared" not in schema


def test_finalize_refuses_a_label_field_it_did_not_create(mongo: Any, tmp_path: Path) -> None:
    import fiftyone as fo

    dataset = new_dataset(tmp_path)
    config = run_config(dataset, "run-a", "auto")
    assert probe(config)["ok"] is True
    ids = dataset.values("id")
    write_predictions(dataset, config, ids)
    dataset.select_labels(fields="auto_in_review").tag_labels(APPROVED_TAG, label_fields="auto_in_review")
    # Someone creates labelField by hand after validation, before finalize.
    dataset.set_values("auto", {ids[0]: fo.Classification(label="mine")}, key_field="id")
    process = start_command(config, "finalize")
    _, stderr = process.communicate(timeout=180)
    assert process.returncode != 0 and "'auto'" in stderr and "created" in stderr, stderr[-2000:]
    dataset.reload()
    assert dataset.values("auto.label") == ["mine", None, None, None]
    assert dataset.count("auto_in_review") == 4  # nothing of the run was removed either


def test_discard_removes_only_what_the_run_created(mongo: Any, tmp_path: Path) -> None:
    dataset = new_dataset(tmp_path)
    ids = dataset.values("id")
    before = {sample_id: np.full(4, 7.0, dtype=np.float32) for sample_id in ids}
    dataset.set_values("clip_embeddings", before, key_field="id")  # the user's, from before any run
    # A run would overwrite the user's vectors in an existing field: refused, nothing claimed.
    into_users = run_config(
        dataset, "run-x", "clip", model={**MODEL, "embeddings": {"tensor": "E", "field": "clip_embeddings"}}
    )
    refused = probe(into_users)
    assert (refused["ok"], refused["reason"]) == (False, "LabelFieldExists")
    assert "'clip_embeddings' already exists" in refused["message"] and "embeddings" in refused["message"]
    embeddings = {"tensor": "E", "field": "clip_run_embeddings"}
    config = run_config(dataset, "run-a", "clip", model={**MODEL, "embeddings": embeddings})
    assert probe(config)["ok"] is True
    write_predictions(dataset, config, ids[:2], embeddings=True)
    other = run_config(
        dataset, "run-b", "other", model={**MODEL, "embeddings": {"tensor": "E", "field": "new_emb"}}
    )
    assert probe(other)["ok"] is True
    write_predictions(dataset, other, ids[2:], embeddings=True)

    assert run_command(config, "discard") == {"removed": 2}
    assert run_command(config, "discard") == {"removed": 0}  # twice: same dataset
    schema = fresh_schema(dataset.name)
    assert "clip_in_review" not in schema and "clip_in_review_run" not in schema
    assert "clip_run_embeddings" not in schema and "clip_embeddings" in schema  # the run's field went
    dataset.reload()
    vectors = dict(zip(dataset.values("id"), dataset.values("clip_embeddings"), strict=True))
    assert all(np.allclose(vectors[sample_id], 7.0) for sample_id in ids)  # every user's vector as it was
    assert dataset.count("other_in_review") == 2 and dataset.count("new_emb") == 2  # the other run's

    assert run_command(other, "discard") == {"removed": 2}
    schema = fresh_schema(dataset.name)
    assert "new_emb" not in schema and "other_in_review" not in schema  # created by that run: gone
    assert "clip_embeddings" in schema


def test_review_aids_of_two_runs_with_one_name(mongo: Any, tmp_path: Path) -> None:
    dataset = new_dataset(tmp_path)
    ids = dataset.values("id")
    first = run_config(dataset, "faces", "faces_a", namespace="team-a")
    second = run_config(dataset, "faces", "faces_b", namespace="team-b")
    for config, half in ((first, ids[:2]), (second, ids[2:])):
        assert probe(config)["ok"] is True
        write_predictions(dataset, config, half)
    aids_a = run_command(first, "visualize")
    aids_b = run_command(second, "visualize")
    assert aids_a["error"] is None and aids_b["error"] is None
    assert len(aids_a["savedViews"]) == 3 and set(aids_a["savedViews"]).isdisjoint(aids_b["savedViews"])
    assert first["run"]["uid"].replace("-", "")[:8] in aids_a["savedViews"][0]
    dataset.reload()
    assert dataset.load_saved_view(aids_b["savedViews"][0]).count() == 2

    # A view the run did not create, under a name the run would use, is neither overwritten nor deleted.
    third = run_config(dataset, "faces", "faces_c", namespace="team-c")
    assert probe(third)["ok"] is True
    write_predictions(dataset, third, ids[:1])
    uid8 = third["run"]["uid"].replace("-", "")[:8]
    users = f"autolabel-faces-{uid8}-predictions"
    dataset.save_view(users, dataset.limit(3))
    aids_c = run_command(third, "visualize")
    assert users not in aids_c["savedViews"] and users in (aids_c["error"] or "")

    run_command(first, "discard", "--review-aids")
    run_command(third, "discard", "--review-aids")
    dataset.reload()
    assert set(aids_b["savedViews"]) <= set(dataset.list_saved_views())
    assert not set(aids_a["savedViews"]) & set(dataset.list_saved_views())
    assert dataset.load_saved_view(users).count() == 3


def test_mask_files_of_removed_labels_are_deleted(mongo: Any, tmp_path: Path) -> None:
    dataset = new_dataset(tmp_path, samples=3)
    ids = dataset.values("id")
    masks = tmp_path / "masks"
    config = run_config(dataset, "seg", "seg", model=SEG_MODEL, task="segmentation", maskDir=str(masks))
    assert probe(config)["ok"] is True
    worker = WorkerConfig.model_validate(config)
    mask = np.zeros((4, 4), dtype=np.uint8)
    PredictionWriter(dataset, worker).write(
        [SampleResult(sample_id, SegmentationPrediction(mask, 0.8, ("bg",))) for sample_id in ids]
    )
    run_dir = masks / worker.run.uid
    (run_dir / "left-by-a-killed-worker.png.partial").write_bytes(b"partial")
    dataset.reload()
    assert len(list(run_dir.iterdir())) == 4
    dataset.select(ids[0]).tag_labels(APPROVED_TAG, label_fields="seg_in_review")
    assert run_command(config, "finalize") == {"promoted": 1, "discarded": 2}
    dataset.reload()
    kept = dataset.values("seg.mask_path")
    assert kept[0] is not None and Path(kept[0]).exists()
    assert sorted(path.name for path in run_dir.iterdir()) == [f"{ids[0]}.png"]
    assert run_command(config, "finalize") == {"promoted": 1, "discarded": 2}  # rerun: nothing else goes
    assert Path(kept[0]).exists()

    other = run_config(dataset, "seg2", "seg2", model=SEG_MODEL, task="segmentation", maskDir=str(masks))
    assert probe(other)["ok"] is True
    PredictionWriter(dataset, WorkerConfig.model_validate(other)).write(
        [SampleResult(sample_id, SegmentationPrediction(mask, 0.8, ("bg",))) for sample_id in ids]
    )
    assert run_command(other, "discard") == {"removed": 3}
    assert not (masks / other["run"]["uid"]).exists() and Path(kept[0]).exists()
