"""Rules never overwrite a person's decision: a reviewer tags labels while `apply-rules` tags 36,000.

A second process tags labels the way the FiftyOne App does (`tag_labels`), chunk after
chunk, for as long as the rules are being applied; afterwards every tag it set is still
there, and every label carries the decision tag the rules gave it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from contract.review import APPROVED_TAG, REJECTED_TAG
from tests.integration.test_review_dataset import MARKER, STAGING, UID, environment
from tests.integration.worker_helpers import REPO_ROOT
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
SAMPLES, PER_SAMPLE = 12000, 3  # 36,000 labels
HAND_TAG = "false_positive"

# The reviewer: tags labels in random order, chunk by chunk, until told to stop; logs what it tagged.
REVIEWER = """
import json, random, sys, pathlib
import fiftyone as fo
dataset = fo.load_dataset(sys.argv[1])
stop, log = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
ids = [i for ids in dataset.values("{path}.id") for i in ids]
random.Random(7).shuffle(ids)
done = []
for start in range(0, len(ids), 40):
    chunk = ids[start:start + 40]
    tag = "{hand}" if start % 80 == 0 else "{rejected}"
    dataset.select_labels(ids=chunk, fields="{staging}").tag_labels(tag, label_fields="{staging}")
    done.extend((label_id, tag) for label_id in chunk)
    log.write_text(json.dumps(done))
    if stop.exists():
        break
""".format(
    path=f"{STAGING}.detections",
    hand=HAND_TAG,
    rejected=REJECTED_TAG,
    staging=STAGING,
)


def make_large_run_dataset() -> Any:
    import fiftyone as fo

    dataset = fo.Dataset(f"review-race-{uuid.uuid4().hex[:8]}")
    samples = []
    for i in range(SAMPLES):
        detections = [
            fo.Detection(
                label="cat" if k % 2 else "dog",
                confidence=((i * PER_SAMPLE + k) % 100) / 100,
                bounding_box=[0.1, 0.1, 0.2, 0.2],
                autolabel_run=UID,
            )
            for k in range(PER_SAMPLE)
        ]
        samples.append(
            fo.Sample(
                filepath=f"/data/race-{i:05d}.jpg",
                **{STAGING: fo.Detections(detections=detections), MARKER: UID},
            )
        )
    dataset.add_samples(samples, progress=False)
    return dataset


def test_hand_set_tags_survive_rules_applied_meanwhile(mongo: Any, tmp_path: Path) -> None:
    dataset = make_large_run_dataset()
    stop, log = tmp_path / "stop", tmp_path / "tagged.json"
    reviewer = subprocess.Popen(
        [sys.executable, "-c", REVIEWER, dataset.name, str(stop), str(log)],
        env=environment(dataset),
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def tagging() -> bool:
            assert reviewer.poll() is None, reviewer.stderr.read() if reviewer.stderr else ""
            return log.exists()

        wait_until("the reviewer's first tags", tagging, 120)  # at work before the rules start
        before = len(json.loads(log.read_text()))
        review = {"approve": [{"minConfidence": 0.5}], "reject": [{"maxConfidence": 0.2}]}
        rules = subprocess.run(
            [sys.executable, "-m", "worker", "apply-rules"],
            env=environment(dataset, review),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert rules.returncode == 0, rules.stderr[-2000:]
        verdict = json.loads(rules.stdout.strip().splitlines()[-1])
    finally:
        stop.touch()
        reviewer.wait(timeout=120)
    tagged = json.loads(log.read_text())
    assert len(tagged) > before, "the reviewer must have tagged while the rules were applied"

    total = SAMPLES * PER_SAMPLE
    # A label the reviewer had rejected before the rules reached it stays the reviewer's: not changed.
    assert verdict["approved"] + verdict["rejected"] >= verdict["changed"] > total // 2
    dataset.reload()
    ids, confidences, tags = dataset.values(
        [f"{STAGING}.detections.id", f"{STAGING}.detections.confidence", f"{STAGING}.detections.tags"]
    )
    by_id = {
        label_id: (confidence, set(label_tags))
        for sample_ids, sample_confidences, sample_tags in zip(ids, confidences, tags, strict=True)
        for label_id, confidence, label_tags in zip(sample_ids, sample_confidences, sample_tags, strict=True)
    }
    assert len(by_id) == total
    lost = [(label_id, tag) for label_id, tag in tagged if tag not in by_id[label_id][1]]
    assert not lost, f"{len(lost)} of {len(tagged)} hand-set tags were overwritten, e.g. {lost[:3]}"
    for confidence, label_tags in by_id.values():
        if confidence >= 0.5:
            assert APPROVED_TAG in label_tags
        elif confidence < 0.2:
            assert REJECTED_TAG in label_tags
