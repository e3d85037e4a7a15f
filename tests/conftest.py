"""Shared fixtures: small, fast scenario runs and the golden-file update flag."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture(scope="session")
def default_suite_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of ``egress-harness run`` with every default (suite, detectors, seeds,
    profile), run once per session: slow (~45 s), so only for tests marked ``slow``."""
    from harness.cli import main

    folder = tmp_path_factory.mktemp("default-suite")
    code = main(["run", "--quiet", "--out", str(folder)])
    if code != 0:
        pytest.fail(f"egress-harness run of the default suite exited {code}")
    return folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI (``CI=true``) a skipped ``privileged`` test is a failure: CI has root, network
    namespaces and a Docker engine, so a skip there means the lab tests silently did not run."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and item.get_closest_marker("privileged") is not None
        and os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    ):
        report.outcome = "failed"
        report.longrepr = f"privileged test skipped in CI: {report.longrepr}"
