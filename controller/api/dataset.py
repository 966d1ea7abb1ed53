"""The dataset part of the spec: which FiftyOne dataset, which samples, how to reach database and media."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from controller.api.common import (
    LIST_OF_UNIQUE_VALUES,
    AbsolutePath,
    ApiModel,
    DnsSubdomain,
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
    """Replace a leading part of the dataset's file paths by the path where the worker sees the files."""

    dataset_prefix: str = Field(
        min_length=1,
        max_length=1024,
        description="Prefix of `filepath` as stored in the dataset, e.g. /data.",
    )
    mount_prefix: AbsolutePath = Field(description="What the prefix becomes inside the worker, e.g. /media.")


class MediaSpec(ApiModel):
    """How worker pods reach the media files: a PVC mounted at a path, plus prefix rewrites."""

    persistent_volume_claim: PersistentVolumeMount = Field(
        description="The volume holding the media files (and, for segmentation, the mask directory)."
    )
    path_rewrites: list[PathRewrite] = Field(
        default_factory=list,
        max_length=16,
        description="Prefix rewrites from dataset paths to mounted paths; the first matching prefix applies.",
    )


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
