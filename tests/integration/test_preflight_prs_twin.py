"""Issue 22 item 2: preflight's dependency-PR checks send their GETs at once on the one httpx client,
through the twin's GitHub stand-in behind the twin's own delaying relay (a real slow link): the ten
requests start within one round trip of each other, where a loop would wait a round trip for each
answer; the verdict and its message, in PR order, are what the loop gave."""
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


def pr_gets(path) -> list[float]:
    return [r["t"] for r in map(json.loads, path.read_text().splitlines())
            if r["side"] == "http" and "/pulls/" in r.get("path", "")]


def check(raw: dict):
    settings = load_settings(raw)
    t = Target(settings, announce=None)
    with github.GitHub(settings, github.token(settings, t.local)) as gh:
        return preflight._guard("dependency_prs", preflight.dependency_prs, t, gh)   # as run() calls it


def test_the_pr_checks_go_out_at_once_over_a_slow_link(slow_github, st, tmp_path, monkeypatch):
    traced = tmp_path / "trace.jsonl"
    monkeypatch.setenv("TWILIGHT_TRACE", str(traced))
    trace.install()
    started = time.monotonic()
    row = check(slow_github)
    took = time.monotonic() - started
    assert row.status is Status.PASS and row.reason == f"10 PRs merged (incl. T2.7 #{github_api.LIFESPAN_PR})"
    starts = sorted(pr_gets(traced))
    assert len(starts) == 10
    # a loop starts each GET a full round trip after the one before (it waits for its answer);
    # here the first eight (the pool's bound) start within one round trip of the first
    assert starts[github.PULL_WORKERS - 1] - starts[0] < RTT_MS / 1000
    assert took < 10 * RTT_MS / 1000          # a loop's floor: ten answers one after the other


def test_unmerged_and_missing_prs_are_named_in_pr_order_as_the_loop_named_them(slow_github, st):
    preflight_faults.pr_unmerged(st, 47)
    preflight_faults.pr_unmerged(st, 41)
    slow_github["dependency_prs"] = "99,41,38,47,12"
    row = check(slow_github)
    assert row.status is Status.FAIL
    assert row.reason == (f"not merged: #41 (open: {github_api.PR_TITLES[41]}), #47 (open: {github_api.PR_TITLES[47]}); "
                          "not found: #99, #12")
    assert row.evidence["merged"] == [38, 45]


def test_a_wrong_token_is_the_one_line_it_was(slow_github, st, tmp_path):
    bad = tmp_path / "gh-token"
    bad.write_text("not-the-token\n")
    bad.chmod(0o600)
    slow_github["github_token_file"] = str(bad)
    row = check(slow_github)
    assert row.status is Status.FAIL
    assert row.reason == "GitHub answered 401 Bad credentials: the GitHub token is wrong or expired"
    assert "not-the-token" not in json.dumps(row.to_json())
