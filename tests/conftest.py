"""Shared fixtures: small, fast scenario runs and the golden-file update flag."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


#: Small office: enough to exercise every actor, fast enough for unit tests.
SMALL = {"workstations": 6, "servers": 1, "baseline_days": 2, "detection_days": 1}
