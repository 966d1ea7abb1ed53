"""The controller benchmark's workload: its runs, their datasets, and the predictions workers would write.

Every run is a classification run in the `bench` namespace over its own dataset of
`SAMPLES` samples (files that never exist: no pod opens them). The benchmark plays
the workers' part by writing two predictions per run into the run's staging field,
marked with the run's uid, so the review agent has something to count.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "bench"
SAMPLES = 2
LABEL_FIELD = "bench_labels"


def run_manifest(name: str, dataset: str) -> dict[str, Any]:
    return {
        "apiVersion": "autolabel.dev/v1alpha1",
        "kind": "AutoLabelRun",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "task": "classification",
            "dataset": {
                "name": dataset,
                "target": {"all": True},
                "databaseSecretRef": {"name": "fiftyone-db"},
            },
            "model": {
                "endpoint": {"address": "127.0.0.1:1"},  # never called: the benchmark answers validation
                "name": "efficientnet_lite0",
                "outputFormat": "logits",
                "tensors": {"output": "LOGITS"},
            },
            "labelField": LABEL_FIELD,
            "execution": {"parallelism": 1},
        },
    }


def create_datasets(names: list[str]) -> None:
    import fiftyone as fo

    for name in names:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)
        dataset = fo.Dataset(name, persistent=True)
        dataset.add_samples(
            [fo.Sample(filepath=f"/bench/{name}/{i}.jpg") for i in range(SAMPLES)], progress=False
        )


def write_predictions(runs: dict[str, str], review_fields: dict[str, str]) -> None:
    """The workers' part: two classifications per run in its staging field, marked with the run's uid."""
    import fiftyone as fo

    from contract.worker import MARKER_FIELD_SUFFIX

    for uid, dataset_name in runs.items():
        dataset = fo.load_dataset(dataset_name)
        staging = review_fields[uid]
        dataset.set_values(
            staging, [fo.Classification(label="cat", confidence=0.5 + i / 10) for i in range(len(dataset))]
        )
        dataset.set_values(f"{staging}{MARKER_FIELD_SUFFIX}", [uid] * len(dataset))
