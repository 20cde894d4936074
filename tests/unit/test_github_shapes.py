"""The twin's GitHub stand-in answers with bodies that fit GitHub's published schemas
(tests/data/github, from @octokit/openapi) and pages its lists as GitHub does (Link header)."""
from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import github_schema as schema
from twilight_ops.github import next_link
from twilight_ops.twin import ci_runs, github_api, github_shapes, preflight_faults

MAIN, PREV = "a" * 40, "b" * 40
TOKEN = "ghp_twin_unit"
REPO = "/repos/lacatfly/twilight-drive"
BASE = "http://127.0.0.1:8123"


@pytest.fixture
def state():
    st = github_api.initial_state({"main": MAIN, "v0.2.0": PREV})
    now = dt.datetime(2026, 5, 11, 2, 0, tzinfo=dt.timezone.utc)
    publish = ci_runs.new_run(github_api.OWNER_REPO, 10_000_001, MAIN, "v0.3.0-w4-cutover", now)
    codeql = ci_runs.advance(ci_runs.new_run(github_api.OWNER_REPO, 10_000_002, MAIN, "v0.3.0-w4-cutover", now,
                                             github_shapes.CODEQL), "completed", now, "failure")
    st["workflow_runs"] += [publish, codeql]
    st["check_runs"][MAIN] = [*github_api.other_app_check_runs(github_api.OWNER_REPO, MAIN, 5), *st["check_runs"][MAIN],
                              github_shapes.check_run(github_api.OWNER_REPO, 90_000_021, github_api.INTEGRATION_CHECK, MAIN,
                                                      None, status="queued")]
    return st


def get(state, path, query=""):
    return github_api.respond("GET", path, query, f"Bearer {TOKEN}", state, TOKEN, BASE)


def test_every_pull_fits_the_pull_request_schema(state):
    for n in state["pulls"]:
        status, body, _ = get(state, f"{REPO}/pulls/{n}")
        assert status == 200 and schema.validate(schema.PULL, body) == []
    unmerged = github_api.pull_object("o/r", 7, "t", merged=False, merged_at=None, merge_commit_sha="c" * 40, head_ref="x")
    assert schema.validate(schema.PULL, unmerged) == []


PULL_LIST = "state=all&sort=created&direction=desc&per_page=100"      # what github.GitHub.pull_list asks


def test_the_pull_list_fits_the_published_pull_request_simple_array(state):
    status, body, headers = get(state, f"{REPO}/pulls", PULL_LIST)
    assert status == 200 and isinstance(body, list) and headers == {}
    assert schema.validate(schema.PULLS, body) == []
    assert [p["number"] for p in body] == sorted((*github_api.DEPENDENCY_PRS, github_api.LIFESPAN_PR), reverse=True)
    assert all("merged" not in p and p["merged_at"] and p["state"] == "closed" for p in body)
    whole = get(state, f"{REPO}/pulls/41")[1]
    assert next(p for p in body if p["number"] == 41) == github_shapes.pull_request_simple(whole)


def test_the_schema_check_knows_pull_request_simple():
    # GitHub's own example leaves out a team's `type`, which `team` requires (as its pull-request example does)
    assert schema.validate(schema.PULLS, schema.example("pull-request-simple-items")) == [
        "0/requested_teams/0: 'type' is a required property"]
    item = github_shapes.pull_request_simple(
        github_api.pull_object("o/r", 7, "t", merged=False, merged_at=None, merge_commit_sha="c" * 40, head_ref="x"))
    assert schema.validate(schema.PULLS, [item]) == []
    del item["merged_at"]
    assert schema.validate(schema.PULLS, [item]) == ["0: 'merged_at' is a required property"]


def test_a_reopened_pr_shows_in_the_list_as_in_its_own_get(state):
    preflight_faults.reopen(state, 41)
    _, body, _ = get(state, f"{REPO}/pulls", PULL_LIST)
    listed = next(p for p in body if p["number"] == 41)
    assert (listed["state"], listed["merged_at"]) == ("open", None) == (lambda p: (p["state"], p["merged_at"]))(
        get(state, f"{REPO}/pulls/41")[1])
    assert schema.validate(schema.PULLS, body) == []
    assert [p["number"] for p in get(state, f"{REPO}/pulls")[1]] == [41]                   # state defaults to open
    assert [p["number"] for p in get(state, f"{REPO}/pulls", "state=bogus")[1]] == [41]    # served as open
    assert 41 not in [p["number"] for p in get(state, f"{REPO}/pulls", "state=closed")[1]]


def test_the_pull_list_sorts_and_filters_as_asked(state):
    numbers = sorted(state["pulls"], key=int)
    assert [p["number"] for p in get(state, f"{REPO}/pulls", "state=all&direction=asc")[1]] == list(map(int, numbers))
    assert [p["number"] for p in get(state, f"{REPO}/pulls", "state=all&sort=created")[1]][0] == 48   # desc by default
    assert [p["number"] for p in get(state, f"{REPO}/pulls", "state=all&sort=updated")[1]][0] == 38   # asc by default
    assert [p["number"] for p in get(state, f"{REPO}/pulls", "state=all&head=lacatfly:w4/pr-44")[1]] == [44]
    assert get(state, f"{REPO}/pulls", "state=all&base=release")[1] == []
    assert get(state, "/repos/someone/else/pulls")[0] == 404


def test_the_pull_list_pages_at_most_100_with_a_link_header(state):
    for n in range(1000, 1120):
        state["pulls"][str(n)] = github_api.pull_object(github_api.OWNER_REPO, n, f"pr {n}", merged=False, merged_at=None,
                                                        merge_commit_sha=github_shapes.fake_sha(str(n)), head_ref=f"b{n}",
                                                        created_at=f"2026-06-01T00:{(n - 1000) // 60:02d}:{(n - 1000) % 60:02d}Z")
    status, first, headers = get(state, f"{REPO}/pulls", "state=all&sort=created&direction=desc&per_page=500")
    assert status == 200 and len(first) == 100 and first[0]["number"] == 1119
    assert 45 not in [p["number"] for p in first]                       # the old PRs are on page 2
    nxt = urlsplit(next_link(headers["Link"]))
    _, second, _ = get(state, nxt.path, nxt.query)
    assert len(second) == 30 and second[-1]["number"] == 38
    assert get(state, f"{REPO}/pulls", "per_page=x")[0] == 422


def test_check_runs_of_every_app_and_a_queued_rerun_fit_the_schema(state):
    status, body, _ = get(state, f"{REPO}/commits/{MAIN}/check-runs", "per_page=100")
    assert status == 200 and schema.validate(schema.CHECK_RUNS, body) == []
    assert {r["app"]["slug"] for r in body["check_runs"]} == {"github-actions", "codecov", "sonarqubecloud", "renovate"}
    queued = [r for r in body["check_runs"] if r["status"] == "queued"]
    assert [(r["started_at"], r["conclusion"], r["completed_at"]) for r in queued] == [(None, None, None)]


def test_workflow_runs_of_two_workflows_on_a_tag_fit_the_schema(state):
    status, body, _ = get(state, f"{REPO}/actions/runs", "branch=v0.3.0-w4-cutover")
    assert status == 200 and schema.validate(schema.WORKFLOW_RUNS, body) == []
    assert [(r["name"], r["path"], r["conclusion"]) for r in body["workflow_runs"]] == [
        ("CodeQL", ".github/workflows/codeql.yml", "failure"), ("publish", ".github/workflows/publish.yml", None)]
    for run in state["workflow_runs"]:
        status, one, _ = get(state, f"{REPO}/actions/runs/{run['id']}")
        assert status == 200 and schema.validate(schema.WORKFLOW_RUN, one) == []
        assert one["head_commit"]["id"] == one["head_sha"] and one["repository"]["full_name"] == github_api.OWNER_REPO


def test_every_ci_conclusion_still_fits(state):
    run = ci_runs.new_run("o/r", 3, MAIN, "v1", dt.datetime(2026, 5, 11, tzinfo=dt.timezone.utc))
    for conclusion in ci_runs.CONCLUSIONS:
        done = ci_runs.advance(run, "completed", dt.datetime(2026, 5, 11, 0, 1, tzinfo=dt.timezone.utc), conclusion)
        assert schema.validate(schema.WORKFLOW_RUN, done) == []


def test_the_schema_check_catches_a_missing_field(state):
    run = dict(state["workflow_runs"][0])
    del run["path"]
    assert schema.validate(schema.WORKFLOW_RUN, run) == ["(body): 'path' is a required property"]


def test_lists_page_with_a_link_header(state):
    mine = [r for r in state["check_runs"][MAIN] if not github_api.is_other_app(r)]
    state["check_runs"][MAIN] = [*github_api.other_app_check_runs(github_api.OWNER_REPO, MAIN, 120), *mine]
    path = f"{REPO}/commits/{MAIN}/check-runs"
    status, first, headers = get(state, path, "per_page=100")
    assert status == 200 and len(first["check_runs"]) == 100 and first["total_count"] == 123
    assert headers["Link"] == (f'<{BASE}{path}?per_page=100&page=2>; rel="next", '
                               f'<{BASE}{path}?per_page=100&page=2>; rel="last"')
    nxt = urlsplit(next_link(headers["Link"]))
    status, second, headers2 = get(state, nxt.path, nxt.query)
    assert len(second["check_runs"]) == 23 and next_link(headers2["Link"]) is None
    assert 'rel="prev"' in headers2["Link"] and 'rel="first"' in headers2["Link"]
    names = [r["name"] for r in second["check_runs"]]
    assert github_api.INTEGRATION_CHECK in names
    assert parse_qs(nxt.query) == {"per_page": ["100"], "page": ["2"]}


def test_default_page_is_30_and_one_page_sends_no_link(state):
    state["check_runs"][MAIN] = github_api.other_app_check_runs(github_api.OWNER_REPO, MAIN, 31)
    _, body, headers = get(state, f"{REPO}/commits/{MAIN}/check-runs")
    assert len(body["check_runs"]) == 30 and "Link" in headers
    _, body, headers = get(state, f"{REPO}/commits/{MAIN}/check-runs", "per_page=500")
    assert len(body["check_runs"]) == 31 and headers == {}
    assert get(state, f"{REPO}/commits/{MAIN}/check-runs", "page=x")[0] == 422
    assert get(state, f"{REPO}/commits/{MAIN}/check-runs", "page=9")[1]["check_runs"] == []


def test_other_apps_are_told_apart():
    others = github_api.other_app_check_runs("o/r", MAIN, 4)
    assert all(github_api.is_other_app(r) for r in others)
    assert not github_api.is_other_app(github_shapes.check_run("o/r", 1, "x", MAIN, "success"))
    assert len({r["id"] for r in others}) == 4
