"""The whole AutoLabelRun object, and conversions between API bodies and the models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from controller.api.common import StatusModel
from controller.api.spec import AutoLabelRunSpec
from controller.api.status import AutoLabelRunStatus


class AutoLabelRun(StatusModel):
    """An AutoLabelRun as the API server returns it (metadata kept as a plain mapping)."""

    api_version: Literal["autolabel.dev/v1alpha1"] = Field(
        default="autolabel.dev/v1alpha1", alias="apiVersion"
    )
    kind: Literal["AutoLabelRun"] = "AutoLabelRun"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: AutoLabelRunSpec
    status: AutoLabelRunStatus = Field(default_factory=lambda: AutoLabelRunStatus())

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AutoLabelRun:
        """Parse a body from the API server or a manifest; raises pydantic.ValidationError on a bad spec."""
        return cls.model_validate(dict(body))


def parse_spec(spec: Mapping[str, Any]) -> AutoLabelRunSpec:
    """Parse a spec mapping (camelCase keys); raises pydantic.ValidationError naming the bad fields."""
    return AutoLabelRunSpec.model_validate(dict(spec))


def status_patch(status: AutoLabelRunStatus) -> dict[str, Any]:
    """The JSON form of a status for a merge patch: camelCase keys, unset fields left out."""
    return status.dump()
