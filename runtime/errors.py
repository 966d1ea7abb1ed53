"""Errors of the pod programs: `FatalError` and its kinds end a run with a message naming what to fix;
`DecodeError` is one sample that cannot be read, counted and skipped.
"""


class FatalError(Exception):
    """The run cannot go on: bad configuration, a model that does not fit, a dataset that is missing."""


class ConfigError(FatalError):
    """The worker configuration is invalid or incomplete."""


class PreflightError(FatalError):
    """Triton or the model is not ready, or the model's metadata does not fit the configured adapter."""


class DecodeError(Exception):
    """An image that cannot be read or decoded; ``reason`` is a short, countable category."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
