"""Errors that end a worker run: each exits non-zero with a message naming what to fix."""


class FatalError(Exception):
    """The run cannot go on: bad configuration, a model that does not fit, a dataset that is missing."""


class ConfigError(FatalError):
    """The worker configuration is invalid or incomplete."""


class PreflightError(FatalError):
    """Triton or the model is not ready, or the model's metadata does not fit the configured adapter."""
