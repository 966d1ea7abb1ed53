"""Immutable fields become CEL transition rules on their parents naming the field; the rest is editable."""

from __future__ import annotations

from typing import Any

from controller.api.immutable import IMMUTABLE_FIELDS
from controller.crdgen import build_crd
from runtime.view_guard import allowed_stage_classes


def spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    return schema


def rules_at(parent: tuple[str, ...]) -> list[dict[str, str]]:
    node = spec_schema()
    for part in parent:
        node = node["properties"][part]
    return list(node.get("x-kubernetes-validations") or [])


def test_every_immutable_field_has_a_transition_rule_naming_it() -> None:
    for parent, names in IMMUTABLE_FIELDS.items():
        rules = {rule.get("fieldPath"): rule for rule in rules_at(parent) if "oldSelf" in rule["rule"]}
        for name in names:
            rule = rules[f".{name}"]
            assert f"spec.{'.'.join((*parent, name))} is immutable" in rule["message"]
            assert f"self.{name} == oldSelf.{name}" in rule["rule"]
    # Optional fields may not be added or removed either.
    version = next(r for r in rules_at(("model",)) if r.get("fieldPath") == ".version")
    assert "has(self.version) == has(oldSelf.version)" in version["rule"]
    task = next(r for r in rules_at(()) if r.get("fieldPath") == ".task")
    assert task["rule"] == "self.task == oldSelf.task"  # required: always present


def test_review_finalize_discard_suspend_and_execution_stay_editable() -> None:
    immutable = {name for names in IMMUTABLE_FIELDS.values() for name in names}
    assert not immutable & {"review", "finalize", "discard", "suspend", "execution"}
    assert not {"endpoint", "sidecar", "preprocess"} & set(IMMUTABLE_FIELDS[("model",)])


def test_only_fiftyones_own_view_stages_are_allowed() -> None:
    allowed = allowed_stage_classes()
    assert {
        "fiftyone.core.stages.Match",
        "fiftyone.core.stages.Limit",
        "fiftyone.core.stages.Select",
    } <= allowed
    assert "fiftyone.core.stages.ViewStage" not in allowed
    assert "subprocess.Popen" not in allowed and all(c.startswith("fiftyone.core.stages.") for c in allowed)
