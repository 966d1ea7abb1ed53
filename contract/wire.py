"""What every message between the controller and the pods is made of: the base model and bounded values.

Each message (a progress report, a step verdict, a review request or verdict) is a
`WireModel`: camelCase keys, frozen, unknown keys ignored (a worker image of another
version may add one). Every value has a bound, so a message read from a ConfigMap
that anything running as the worker ServiceAccount can write is small and sane:

- `Count`: a whole number from 0 to `MAX_COUNT`, never a bool, a float or a string;
- `Fraction`: a finite number from 0 to 1; `Finite`: a finite number of at most `MAX_MAGNITUDE`;
- `Flag`: a JSON true or false;
- `Name`, `ClassName`, `FieldName`, `Tag`, `Stamp`: strings with a length limit, a longer one refused;
- `ShortText`, `ErrorText`, `Message`: free text, cut to its limit (a long message is
  no reason to drop it).

The ConfigMaps carrying messages are found by the labels defined here; the keys
that hold each message are defined beside it (`contract.progress`,
`contract.review_agent`, and the step's own key in ``$AUTOLABEL_RESULT_KEY``).
"""

from __future__ import annotations

import json
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

MAX_COUNT: Final = 2**40
"""The largest count a message may carry (labels, samples): far beyond any dataset, far below int64."""

COMPONENT_LABEL: Final = "app.kubernetes.io/component"
RUN_UID_LABEL: Final = "autolabel.dev/run-uid"
"""Label of every child of a run (its ConfigMaps too): the run's uid."""
RESULT_COMPONENT: Final = "result"
"""`COMPONENT_LABEL` of a run's result ConfigMap: step verdicts, review requests and verdicts."""
RESULT_SELECTOR: Final = f"{COMPONENT_LABEL}={RESULT_COMPONENT}"

MAX_MAGNITUDE: Final = 1e15
"""The largest size of a number that is no count or fraction (a model's confidence, say)."""

Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]
Fraction = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
Finite = Annotated[float, Strict(), Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE, allow_inf_nan=False)]
Flag = StrictBool

Name = Annotated[str, Strict(), StringConstraints(max_length=253)]
"""A name a Kubernetes object or a FiftyOne dataset gives (a saved view, a brain key, a ConfigMap)."""
ClassName = Annotated[str, Strict(), StringConstraints(max_length=256)]
"""A label class, as status and spec take it."""
FieldName = Annotated[str, Strict(), StringConstraints(max_length=63)]
"""A FiftyOne field name, as spec takes it."""
Tag = Annotated[str, Strict(), StringConstraints(max_length=128)]
"""A label tag (a problem tag), as spec.review takes it."""
Stamp = Annotated[str, Strict(), StringConstraints(max_length=64)]
"""A time as text (ISO 8601), or a short token."""

SHORT_TEXT_LIMIT: Final = 1024
ERROR_TEXT_LIMIT: Final = 4000
MESSAGE_LIMIT: Final = 32768
"""A condition message's limit in status: a message a pod sends is cut to it."""


def _cut(limit: int) -> tuple[AfterValidator, WithJsonSchema]:
    """Cuts a text to `limit` characters (its schema says so)."""
    return AfterValidator(lambda value: value[:limit]), WithJsonSchema({"type": "string", "maxLength": limit})


ShortText = Annotated[str, Strict(), *_cut(SHORT_TEXT_LIMIT)]
ErrorText = Annotated[str, Strict(), *_cut(ERROR_TEXT_LIMIT)]
Message = Annotated[str, Strict(), *_cut(MESSAGE_LIMIT)]


class WireModel(BaseModel):
    """A message between the controller and the pods (camelCase keys, unknown keys ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    def to_json(self) -> str:
        """The message as compact JSON, with exactly the keys it was made with."""
        document = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return json.dumps(document, separators=(",", ":"))
