"""Every spec.review.autoApprove the API server accepts, the worker's review configuration accepts.

The edges of each bounded field of `AutoApproveSpec` (its ge/gt/le/lt) are generated from the model
itself and passed through the contract's `AutoApproveConfig`: a value the CRD lets through must not
fail in the pod after the run started.
"""

from __future__ import annotations

import math
from typing import Any

import annotated_types
import pytest

from contract.review import AutoApproveConfig
from controller.api.review import AutoApproveSpec

BASE: dict[str, Any] = {"targetPrecision": 0.9}


def number(bound: object) -> float:
    assert isinstance(bound, int | float), bound
    return float(bound)


def edge_values() -> list[tuple[str, float]]:
    """(field alias, value) for every value at or just inside each bound of each numeric field."""
    cases = []
    for name, field in AutoApproveSpec.model_fields.items():
        alias = field.alias or name
        for bound in field.metadata:
            if isinstance(bound, annotated_types.Ge):
                cases.append((alias, number(bound.ge)))
            elif isinstance(bound, annotated_types.Gt):
                cases.append((alias, math.nextafter(number(bound.gt), math.inf)))
            elif isinstance(bound, annotated_types.Le):
                cases.append((alias, number(bound.le)))
            elif isinstance(bound, annotated_types.Lt):
                cases.append((alias, math.nextafter(number(bound.lt), -math.inf)))
    return cases


CASES = edge_values()


def test_the_edges_cover_every_bounded_field() -> None:
    assert {alias for alias, _ in CASES} >= {"targetPrecision", "confidenceLevel", "minReviewedPerClass"}


@pytest.mark.parametrize(("alias", "value"), CASES, ids=[f"{a}={v!r}" for a, v in CASES])
def test_a_spec_edge_is_a_valid_worker_setting(alias: str, value: float) -> None:
    field = next(f for n, f in AutoApproveSpec.model_fields.items() if (f.alias or n) == alias)
    typed: float | int = int(value) if field.annotation is int else value
    document = {**BASE, alias: typed}
    spec = AutoApproveSpec.model_validate(document)
    worker = AutoApproveConfig.model_validate(spec.model_dump(mode="json", by_alias=True))
    assert worker.model_dump(by_alias=True)[alias] == typed
