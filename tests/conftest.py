"""Shared pytest set-up: fixtures live in tests/fixtures/ and are loaded as plugins."""

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.services",
    "tests.fixtures.operator",
    "tests.fixtures.browser",
    "tests.fixtures.kueue",
    "tests.fixtures.realnode",
]
