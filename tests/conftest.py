"""Shared pytest set-up: fixtures live in tests/fixtures/ and are loaded as plugins.

`make integration` runs the integration tests in parallel processes (pytest-xdist, `--dist
loadfile`). Each process starts its own real peers on first use (session fixtures: the control
plane, mongod, Triton, the controller, MinIO, Kueue), so no two processes share a peer and a test
that kills or restarts one (mongod, Triton, the controller) disturbs only its own process. A group is
the unit a process takes at a time: one test module, because its tests share module-scoped fixtures
(a CRD, a dataset, a virtualenv) and some rely on running in file order. Modules are handed out
longest first (tests/ordering.py).
"""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.services",
    "tests.fixtures.operator",
    "tests.fixtures.browser",
    "tests.fixtures.kueue",
    "tests.fixtures.realnode",
    "tests.ordering",
]
