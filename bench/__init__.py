"""Benchmarks of the worker against raw Triton and FiftyOne's ``apply_model`` (``python -m bench``)."""
