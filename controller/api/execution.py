"""The execution part of the spec: sharding, batching, pod placement and retry limits of the worker Job."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from controller.api.common import (
    LABEL_KEY_MESSAGE,
    LABEL_VALUE_PATTERN,
    ApiModel,
    DnsSubdomain,
    Quantity,
    ResourceRequirements,
    Toleration,
    cel_rule,
    cel_rules,
    is_label_key,
    label_key_rule,
)

QueueName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE_PATTERN)]
NODE_SELECTOR_RULES = cel_rules(
    cel_rule(f"self.all(k, {label_key_rule('k')})", f"every nodeSelector key {LABEL_KEY_MESSAGE}")
)


class ExecutionSpec(ApiModel):
    """How the worker Job runs: one Indexed Job with `shards` completions, `parallelism` pods at a time."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel_rule(
                "!has(self.shards) || self.parallelism <= self.shards",
                "parallelism must not exceed shards",
                field_path=".parallelism",
            )
        )
    )

    parallelism: int = Field(default=1, ge=1, le=1000, description="Worker pods running at once.")
    shards: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Partitions of the target samples (Job completions); default parallelism.",
    )
    batch_size: int = Field(
        default=1, ge=1, le=256, description="Images per inference request (Triton batches further)."
    )
    max_in_flight: int = Field(
        default=16, ge=1, le=1024, description="Inference requests in flight per worker."
    )
    write_batch_size: int = Field(
        default=256, ge=1, le=10000, description="Predictions written to the database at once."
    )
    decode_workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Threads decoding images per worker; default: the worker's CPU count.",
    )
    request_timeout_seconds: float = Field(
        default=30, gt=0, le=3600, description="Timeout of one inference request."
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Worker image; default: the operator's worker image.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Always, IfNotPresent or Never."
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Worker container resources; with an endpoint the worker decodes and needs no GPU.",
    )
    shm_size: Quantity = Field(
        default="1Gi",
        description="Size of the /dev/shm memory volume of the worker pods (too small breaks decoding).",
    )
    node_selector: dict[str, LabelValue] | None = Field(
        default=None,
        max_length=64,
        description="Node labels the worker pods require.",
        json_schema_extra=NODE_SELECTOR_RULES,
    )
    tolerations: list[Toleration] | None = Field(
        default=None, max_length=32, description="Tolerations of the worker pods."
    )
    priority_class_name: DnsSubdomain | None = Field(
        default=None, description="PriorityClass of the worker pods."
    )
    queue_name: QueueName | None = Field(
        default=None,
        description="Kueue LocalQueue of the run's namespace (it must exist, else QueueNotFound); set as the "
        "kueue.x-k8s.io/queue-name label on the Job, which Kueue alone then admits, holds or preempts.",
    )
    backoff_limit_per_index: int = Field(
        default=2, ge=0, le=100, description="Retries of each shard before the run fails."
    )
    startup_timeout_seconds: int = Field(
        default=900,
        ge=10,
        le=604800,
        description="Fail the run when no worker has started this long after the Job started (time "
        "suspended or queued does not count): a missing PVC, PriorityClass or ServiceAccount, an image "
        "that cannot be pulled, a sidecar never ready.",
    )
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Wall-clock limit of the whole Job; exceeding it fails the run."
    )

    @model_validator(mode="after")
    def _parallelism_within_shards(self) -> Self:
        if self.shards is not None and self.parallelism > self.shards:
            raise ValueError("parallelism must not exceed shards")
        bad_keys = [key for key in self.node_selector or {} if not is_label_key(key)]
        if bad_keys:
            raise ValueError(f"nodeSelector key {bad_keys[0]!r}: every nodeSelector key {LABEL_KEY_MESSAGE}")
        return self

    @property
    def effective_shards(self) -> int:
        """Number of shards (Job completions): `shards`, or `parallelism` when unset."""
        return self.shards if self.shards is not None else self.parallelism
