"""The review agent's messages: the request the controller writes for a run, and the agent's verdict.

The controller (`controller.agent_runner`) asks the agent named in a `ReviewRequest` to
serve a run by writing the request's `to_json()` into the key `REQUEST_KEY` of the run's
result ConfigMap (labelled ``RUN_UID_LABEL`` and ``RESULT_SELECTOR``, see
`contract.wire`). The agent (`review.agent`) watches those ConfigMaps, reads
each request with `read_request`, and answers under `VERDICT_KEY` with an
`AgentVerdict` that carries the `request_id` of the request text it served. The
controller reads it with `read_agent_verdict`, which takes only a verdict, readable
and whole, for the current request; anything else is no verdict (yet).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Final

from pydantic import Field, Strict, StringConstraints, ValidationError

from contract.review import ReviewConfig
from contract.verdicts import ReviewVerdict
from contract.wire import Count, ErrorText, Flag, Name, Stamp, WireModel

REQUEST_KEY: Final = "review-request"
VERDICT_KEY: Final = "review"
AGENT_LABEL: Final = "autolabel.dev/review-agent"
"""Label of an agent's Deployment and pods: the agent's name."""
REQUEST_ID_LENGTH: Final = 16
DEFAULT_REFRESH_SECONDS: Final = 30

RequestId = Annotated[
    str,
    Strict(),
    StringConstraints(max_length=REQUEST_ID_LENGTH, pattern=f"^[0-9a-f]{{{REQUEST_ID_LENGTH}}}$"),
]


def request_id(raw: str) -> str:
    """The id of a request text: an agent's verdict names the request it served by it."""
    return hashlib.sha256(raw.encode()).hexdigest()[:REQUEST_ID_LENGTH]


class ReviewRequest(WireModel):
    """What the controller asks an agent for one run: its review settings and where its snapshot is."""

    agent: Name
    generation: Count
    review: ReviewConfig
    refresh_interval_seconds: Annotated[int, Strict(), Field(ge=5, le=3600)] = DEFAULT_REFRESH_SECONDS
    snapshot: Name

    def to_json(self) -> str:
        """The request's text: keys sorted, so the same request is the same text (and the same id)."""
        return json.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=True)


def read_request(raw: str) -> ReviewRequest | None:
    """The request in `raw`; None when it is no readable request (the agent leaves it alone)."""
    try:
        return ReviewRequest.model_validate_json(raw, by_alias=True, by_name=False)
    except ValidationError:
        return None


class AgentVerdict(ReviewVerdict):
    """The agent's answer to one request: a review pass's verdict, or the ``error`` that stopped it."""

    request_id: RequestId
    generation: Count = 0
    rules_applied: Flag = False
    error: ErrorText | None = None
    computed_at: Stamp = ""


def read_agent_verdict(raw: str | None, current: str) -> AgentVerdict | None:
    """The verdict in `raw` when it answers the request of id `current`; None for none, another or junk."""
    if not raw:
        return None
    try:
        verdict = AgentVerdict.model_validate_json(raw, by_alias=True, by_name=False)
    except ValidationError:
        return None
    return verdict if verdict.request_id == current else None
