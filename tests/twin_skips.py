"""Skipped twin tests are loud: the run ends by saying how many twin tests were skipped
and why, and fails when the twin could have run (root) and the run requires it
(CI=true, as .ci/run sets, or TWILIGHT_REQUIRE_TWIN=1).

Loaded by tests/conftest.py (its hooks are imported there); usable alone with
`pytest -p tests.twin_skips`."""
from __future__ import annotations

import os
from collections import Counter

import pytest

MARK = "twin"
_ran: set[str] = set()
_skipped: dict[str, str] = {}


def twin_required() -> bool:
    ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    return os.geteuid() == 0 and (ci or os.environ.get("TWILIGHT_REQUIRE_TWIN") == "1")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if MARK not in report.keywords:
        return
    _ran.add(report.nodeid)
    if report.skipped and report.nodeid not in _skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        _skipped[report.nodeid] = reason.removeprefix("Skipped: ")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and twin_required() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _ran:
        return
    tr = terminalreporter
    if not _skipped:
        tr.write_sep("-", f"twin tests: {len(_ran)} run, none skipped")
        return
    tr.write_sep("=", f"{len(_skipped)} of {len(_ran)} twin tests SKIPPED", red=True, bold=True)
    for reason, n in Counter(_skipped.values()).most_common():
        tr.write_line(f"  {n} skipped: {reason}")
    if twin_required():
        tr.write_line("  this run FAILS: the twin can run here (root) and CI=true / TWILIGHT_REQUIRE_TWIN=1 require it",
                      red=True, bold=True)
