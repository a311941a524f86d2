"""CIFARFLOW_NO_SKIP=1 (CI sets it): every skip fails instead, whether a test, a fixture or a whole file skipped (a
missing Chromium, SLURM cluster, TensorBoard or JAX alike), so a run cannot pass by leaving out what it could not run.
Hooks of tests/conftest.py; `pytest -p skips` loads them alone."""

import os

import pytest

SWITCH = "CIFARFLOW_NO_SKIP"


def no_skip() -> bool:
    value = os.environ.get(SWITCH, "0")
    if value not in ("0", "1"):
        raise pytest.UsageError(f"{SWITCH} must be 1 (every skip fails) or 0 (skips allowed), not {value!r}")
    return value == "1"


def pytest_configure(config: pytest.Config) -> None:
    no_skip()  # a misspelt value stops the run before any test, in one line


def failed_if_skipped(report):
    if report.skipped and not hasattr(report, "wasxfail") and no_skip():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{reason} -- and {SWITCH}=1 makes every skip a failure"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    return failed_if_skipped((yield))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    return failed_if_skipped((yield))
