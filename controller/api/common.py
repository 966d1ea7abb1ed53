"""Shared building blocks of the API models: the base model, CEL rule helpers and small Kubernetes types.

All API models use camelCase aliases (the Kubernetes convention) while Python code uses
snake_case attribute names; `dump()` gives the manifest form.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from controller.api.constants import FIELD_NAME_MAX_LENGTH, FIELD_NAME_PATTERN

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ABSOLUTE_PATH_PATTERN = r"^/.*$"
# The API server refuses duplicates in a list of this type ("Duplicate value").
LIST_OF_UNIQUE_VALUES: dict[str, Any] = {"x-kubernetes-list-type": "set"}

FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=FIELD_NAME_MAX_LENGTH, pattern=FIELD_NAME_PATTERN)
]
DnsLabel = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
AbsolutePath = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=ABSOLUTE_PATH_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=253)]
# A Kubernetes resource quantity ("500m", "4Gi", 1); the API server parses it.
Quantity = Annotated[
    int | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]


def cel_rule(
    rule: str, message: str, field_path: str | None = None, reason: str | None = None
) -> dict[str, str]:
    """One `x-kubernetes-validations` entry; `field_path` points the error at the offending field."""
    entry = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """The json_schema_extra that attaches CEL rules to a model or a field."""
    return {"x-kubernetes-validations": list(rules)}


def section(model: type[BaseModel], description: str) -> Any:
    """A field holding a nested object that defaults to an empty object, nested defaults applied.

    The CRD gets `default: {}` so the API server fills in the nested defaults, and a
    `kubectl get -o yaml` shows the effective settings.
    """
    field: Any = Field(default_factory=model, description=description, json_schema_extra={"default": {}})
    return field


class ApiModel(BaseModel):
    """Base of the spec models: camelCase in manifests, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )

    @model_validator(mode="after")
    def _set_lists_unique(self) -> Self:
        """Mirror of `x-kubernetes-list-type: set`: the API server refuses duplicates in these lists."""
        for name, field in type(self).model_fields.items():
            values = getattr(self, name)
            if (
                field.json_schema_extra == LIST_OF_UNIQUE_VALUES
                and values
                and len(set(values)) != len(values)
            ):
                raise ValueError(f"{field.alias or name} must not repeat a value")
        return self

    def dump(self) -> dict[str, Any]:
        """The manifest form: camelCase keys, unset optional fields left out, JSON-compatible values."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(ApiModel):
    """Base of the status models: tolerant of fields written by other versions."""

    model_config = ConfigDict(extra="ignore")


class Toleration(ApiModel):
    """A Kubernetes toleration, copied onto the worker pods."""

    key: str | None = Field(
        default=None, max_length=316, description="The taint key the toleration applies to."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (default Equal)."
    )
    value: str | None = Field(
        default=None, max_length=63, description="The taint value to match (operator Equal)."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None,
        description="The taint effect to match; unset matches all effects.",
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated before eviction, in seconds."
    )


class ResourceRequirements(ApiModel):
    """Compute resources of a container (as in a Pod spec); a GPU is `nvidia.com/gpu`."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum resources, for example cpu: 2, memory: 4Gi."
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum resources, for example nvidia.com/gpu: 1, memory: 8Gi."
    )


class PersistentVolumeMount(ApiModel):
    """A PersistentVolumeClaim mounted into the pods at a path."""

    claim_name: DnsSubdomain = Field(description="Name of the PersistentVolumeClaim in the run's namespace.")
    mount_path: AbsolutePath = Field(description="Absolute path where the volume appears in the containers.")
    sub_path: str | None = Field(
        default=None, max_length=1024, description="Directory inside the volume to mount."
    )
    read_only: bool = Field(default=True, description="Mount read-only (the default).")
