"""The fields that fix what a run writes, where, and with which database: immutable once the run exists.

`controller.crdgen` turns this table into CEL transition rules on the parent
objects (`self.f == oldSelf.f`, and for optional fields that it is neither
added nor removed), so the API server refuses an edit with the field named.
Review rules, finalize, discard, suspend and execution settings stay editable.
`labelField` carries its own `self == oldSelf` rule (spec.py).
"""

from __future__ import annotations

from typing import Any

# Parent object (camelCase path under spec) -> its immutable fields (camelCase).
IMMUTABLE_FIELDS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("task", "maskDir", "source"),
    ("dataset",): ("name", "databaseSecretRef", "target", "media", "writeConcern"),
    ("model",): (
        "name",
        "version",
        "outputFormat",
        "tensors",
        "boxFormat",
        "boxCoordinates",
        "classNames",
        "classes",
        "zeroShot",
        "embeddings",
    ),
}


def immutable_rules(parent: tuple[str, ...], required: set[str]) -> list[dict[str, Any]]:
    """The CEL transition rules of one parent object's immutable fields."""
    rules = []
    for name in IMMUTABLE_FIELDS[parent]:
        path = ".".join(("spec", *parent, name))
        if name in required:
            rule = f"self.{name} == oldSelf.{name}"
        else:
            rule = (
                f"has(self.{name}) == has(oldSelf.{name}) && "
                f"(!has(self.{name}) || self.{name} == oldSelf.{name})"
            )
        rules.append(
            {
                "rule": rule,
                "message": f"{path} is immutable: it fixes what the run writes and where; "
                "create a new run to change it",
                "fieldPath": f".{name}",
            }
        )
    return rules
