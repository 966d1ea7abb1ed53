"""Turn a pydantic model's JSON Schema into a Kubernetes structural OpenAPI v3 schema.

A structural schema (what a CRD requires) has a `type` on every node, no `$ref`, and no
`anyOf`/`oneOf` that change the type. Pydantic's output is close: this walker inlines
`$defs`, drops the `null` branch of optional fields (unset fields are omitted, never
null), rewrites JSON Schema 2020 `exclusiveMinimum: N` into the OpenAPI 3.0 form, and
refuses any keyword it does not know, so a new model feature cannot slip through unreviewed.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]

# Keywords copied through unchanged (after their sub-schemas are converted).
_PASSTHROUGH = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "nullable",
)
_DROPPED = ("title", "$defs")
# Key order in the output, for a readable CRD; anything else (x-kubernetes-*) follows.
_ORDER = ("description", "type", "format", "enum", "default", *_PASSTHROUGH[5:])


class SchemaConversionError(ValueError):
    """The JSON Schema uses something a structural schema cannot express."""


def structural_schema(model: type[BaseModel], *, keep_defaults: bool = True) -> JsonSchema:
    """The structural OpenAPI schema of `model` (camelCase aliases), `$defs` inlined."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return convert(raw, raw.get("$defs", {}), keep_defaults=keep_defaults)


def convert(node: JsonSchema, defs: dict[str, JsonSchema], *, keep_defaults: bool = True) -> JsonSchema:
    """Convert one JSON Schema node (and everything below it)."""
    node = _flatten(node, defs)
    result: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            result[key] = {
                name: convert(sub, defs, keep_defaults=keep_defaults) for name, sub in value.items()
            }
        elif key == "items":
            result[key] = convert(value, defs, keep_defaults=keep_defaults)
        elif key == "additionalProperties":
            if value is False:
                continue  # extra="forbid": the API server refuses unknown fields on its own
            result[key] = convert(value, defs, keep_defaults=keep_defaults)
        elif key == "default":
            if keep_defaults and value is not None:
                result[key] = value
        elif key == "const":
            result["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            result["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            result[key] = True
        elif key in _PASSTHROUGH or key.startswith("x-kubernetes-"):
            result[key] = copy.deepcopy(value)  # shared lists would become YAML anchors
        else:
            raise SchemaConversionError(f"unsupported JSON Schema keyword {key!r} in {node!r}")
    if "type" not in result and not result.get("x-kubernetes-int-or-string"):
        raise SchemaConversionError(f"schema node without a type: {node!r}")
    return _ordered(result)


def _flatten(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """Resolve `$ref`, single-branch `allOf`, and `anyOf` with a null branch into one plain node.

    Keys next to a `$ref` (a field's description or default) win over the referenced schema's.
    """
    node = dict(node)
    if "$ref" in node:
        name = node.pop("$ref").removeprefix("#/$defs/")
        if name not in defs:
            raise SchemaConversionError(f"unresolved $ref {name!r}")
        node = {**_flatten(defs[name], defs), **node}
    if "allOf" in node:
        branches = node.pop("allOf")
        if len(branches) != 1:
            raise SchemaConversionError(f"allOf with {len(branches)} branches is not structural")
        node = {**_flatten(branches[0], defs), **node}
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) != 1:
            raise SchemaConversionError(f"anyOf with differing types is not structural: {node['anyOf']!r}")
        node.pop("anyOf")
        node = {**_flatten(branches[0], defs), **node}
    return node


def _ordered(schema: JsonSchema) -> JsonSchema:
    first = {key: schema[key] for key in _ORDER if key in schema}
    return first | {key: value for key, value in schema.items() if key not in first}
