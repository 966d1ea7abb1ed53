"""The dataset part of the spec: which FiftyOne dataset, which samples, how to reach database and media."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from contract.worker import WriteConcernMode
from controller.api.common import (
    LIST_OF_UNIQUE_VALUES,
    ApiModel,
    DnsSubdomain,
    MediaPrefix,
    PersistentVolumeMount,
    ShortText,
    cel_rule,
    cel_rules,
)

TagName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
SampleId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{24}$")]


class TargetSelector(ApiModel):
    """Which samples of the dataset the run labels: exactly one of all, view, tags, sampleIds."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "(has(self.all) && self.all ? 1 : 0) + (has(self.view) ? 1 : 0)"
                " + (has(self.tags) ? 1 : 0) + (has(self.sampleIds) ? 1 : 0) == 1",
                "exactly one of all (true), view, tags or sampleIds must be set",
            )
        )
    )

    all: bool | None = Field(default=None, description="Label every sample of the dataset (set to true).")
    view: ShortText | None = Field(default=None, description="Name of a saved view of the dataset.")
    tags: list[TagName] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Label the samples having any of these sample tags.",
        json_schema_extra=LIST_OF_UNIQUE_VALUES,
    )
    sample_ids: list[SampleId] | None = Field(
        default=None,
        min_length=1,
        max_length=10000,
        description="Label exactly these samples (ObjectId strings).",
        json_schema_extra=LIST_OF_UNIQUE_VALUES,
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [bool(self.all), self.view is not None, self.tags is not None, self.sample_ids is not None]
        if sum(chosen) != 1:
            raise ValueError("exactly one of all (true), view, tags or sampleIds must be set")
        return self


class SecretKeyRef(ApiModel):
    """A key of a Secret in the run's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret.")
    key: str = Field(
        default="uri", min_length=1, max_length=253, description="Key holding the value (default uri)."
    )


class PathRewrite(ApiModel):
    """Replace a leading part of the dataset's file paths by where the worker finds the files."""

    dataset_prefix: str = Field(
        min_length=1,
        max_length=1024,
        description="Prefix of `filepath` as stored in the dataset, e.g. /data or s3://bucket/images.",
    )
    mount_prefix: MediaPrefix = Field(
        description="What the prefix becomes for the worker: a mounted path (/media), an object URL "
        "prefix (s3://bucket/images, read with dataset.media.s3) or an http(s):// URL prefix."
    )


class S3Credentials(ApiModel):
    """A Secret in the run's namespace with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""

    name: DnsSubdomain = Field(
        description="Name of the Secret: keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally "
        "AWS_SESSION_TOKEN; the worker pods get them as environment variables, the controller never reads it."
    )


class S3Access(ApiModel):
    """How worker pods reach s3:// media and masks: the endpoint, region and credentials."""

    endpoint: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^https?://[^/\s]+/?$",
        description="S3 endpoint URL (MinIO, Ceph, another cloud's S3 API), e.g. http://minio.storage:9000; "
        "default AWS S3 of the region.",
    )
    region: str | None = Field(
        default=None, min_length=1, max_length=64, description="Region of the buckets (default us-east-1)."
    )
    path_style: bool | None = Field(
        default=None,
        description="Bucket in the URL path (true) or in the host name (false); default true when an "
        "endpoint is set (MinIO, Ceph), false for AWS.",
    )
    credentials_secret_ref: S3Credentials | None = Field(
        default=None,
        description="Secret with the access keys; omit to use the pod's workload identity "
        "(the worker ServiceAccount's IAM role). Never put keys in the spec.",
    )
    concurrency: int = Field(
        default=32, ge=1, le=256, description="GET requests each worker keeps in flight (default 32)."
    )


class MediaSpec(ApiModel):
    """How worker pods reach the media files: a PVC mounted at a path, object storage, prefix rewrites."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "has(self.persistentVolumeClaim) || has(self.s3)"
                " || (has(self.pathRewrites) && size(self.pathRewrites) > 0)",
                "media needs persistentVolumeClaim, s3 or pathRewrites",
            )
        )
    )

    persistent_volume_claim: PersistentVolumeMount | None = Field(
        default=None,
        description="The volume holding the media files (and, for segmentation, the mask directory).",
    )
    s3: S3Access | None = Field(
        default=None,
        description="Object storage for sample filepaths that are (or are rewritten to) s3:// URLs, "
        "and for an s3:// maskDir.",
    )
    path_rewrites: list[PathRewrite] = Field(
        default_factory=list,
        max_length=16,
        description="Prefix rewrites from dataset paths to mounted paths or object URLs; "
        "the first matching prefix applies.",
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.persistent_volume_claim is None and self.s3 is None and not self.path_rewrites:
            raise ValueError("media needs persistentVolumeClaim, s3 or pathRewrites")
        return self


class DatasetSpec(ApiModel):
    """The FiftyOne dataset to label and how to reach it."""

    name: str = Field(min_length=1, max_length=253, description="Name of the FiftyOne dataset.")
    target: TargetSelector = Field(
        description="Which samples to label: exactly one of all, view, tags, sampleIds."
    )
    database_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the FiftyOne database URI (mongodb://...); never the URI itself."
    )
    media: MediaSpec | None = Field(
        default=None,
        description="Volume and path rewrites for the media files; omit when the paths resolve as stored.",
    )
    write_concern: WriteConcernMode = Field(
        default=WriteConcernMode.MAJORITY,
        description=(
            "How durable each write of the run's dataset work is before it counts as done: majority "
            "(w: majority, j: true; journaled on a standalone server, acknowledged by a majority on a "
            "replica set, so a failover loses nothing; the default) or journaled (w: 1, j: true; "
            "journaled on the primary only, for a replica set whose majority answers too slowly; a "
            "failover may roll back writes). Fixed when the run starts."
        ),
    )
