"""Unit tests of the CRD generator: structural schema, constraints, CEL rules, printer columns, drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, Field

from controller import crdgen
from controller.api.openapi import SchemaConversionError, structural_schema

CRD = crdgen.build_crd()
VERSION = CRD["spec"]["versions"][0]
ROOT = VERSION["schema"]["openAPIV3Schema"]
SPEC = ROOT["properties"]["spec"]
STATUS = ROOT["properties"]["status"]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its dotted path."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def rules_at(path: str) -> list[str]:
    node = dict(walk(ROOT))[path]
    return [entry["rule"] for entry in node.get("x-kubernetes-validations", [])]


def test_names_and_scope() -> None:
    names = CRD["spec"]["names"]
    assert CRD["metadata"]["name"] == "autolabelruns.autolabel.dev"
    assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (
        "AutoLabelRun",
        "autolabelruns",
        ["alr"],
        ["autolabel"],
    )
    assert CRD["spec"]["scope"] == "Namespaced"
    assert VERSION["name"] == "v1alpha1" and VERSION["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in VERSION["additionalPrinterColumns"]}
    for name in ("Phase", "Progress", "Approved", "Age", "Task", "Dataset"):
        assert name in columns
    assert columns["Progress"]["jsonPath"] == ".status.progress.summary"
    # Each column's path must exist in the schema, or kubectl shows <none> forever.
    paths = dict(walk(ROOT))
    for column in columns.values():
        if not column["jsonPath"].startswith(".metadata"):
            assert column["jsonPath"] in paths, column


def test_schema_is_structural() -> None:
    for path, node in walk(ROOT):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "not", "title", "uniqueItems", "const"):
            assert forbidden not in node, (path, forbidden)
        if "properties" in node:
            assert "additionalProperties" not in node, path
        assert node.get("x-kubernetes-preserve-unknown-fields") is not True, path
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"].get("required", [])), path


def test_every_spec_and_status_field_is_described() -> None:
    for path, node in walk(ROOT):
        if path.startswith((".spec.", ".status.")) and not path.endswith(("[]", "{}")):
            assert node.get("description"), path


def test_constraints() -> None:
    nodes = dict(walk(ROOT))
    assert nodes[".spec.task"]["enum"] == ["detection", "classification", "segmentation"]
    assert nodes[".spec.confidenceThreshold"]["minimum"] == 0
    assert nodes[".spec.confidenceThreshold"]["maximum"] == 1
    assert nodes[".spec.labelField"]["pattern"] == "^[A-Za-z_][A-Za-z0-9_]*$"
    assert nodes[".spec.labelField"]["maxLength"] == 63
    assert nodes[".spec.execution.parallelism"]["minimum"] == 1
    assert nodes[".spec.review.iouThreshold"]["exclusiveMinimum"] is True
    assert nodes[".spec.execution.resources.limits{}"]["x-kubernetes-int-or-string"] is True
    assert nodes[".spec.review.problemTags"]["default"][0] == "needs_correction"
    assert nodes[".spec.execution"]["default"] == {}
    assert set(SPEC["required"]) == {"task", "dataset", "labelField"}  # model xor source: a CEL rule


def test_status_declares_what_the_controller_writes_and_has_no_defaults() -> None:
    for field in (
        "phase",
        "conditions",
        "observedGeneration",
        "progress",
        "shards",
        "review",
        "finalized",
        "startTime",
        "completionTime",
        "message",
        "jobName",
    ):
        assert field in STATUS["properties"], field
    condition = STATUS["properties"]["conditions"]["items"]["properties"]
    assert {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(
        condition
    )
    assert STATUS["properties"]["phase"]["enum"][:3] == ["Pending", "Inferring", "Review"]
    assert all("default" not in node for _, node in walk(STATUS))


def test_cel_rules_present() -> None:
    assert any("has(self.sampleIds)" in rule for rule in rules_at(".spec.dataset.target"))
    assert "has(self.endpoint) != has(self.sidecar)" in rules_at(".spec.model")
    assert "self == oldSelf" in rules_at(".spec.labelField")
    assert any(
        "self.minConfidence < self.maxConfidence" in rule for rule in rules_at(".spec.review.approve[]")
    )
    assert any("outputFormat" in rule for rule in rules_at(".spec"))
    assert any("oldSelf.finalize" in rule for rule in rules_at(".spec"))
    for _, node in walk(ROOT):
        for entry in node.get("x-kubernetes-validations", []):
            assert entry["message"], entry


def test_generated_yaml_has_no_anchors_and_parses_back() -> None:
    text = crdgen.render_crd()
    assert text.startswith("# Generated by")
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text) == CRD


def test_check_detects_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1  # missing copies
    assert crdgen.main(["--root", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 0
    chart_copy = tmp_path / crdgen.CRD_PATHS[1]
    chart_copy.write_text(chart_copy.read_text().replace("- alr\n", "- xx\n"))
    capsys.readouterr()
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    report = capsys.readouterr().err
    assert "-    - xx\n" in report and "+    - alr\n" in report
    assert report.count("(checked in)") == 1  # only the chart's copy drifted


def test_checked_in_crds_are_current() -> None:
    assert crdgen.drift(crdgen.REPO_ROOT, crdgen.render_crd()) == []


def test_walker_rejects_non_structural_unions() -> None:
    class Union(BaseModel):
        value: int | list[str] = Field(description="either")

    with pytest.raises(SchemaConversionError, match="anyOf"):
        structural_schema(Union)


def test_walker_inlines_refs_and_drops_null_branches() -> None:
    class Inner(BaseModel):
        """Inner."""

        size: int = Field(default=1, gt=0)

    class Outer(BaseModel):
        inner: Inner | None = Field(default=None, description="An optional inner object.")

    schema = structural_schema(Outer)
    inner = schema["properties"]["inner"]
    assert inner["description"] == "An optional inner object."
    assert inner["type"] == "object"
    assert inner["properties"]["size"] == {
        "type": "integer",
        "default": 1,
        "minimum": 0,
        "exclusiveMinimum": True,
    }
