"""Review aids in FiftyOne for one run: an embeddings visualization and saved views, and their removal.

- brain key ``autolabel_<run name>_<uid8>`` (non-identifier characters become
  ``_``; ``uid8``: the first 8 letters and digits of the run's uid):
  fiftyone-brain ``compute_visualization`` over the run's samples and their stored
  embeddings (``<labelField>_embeddings`` or ``spec.model.embeddings.field``);
  skipped when the run stored no embeddings;
- saved views ``autolabel-<run>-<uid8>-predictions`` (the run's samples; detection:
  its label patches), ``...-low-confidence`` (labels with confidence below 0.5) and
  ``...-problems`` (labels carrying a problem tag).

Each name is claimed for the run (`runtime.claims`, like its fields) before
the aid is written: an aid of the same name that the run did not create (another
run's, a user's) is never overwritten nor deleted; it is left out and said in
``error``. Creating them twice changes nothing (the run's own are overwritten with
the same definition). Finalize and discard remove the run's own, since they
point at the staging field that goes away. The names go to ``status.review``.
"""

from __future__ import annotations

import re
from typing import Any

from contract.review import ReviewConfig
from contract.worker import WorkerConfig
from review.labels import label_list_field, run_view
from runtime.claims import claim_aid, created_by_run, release

LOW_CONFIDENCE = 0.5
VIEW_SUFFIXES = ("predictions", "low-confidence", "problems")


def short_uid(config: WorkerConfig) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", config.run.uid)[:8].lower()


def brain_key(config: WorkerConfig) -> str:
    return "autolabel_" + re.sub(r"[^A-Za-z0-9_]", "_", f"{config.run.name}_{short_uid(config)}")


def view_names(config: WorkerConfig) -> list[str]:
    return [f"autolabel-{config.run.name}-{short_uid(config)}-{suffix}" for suffix in VIEW_SUFFIXES]


def verification_view_name(config: WorkerConfig) -> str:
    """The saved view of the run's verification sample (the run's uid keeps runs apart)."""
    return f"autolabel-{config.run.name[:40]}-{config.run.uid[:8]}-verification".lower().replace(".", "-")


def embeddings_field(config: WorkerConfig) -> str:
    return config.embeddings.field if config.embeddings else f"{config.label_field}_embeddings"


def _views(dataset: Any, config: WorkerConfig, review: ReviewConfig) -> list[Any]:
    from fiftyone import ViewField

    run = run_view(dataset, config)
    staging = config.staging
    patches = label_list_field(dataset, staging) == "detections"
    predictions = run.to_patches(staging) if patches else run
    low = run.filter_labels(staging, ViewField("confidence") < LOW_CONFIDENCE)
    problem_tags = list(review.problem_tags)
    problems = (
        run.filter_labels(staging, ViewField("tags").contains(problem_tags, all=False))
        if problem_tags
        else run.limit(0)
    )
    if patches:
        low, problems = low.to_patches(staging), problems.to_patches(staging)
    return [predictions, low, problems]


def create_aids(dataset: Any, config: WorkerConfig, review: ReviewConfig) -> dict[str, Any]:
    """Saved views, then the visualization; ``{"brainKey", "savedViews", "error"}``."""
    names, refused = [], []
    if dataset.has_sample_field(config.staging):
        for name, view in zip(view_names(config), _views(dataset, config, review), strict=True):
            if not claim_aid(dataset, config, f"view:{name}", dataset.has_saved_view(name)):
                refused.append(name)
                continue
            description = f"autolabel run {config.run.namespace}/{config.run.name} ({config.run.uid})"
            dataset.save_view(name, view, description=description, overwrite=True)
            names.append(name)
    result: dict[str, Any] = {"brainKey": None, "savedViews": names, "error": None}
    if refused:
        result["error"] = f"saved views {refused} exist and were not created by this run; left as they are"
    key, field = brain_key(config), embeddings_field(config)
    if not claim_aid(dataset, config, f"brain:{key}", dataset.has_brain_run(key)):
        result["error"] = f"brain run {key!r} exists and was not created by this run; left as it is"
        return result
    if dataset.has_brain_run(key):
        result["brainKey"] = key
        return result
    if not dataset.has_sample_field(field):
        return result
    samples = run_view(dataset, config).exists(field)
    if samples.count() < 2:
        return result
    try:
        import fiftyone.brain as fob

        fob.compute_visualization(
            samples,
            embeddings=field,
            method=review.visualization_method,
            brain_key=key,
            num_dims=2,
            progress=False,
        )
    except Exception as error:  # e.g. umap not installed, too few samples for tsne: reported, not fatal
        result["error"] = f"compute_visualization failed: {type(error).__name__}: {error}"
    else:
        result["brainKey"] = key
    return result


def remove_aids(dataset: Any, config: WorkerConfig) -> None:
    """Deletes the saved views (the verification sample's too) and brain run this run created.

    Absent ones are fine; a view or brain run of the same name that the run did not create stays.
    """
    views = [*view_names(config), verification_view_name(config)]
    names = [f"view:{name}" for name in views]
    for name in views:
        if dataset.has_saved_view(name) and created_by_run(dataset, config, f"view:{name}"):
            dataset.delete_saved_view(name)
    key = brain_key(config)
    if dataset.has_brain_run(key) and created_by_run(dataset, config, f"brain:{key}"):
        dataset.delete_brain_run(key)
    release(dataset, config, [*names, f"brain:{key}"])
