"""Shared test configuration: the golden-file switch and a deterministic hypothesis profile."""

from __future__ import annotations

import pytest
from hypothesis import settings

import emu

emu.use_threading_layer()  # as the command line does (see emu.threads)

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the files in tests/golden/ from the current code (on purpose only)")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to rewrite golden files."""
    return bool(request.config.getoption("--update-golden"))
