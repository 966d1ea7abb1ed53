"""Names both sides of the contract use: the worker's commands, environment variables, configuration files."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Command(StrEnum):
    """The commands of the worker's entry point (``python -m worker``) that the controller runs."""

    RUN = "run"  # one shard of the run's Indexed Job
    PROBE = "probe"
    DISCARD = "discard"
    FINALIZE = "finalize"
    REVIEW = "review"
    REVIEW_STATS = "review-stats"
    APPLY_RULES = "apply-rules"
    VISUALIZE = "visualize"
    REVIEW_AGENT = "review-agent"


class Flag(StrEnum):
    """The options of those commands that the controller passes (the worker's argparse takes the same)."""

    CONFIG = "--config"  # the mounted worker configuration
    SKIP_TRITON = "--skip-triton"  # probe: the model is checked by each sidecar worker instead
    REVIEW_AIDS = "--review-aids"  # discard: the saved views and the brain run go too
    PATIENCE = "--patience"  # discard: seconds of database outage it waits out
    APPLY_RULES = "--apply-rules"  # review and finalize: the rules are applied first
    VISUALIZE = "--visualize"  # review: the review aids are created too
    AGENT = "--agent"  # review-agent: the name the controller addresses its requests to


WORKER_CONFIG_ENV: Final = "AUTOLABEL_WORKER_CONFIG"
"""The worker configuration as JSON, for local runs (pods read the mounted file instead)."""
REVIEW_CONFIG_ENV: Final = "AUTOLABEL_REVIEW_CONFIG"
"""The run's review configuration (`contract.review.ReviewConfig`) as JSON, for review and finalize."""
RUN_UID_ENV: Final = "AUTOLABEL_RUN_UID"
"""The run's uid, for logs and for finding a run's processes (the configuration carries it too)."""
DATABASE_URI_ENV: Final = "FIFTYONE_DATABASE_URI"
DATABASE_NAME_ENV: Final = "FIFTYONE_DATABASE_NAME"
DATABASE_ADMIN_ENV: Final = "FIFTYONE_DATABASE_ADMIN"
SECRET_REF_ENV: Final = "AUTOLABEL_DATABASE_SECRET_REF"
"""`<secret name>/<key>` of the database Secret: lets a step name the missing Secret in its verdict."""
S3_ACCESS_KEY_ENV: Final = "AWS_ACCESS_KEY_ID"
S3_SECRET_KEY_ENV: Final = "AWS_SECRET_ACCESS_KEY"
S3_SESSION_TOKEN_ENV: Final = "AWS_SESSION_TOKEN"
"""The S3 credentials as boto3 reads them; the keys of a run's credentials Secret have the same names."""
RESULT_CONFIG_MAP_ENV: Final = "AUTOLABEL_RESULT_CONFIG_MAP"
RESULT_KEY_ENV: Final = "AUTOLABEL_RESULT_KEY"

CONFIG_DIR: Final = "/etc/autolabel"
WORKER_CONFIG_KEY: Final = "worker.json"
"""Key of the run's snapshot ConfigMap holding the worker configuration (mounted under CONFIG_DIR)."""
WORKER_CONFIG_PATH: Final = f"{CONFIG_DIR}/{WORKER_CONFIG_KEY}"
