"""The review agent: one long-lived pod per namespace and database Secret that keeps status.review fresh.

A one-shot pass per refresh would pay FiftyOne's start-up (about 3 CPU-seconds,
300 MiB) per run per interval. Instead the controller runs, per namespace and
database Secret, a Deployment of the worker's `review-agent` command (after the
operator's step command, `autolabel-worker` by default) under the namespace's
worker ServiceAccount (the URI from the Secret through the kubelet), and asks it
to serve a run by writing a request (`contract.review_agent.ReviewRequest`) into
the run's result ConfigMap. The agent makes one cheap change check per run
and interval and recomputes only on a change; its verdict (`AgentVerdict`) comes
back here as a `ReviewOutcome`. Every run served by an agent is one of its
(non-controlling) owners, so the garbage collector removes it with the last one.

Pure: names, the Deployment, the request and the outcome of a verdict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from contract.env import SECRET_REF_ENV, Command, Flag
from contract.review_agent import AGENT_LABEL, AgentVerdict, ReviewRequest, read_agent_verdict
from contract.wire import COMPONENT_LABEL
from controller.api import AutoLabelRunSpec
from controller.builders import (
    database_env,
    restricted_pod_security_context,
    restricted_security_context,
    scratch_volume,
)
from controller.names import (
    MANAGED_BY_LABEL,
    MANAGER,
    owner_reference,
    snapshot_config_map_name,
)
from controller.review import ReviewOutcome, ReviewWork
from controller.worker_contract import review_config

AGENT_COMPONENT = "review-agent"
ERROR_SHOWN = 2000
"""Characters of an agent's error kept in status."""


def agent_name(spec: AutoLabelRunSpec) -> str:
    """`alr-review-<secret>-<hash of secret and key>`: one agent per database, a DNS label within 63."""
    ref = spec.dataset.database_secret_ref
    digest = hashlib.sha256(f"{ref.name}/{ref.key}".encode()).hexdigest()[:8]
    stem = ref.name.replace(".", "-")[: 63 - len("alr-review--") - len(digest)].rstrip("-")
    return f"alr-review-{stem}-{digest}"


def agent_owner(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The run as one of the agent's owners; not the controlling one, and no deletion blocking."""
    return {**owner_reference(metadata), "controller": False, "blockOwnerDeletion": False}


def agent_deployment(
    metadata: Mapping[str, Any],
    spec: AutoLabelRunSpec,
    *,
    image: str,
    service_account: str,
    command: list[str],
) -> dict[str, Any]:
    name = agent_name(spec)
    labels = {COMPONENT_LABEL: AGENT_COMPONENT, AGENT_LABEL: name, MANAGED_BY_LABEL: MANAGER}
    ref = spec.dataset.database_secret_ref
    scratch, scratch_mount = scratch_volume()
    container = {
        "name": "agent",
        "image": image,
        "command": [*command, Command.REVIEW_AGENT.value, Flag.AGENT.value, name],
        "env": [
            *database_env(spec, optional=True),
            {"name": SECRET_REF_ENV, "value": f"{ref.name}/{ref.key}"},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "384Mi"}, "limits": {"memory": "1Gi"}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": restricted_security_context(read_only_root=True),
        "volumeMounts": [scratch_mount],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": metadata["namespace"],
            "labels": labels,
            "ownerReferences": [agent_owner(metadata)],
        },
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},  # never two agents writing the same verdicts
            "selector": {"matchLabels": {COMPONENT_LABEL: AGENT_COMPONENT, AGENT_LABEL: name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": service_account,
                    "securityContext": restricted_pod_security_context(),
                    "containers": [container],
                    "volumes": [scratch],
                },
            },
        },
    }


def review_request(metadata: Mapping[str, Any], spec: AutoLabelRunSpec) -> str:
    """The request the agent serves: same text, same request (it recomputes in full on a new one)."""
    return ReviewRequest(
        agent=agent_name(spec),
        generation=int(metadata.get("generation") or 0),
        review=review_config(spec),
        refresh_interval_seconds=spec.review.refresh_interval_seconds,
        snapshot=snapshot_config_map_name(metadata),
    ).to_json()


def outcome(verdict: AgentVerdict) -> ReviewOutcome:
    """What the agent's verdict means for the run: a review pass's result, or its error."""
    if verdict.error:
        return ReviewOutcome(ReviewWork(verdict.generation), error=verdict.error[:ERROR_SHOWN])
    visualized = verdict.aids is not None
    work = ReviewWork(verdict.generation, apply_rules=verdict.rules_applied, visualize=visualized)
    return ReviewOutcome(work, result=verdict)


def parse_verdict(raw: str | None, current: str) -> tuple[str, ReviewOutcome] | None:
    """(computedAt, outcome) of the agent's verdict for the current request; None for none or another."""
    verdict = read_agent_verdict(raw, current)
    return None if verdict is None else (verdict.computed_at, outcome(verdict))
