"""Shared building blocks of the API models: the base model, CEL rule helpers and small Kubernetes types.

All API models use camelCase aliases (the Kubernetes convention) while Python code uses
snake_case attribute names; `dump()` gives the manifest form.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
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
# An absolute path with no `.`, `..` or empty segment (a trailing `/` allowed): what it
# names is what it says, so a directory-boundary prefix check on it is sound.
NORMAL_PATH_PATTERN = r"^/$|^(/([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+))+/?$"
NORMAL_PATH_MESSAGE = "must be a normalised absolute path (no '.', '..' or empty segments)"
NormalPath = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=NORMAL_PATH_PATTERN)]
# s3://<bucket>[/<key prefix>]: a bucket name as S3 allows it (3-63 lower-case letters, digits, dots, dashes).
S3_URL_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$"
OBJECT_URL_PATTERN = r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]|https?://[^/\s]+)(/[^\s]*)?$"
MediaPrefix = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024, pattern=f"{ABSOLUTE_PATH_PATTERN}|{OBJECT_URL_PATTERN}"),
]
"""Where media lie for the worker: an absolute path, an s3://bucket/prefix or an http(s):// URL prefix."""
MaskLocation = Annotated[
    str, StringConstraints(min_length=1, max_length=1024, pattern=f"{NORMAL_PATH_PATTERN}|{S3_URL_PATTERN}")
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=253)]
TritonName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
TensorName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Channels = Annotated[list[float], Field(min_length=3, max_length=3)]
"""Three per-channel (R, G, B) values: a mean or a standard deviation."""
# A non-negative Kubernetes resource quantity ("500m", "4Gi", 1): the grammar of
# resource.Quantity without the minus sign, so "lots" or "-1Gi" is refused at apply
# instead of by the Job API later.
QUANTITY_PATTERN = r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE]\+?[0-9]+))?$"
# A label key: an optional DNS-subdomain prefix (at most 253 characters) and `/`, then a
# name of at most 63 characters. The prefix length is checked apart (LABEL_KEY_PREFIX_RULE).
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_KEY_MAX_LENGTH = 253 + 1 + 63
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
LABEL_KEY_MESSAGE = (
    "must be a label key: an optional DNS subdomain prefix of at most 253 characters and '/', then "
    "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
)


def under_rule(path: str, root: str) -> str:
    """CEL expression true when `path` is `root` or lies below it at a directory boundary."""
    return (
        f"({path}.matches(r'{NORMAL_PATH_PATTERN}') && ({path} == {root} || {path}.startsWith("
        f"{root}.endsWith('/') ? {root} : {root} + '/')))"
    )


def is_under(path: str, root: str) -> bool:
    """The Python twin of `under_rule`: `/media/x` is under `/media`; `/mediaX/x`, `/media/../x` are not."""
    if re.match(NORMAL_PATH_PATTERN, path) is None:
        return False
    return path == root or path.startswith(root if root.endswith("/") else root + "/")


def label_key_rule(var: str) -> str:
    """CEL expression true when the string `var` is a valid label key."""
    return (
        f"size({var}) <= {LABEL_KEY_MAX_LENGTH} && {var}.matches(r'{LABEL_KEY_PATTERN}')"
        f" && (!{var}.contains('/') || {var}.indexOf('/') <= 253)"
    )


def is_label_key(key: str) -> bool:
    """The Python twin of `label_key_rule`."""
    return (
        len(key) <= LABEL_KEY_MAX_LENGTH
        and re.match(LABEL_KEY_PATTERN, key) is not None
        and ("/" not in key or key.index("/") <= 253)
    )


def _check_quantity(value: int | str) -> int | str:
    negative = isinstance(value, int) and value < 0
    if negative or (isinstance(value, str) and not re.match(QUANTITY_PATTERN, value)):
        raise ValueError(f"{value!r} is not a non-negative quantity (for example 500m, 4Gi, 2)")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    # Pod specs take quantities as strings (the Kubernetes client refuses `nvidia.com/gpu: 1` as an int).
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN, "minimum": 0}),
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
    """A Kubernetes toleration, copied onto the worker pods (the Pod API's rules checked at apply)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "!has(self.key) || self.key == '' || " + label_key_rule("self.key"),
                f"key {LABEL_KEY_MESSAGE}",
                field_path=".key",
            ),
            cel_rule(
                "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
                "operator must be Exists when key is empty",
                field_path=".operator",
            ),
            cel_rule(
                "!(has(self.operator) && self.operator == 'Exists') || !has(self.value) || self.value == ''",
                "value must be empty when operator is Exists",
                field_path=".value",
            ),
            cel_rule(
                "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                "tolerationSeconds applies only to effect NoExecute",
                field_path=".tolerationSeconds",
            ),
        )
    )

    key: str | None = Field(
        default=None,
        max_length=LABEL_KEY_MAX_LENGTH,
        description="The taint key the toleration applies to; empty with operator Exists matches all taints.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (default Equal)."
    )
    value: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_VALUE_PATTERN,
        description="The taint value to match (operator Equal).",
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None,
        description="The taint effect to match; unset matches all effects.",
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated before eviction, in seconds."
    )

    @model_validator(mode="after")
    def _pod_api_rules(self) -> Self:
        errors = []
        if self.key and not is_label_key(self.key):
            errors.append(f"key {LABEL_KEY_MESSAGE}")
        if not self.key and self.operator != "Exists":
            errors.append("operator must be Exists when key is empty")
        if self.operator == "Exists" and self.value:
            errors.append("value must be empty when operator is Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            errors.append("tolerationSeconds applies only to effect NoExecute")
        if errors:
            raise ValueError("; ".join(errors))
        return self


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
    mount_path: NormalPath = Field(
        description=f"Absolute path where the volume appears in the containers; {NORMAL_PATH_MESSAGE}."
    )
    sub_path: str | None = Field(
        default=None, max_length=1024, description="Directory inside the volume to mount."
    )
    read_only: bool = Field(default=True, description="Mount read-only (the default).")
