"""Issue 22: preflight's dependency-PR check is one request, the list of the repo's newest PRs
(`GET …/pulls?state=all&sort=created&direction=desc&per_page=100`), through the twin's GitHub
stand-in behind the twin's own delaying relay (a real slow link), where it was ten GETs (one per PR).
PRs the list lacks get their own GETs, sent at once on the one httpx client: they start within one
round trip of each other.  The verdict and its message, in PR order, are what the single GETs gave."""
from __future__ import annotations

import copy
import json
import time
from urllib.parse import urlsplit

import pytest
import yaml

from twilight_ops import github, trace
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.phases import preflight
from twilight_ops.results import Status
from twilight_ops.target import Target
from twilight_ops.twin import github_api, preflight_faults, relay
from twilight_ops.twin.procs import free_port
from twilight_ops.twin.state import load_or_new

from tests.conftest import TWIN_DIR

pytestmark = pytest.mark.twin

RTT_MS = 400


@pytest.fixture
def slow_github(twin, tmp_path):
    """The twin's settings with github_api behind a relay of RTT_MS (stopped after the test)."""
    raw = copy.deepcopy(DEFAULTS)
    raw.update((yaml.safe_load(twin.invoke_yaml.read_text()) or {}).get("twilight", {}))
    listen = free_port()
    relay.start(tmp_path, RTT_MS, [relay.Route(listen, "127.0.0.1", int(urlsplit(raw["github_api"]).port or 0))])
    raw["github_api"] = f"http://127.0.0.1:{listen}"
    try:
        yield raw
    finally:
        relay.stop(tmp_path)


@pytest.fixture
def st(twin):
    preflight_faults.clear(load_or_new(TWIN_DIR))
    yield load_or_new(TWIN_DIR)
    preflight_faults.clear(load_or_new(TWIN_DIR))


def http(path) -> list[tuple[float, str, str]]:
    """(time, method, path) of each HTTP request in a trace (no query string is recorded)."""
    return [(r["t"], r["op"], r["path"]) for r in map(json.loads, path.read_text().splitlines()) if r["side"] == "http"]


LIST = f"/repos/{github_api.OWNER_REPO}/pulls"


def check(raw: dict):
    settings = load_settings(raw)
    t = Target(settings, announce=None)
    with github.GitHub(settings, github.token(settings, t.local)) as gh:
        return preflight._guard("dependency_prs", preflight.dependency_prs, t, gh)   # as run() calls it


def test_the_pr_check_is_one_request_over_a_slow_link(slow_github, st, tmp_path, monkeypatch):
    traced = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(traced))
    trace.install()
    started = time.monotonic()
    row = check(slow_github)
    took = time.monotonic() - started
    assert row.status is Status.PASS and row.reason == f"10 PRs merged (incl. T2.7 #{github_api.LIFESPAN_PR})"
    assert [(op, path) for _t, op, path in http(traced)] == [("GET", LIST)]     # was ten GET …/pulls/{n}
    # a connect and one answer: 2 RTT through the relay (the ten GETs at once took 3, a loop 10 or more)
    assert took < 5 * RTT_MS / 1000


def test_unmerged_and_missing_prs_are_named_in_pr_order_as_the_loop_named_them(slow_github, st, tmp_path, monkeypatch):
    preflight_faults.pr_unmerged(st, 47)
    preflight_faults.pr_unmerged(st, 41)
    slow_github["dependency_prs"] = "99,41,38,47,12"
    traced = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(traced))
    trace.install()
    row = check(slow_github)
    assert row.status is Status.FAIL
    assert row.reason == (f"not merged: #41 (open: {github_api.PR_TITLES[41]}), #47 (open: {github_api.PR_TITLES[47]}); "
                          "not found: #99, #12")
    assert row.evidence["merged"] == [38, 45]
    assert row.evidence["not_found"] == [99, 12] and row.next_step == "merge them first (runbook §0: do not start)"
    # the reopened PRs come from the list (it reads the state the switch changed); only the two numbers
    # it lacks get a GET of their own (404), both sent at once after it
    requests = http(traced)
    assert [(op, path) for _t, op, path in requests[:1]] == [("GET", LIST)]
    assert sorted(path for _t, _op, path in requests[1:]) == [f"{LIST}/12", f"{LIST}/99"]
    assert abs(requests[2][0] - requests[1][0]) < RTT_MS / 1000


def test_a_list_github_refuses_is_one_line(slow_github, st):
    slow_github["github_repo"] = "lacatfly/no-such-repo"
    row = check(slow_github)
    assert row.status is Status.FAIL
    assert (row.reason, row.next_step) == ("GitHub answered HTTP 404 for the pull requests", "retry; check GitHub's status page")


def test_a_wrong_token_is_the_one_line_it_was(slow_github, st, tmp_path):
    bad = tmp_path / "gh-token"
    bad.write_text("not-the-token\n")
    bad.chmod(0o600)
    slow_github["github_token_file"] = str(bad)
    row = check(slow_github)
    assert row.status is Status.FAIL
    assert row.reason == "GitHub answered 401 Bad credentials: the GitHub token is wrong or expired"
    assert "not-the-token" not in json.dumps(row.to_json())
