"""The demo's runs are valid AutoLabelRuns, and its progress lines and summary read a run's status right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.api import AutoLabelRun
from tools.cluster.chart import chart_values
from tools.demo.realnode import MEDIA_BUCKET, in_pod_cgroup, media_spec
from tools.demo.runs import DEMO_RUNS, DemoRun, manifest, progress_line, summary, with_rules


@pytest.mark.parametrize("demo_run", DEMO_RUNS, ids=lambda r: r.name)
def test_demo_manifests_validate_against_the_api(demo_run: DemoRun) -> None:
    first = manifest(demo_run, "labeling", "autolabel-demo", "127.0.0.1:8001")
    ruled = with_rules(first, demo_run)
    for document in (first, ruled):
        run = AutoLabelRun.model_validate(document)
        assert run.spec.label_field == demo_run.label_field
    assert first["spec"]["review"].get("approve") is None  # rules arrive only in Review
    assert ruled["spec"]["review"]["approve"] == demo_run.approve


def finalized_run() -> dict[str, Any]:
    return {
        "metadata": {"name": "imagenet", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 2},
        "spec": {"task": "classification", "labelField": "imagenet", "model": {"name": "efficientnet_lite0"}},
        "status": {
            "phase": "Finalized",
            "progress": {
                "processed": 12,
                "failed": 0,
                "total": 12,
                "summary": "12/12",
                "imagesPerSecond": 3.0,
            },
            "startTime": "2026-01-01T00:00:05Z",
            "completionTime": "2026-01-01T00:00:25Z",
            "conditions": [
                {"type": "Finalized", "status": "True", "lastTransitionTime": "2026-01-01T00:00:40Z"}
            ],
            "finalized": {"promoted": 9, "discarded": 3},
            "review": {"total": 12, "approved": 9, "rejected": 2, "unreviewed": 1},
        },
    }


def test_progress_line_and_summary() -> None:
    run = finalized_run()
    line = progress_line(run)
    assert line.split() == ["imagenet", "classification", "Finalized", "12/12", "3.0", "9/12"]
    before_finalize = {"imagenet": {"total": 12, "approved": 9, "rejected": 2, "unreviewed": 1, "classes": [
        {"name": "Egyptian cat", "count": 4}, {"name": "espresso", "count": 8}]}}  # fmt: skip
    text = "\n".join(summary([run], before_finalize))
    assert "labels      12: espresso=8, Egyptian cat=4" in text
    assert "approved 9, rejected 2, unreviewed 1" in text
    assert "kept 9 in 'imagenet', discarded 3" in text
    assert "inference 20s, created to Finalized 40s, 3.00 images/s" in text


def test_summary_says_when_finalize_is_pending() -> None:
    run = finalized_run()
    run["status"].update(phase="Review", conditions=[], finalized=None)
    assert "finalized   pending" in "\n".join(summary([run], {}))


def test_real_node_manifests_read_the_photos_from_the_bucket_and_validate() -> None:
    media = media_spec(Path("/work/.demo/images"), "http://10.123.0.1:9000", "demo-media-keys")
    for demo_run in DEMO_RUNS:
        document = manifest(demo_run, "labeling", "autolabel-demo", "10.123.0.1:8001", media)
        run = AutoLabelRun.model_validate(document)
        assert run.spec.dataset.media is not None
        assert document["spec"]["dataset"]["media"]["pathRewrites"] == [
            {"datasetPrefix": "/work/.demo/images/", "mountPrefix": f"s3://{MEDIA_BUCKET}/images/"}
        ]
        assert "maskDir" not in document["spec"]  # masks inline: nothing written outside mongod
    assert (
        "media"
        not in manifest(DEMO_RUNS[0], "labeling", "autolabel-demo", "127.0.0.1:8001")["spec"]["dataset"]
    )


def test_real_node_chart_values_use_the_local_image_on_the_real_node() -> None:
    values = chart_values("localhost/autolabel/autolabel-operator:abc123", "labeling")
    assert values["image"] == {
        "repository": "localhost/autolabel/autolabel-operator",
        "tag": "abc123",
        "pullPolicy": "Never",
    }
    assert values["workerImage"] == {"repository": "localhost/autolabel/autolabel-operator", "tag": "abc123"}
    assert values["nodeSelector"] == {"autolabel.dev/node": "real"}
    assert values["worker"] == {"namespaces": ["labeling"]}


POD = "0b6f3c1e-2a4d-4b8e-9f00-1234567890ab"


@pytest.mark.parametrize(
    ("cgroup", "inside"),
    [
        (
            f"12:pids:/kubepods/besteffort/pod{POD}/4f1e2d\n1:name=systemd:/kubepods/besteffort/pod{POD}/4f1e2d\n",
            True,
        ),
        (f"0::/kubepods/burstable/pod{POD}/abc\n", True),
        (f"0::/kubepods/pod{POD}\n", True),
        (
            "0::/kubepods.slice/kubepods-besteffort.slice/"
            f"kubepods-besteffort-pod{POD.replace('-', '_')}.slice/x\n",
            True,
        ),
        ("12:pids:/kubepods/besteffort/pod0b6f3c1e-2a4d-4b8e-9f00-000000000000/4f1e2d\n", False),
        (f"0::/user.slice/pod{POD}x/\n", False),
        ("9:memory:/\n", False),
    ],
)
def test_a_process_is_in_a_pods_cgroup_only_under_that_pods_own(cgroup: str, inside: bool) -> None:
    assert in_pod_cgroup(cgroup, {POD, "11111111-2222-3333-4444-555555555555"}) is inside
