"""The controller's half of the contract: an AutoLabelRun's spec -> the typed worker and review configs.

`worker_config` is the only place where CRD fields become worker settings; the
objects it builds are the worker's own models (`contract.worker`), validated
here, so a spec the worker could not read is refused before any Job exists.
The controller never imports the worker's code, only the shared `contract`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract.review import ReviewConfig
from contract.worker import (
    EMBEDDINGS_FIELD_SUFFIX,
    STAGING_FIELD_SUFFIX,
    DatabaseWrites,
    EmbeddingsConfig,
    ModelConfig,
    ObjectStoreConfig,
    PathRewrite,
    ProgressChannel,
    Protocol,
    RunIdentity,
    SegmenterConfig,
    SourceConfig,
    Target,
    TensorNames,
    WorkerConfig,
)
from controller.api import AutoLabelRunSpec
from controller.api.model import BoxCoordinates, ModelSpec
from controller.api.segmenter import SegmenterSpec
from controller.names import progress_config_map_name


def staging_field(spec: AutoLabelRunSpec) -> str:
    """Where the run's predictions live until finalize."""
    return f"{spec.label_field}{STAGING_FIELD_SUFFIX}"


def embeddings_field(spec: AutoLabelRunSpec) -> str | None:
    embeddings = spec.model.embeddings if spec.model is not None else None
    if embeddings is None:
        return None
    return embeddings.field or f"{spec.label_field}{EMBEDDINGS_FIELD_SUFFIX}"


def triton_url(model: ModelSpec) -> tuple[str, Protocol]:
    """(host:port, protocol) the worker calls: the endpoint, or the sidecar on localhost."""
    if model.endpoint is not None:
        return model.endpoint.address, model.endpoint.protocol
    assert model.sidecar is not None
    return f"127.0.0.1:{model.sidecar.grpc_port}", Protocol.GRPC


def _tensors(model: ModelSpec) -> TensorNames:
    names = model.tensors
    if names is None:
        return TensorNames()
    given = {key: value for key, value in names.model_dump().items() if value is not None}
    return TensorNames(**given)


def _channels(values: list[float] | None) -> tuple[float, float, float] | None:
    """R, G, B values (the CRD holds exactly three) as the worker's triple."""
    return None if values is None else (values[0], values[1], values[2])


def model_config(spec: AutoLabelRunSpec, model: ModelSpec) -> ModelConfig:
    """The worker's model settings: server, adapter, preprocessing, classes, thresholds."""
    preprocess = model.preprocess
    url, protocol = triton_url(model)
    size = (preprocess.height, preprocess.width) if preprocess.height and preprocess.width else None
    embeddings = model.embeddings
    field = embeddings_field(spec)
    return ModelConfig(
        url=url,
        protocol=protocol,
        name=model.name,
        version=model.version or "",
        output_format=model.output_format,
        tensors=_tensors(model),
        input_size=size,
        input_layout=preprocess.layout,
        input=model.input,
        resize=preprocess.resize,
        scale=preprocess.scale,
        normalize_mean=_channels(preprocess.mean),
        normalize_std=_channels(preprocess.std),
        # A zero-shot model's classes are its prompts, which name its outputs; otherwise a filter.
        classes=list(model.classes or []) if model.zero_shot else list(model.class_names or []) or None,
        keep_classes=list(model.classes) if model.classes and not model.zero_shot else None,
        zero_shot=model.zero_shot,
        confidence_threshold=spec.confidence_threshold or 0.0,
        box_format=model.box_format,
        boxes_normalized=None
        if model.box_coordinates is None
        else model.box_coordinates is BoxCoordinates.NORMALIZED,
        nms_iou_threshold=model.nms_iou_threshold,
        store_logits=spec.store_logits,
        segmenter=None if model.segmenter is None else segmenter_config(model.segmenter),
        embeddings=None
        if embeddings is None or field is None
        else EmbeddingsConfig(
            tensor=embeddings.output, field=field, model=embeddings.model, version=embeddings.version or ""
        ),
        timeout_s=spec.execution.request_timeout_seconds,
    )


def segmenter_config(segmenter: SegmenterSpec) -> SegmenterConfig:
    tensors = segmenter.tensors
    return SegmenterConfig(
        name=segmenter.name,
        version=segmenter.version or "",
        output_format=segmenter.output_format,
        tensors=TensorNames(input=tensors.input, output=tensors.output) if tensors else TensorNames(),
        scale=segmenter.scale,
        normalize_mean=_channels(segmenter.mean),
        normalize_std=_channels(segmenter.std),
        classes=list(segmenter.classes) if segmenter.classes else None,
    )


def object_store_config(spec: AutoLabelRunSpec) -> ObjectStoreConfig:
    """Endpoint, region, addressing, concurrency of ``dataset.media.s3``; credentials stay in the Secret."""
    media = spec.dataset.media
    s3 = media.s3 if media is not None else None
    if s3 is None:
        return ObjectStoreConfig()
    secret = s3.credentials_secret_ref
    return ObjectStoreConfig(
        endpoint=s3.endpoint.rstrip("/") if s3.endpoint else None,
        region=s3.region,
        path_style=s3.path_style if s3.path_style is not None else s3.endpoint is not None,
        credentials_secret=secret.name if secret is not None else None,
        fetch_concurrency=s3.concurrency,
    )


def worker_config(metadata: Mapping[str, Any], spec: AutoLabelRunSpec) -> WorkerConfig:
    """The worker's configuration for this run (its JSON form: `WorkerConfig.to_json`)."""
    target = spec.dataset.target
    execution = spec.execution
    media = spec.dataset.media
    settings: dict[str, Any] = {}
    if execution.decode_workers:
        settings["decode_threads"] = execution.decode_workers
    return WorkerConfig(
        run=RunIdentity(namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"]),
        dataset=spec.dataset.name,
        target=Target(view=target.view, tags=target.tags, sample_ids=target.sample_ids),
        shards=execution.effective_shards,
        label_field=spec.label_field,
        staging_field=staging_field(spec),
        task=spec.task,
        model=model_config(spec, spec.model) if spec.model is not None else None,
        source=None
        if spec.source is None
        else SourceConfig(field=spec.source.field, confidence_threshold=spec.confidence_threshold or 0.0),
        batch_size=execution.batch_size,
        max_in_flight=execution.max_in_flight,
        write_batch_size=execution.write_batch_size,
        media_path_rewrite=[]
        if media is None
        else [PathRewrite(**{"from": r.dataset_prefix, "to": r.mount_prefix}) for r in media.path_rewrites],
        mask_dir=spec.mask_dir,
        object_store=object_store_config(spec),
        database=DatabaseWrites(write_concern=spec.dataset.write_concern),
        progress=ProgressChannel(
            kind="configmap", config_map=progress_config_map_name(metadata), namespace=metadata["namespace"]
        ),
        **settings,
    )


def review_config(spec: AutoLabelRunSpec) -> ReviewConfig:
    """The review steps' configuration: the rules, tags and quality settings of ``spec.review``."""
    return ReviewConfig.model_validate(spec.review.dump())
