"""Which GitHub run counts (ci_select), Link paging (github.next_link / same_origin), the
publish_workflow key, and what a Tushare reply code means — plain values, and GitHub's own
example bodies (tests/data/github, @octokit/openapi) as parser inputs."""
from __future__ import annotations

import copy

import pytest

from tests import github_schema as schema
from twilight_ops import ci_select
from twilight_ops.builders import tushare
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import BadInput
from twilight_ops.github import next_link, same_origin
from twilight_ops.phases.tag_push import Poll, decide

TAG = "v0.3.0-w4-cutover"
PUBLISH = ".github/workflows/publish.yml"
D = "sha256:" + "a" * 64


def run(id_, name, path, status="completed", conclusion="success", created="2026-05-11T02:00:00Z", branch=TAG):
    return {"id": id_, "name": name, "path": path, "status": status, "conclusion": conclusion, "created_at": created,
            "head_branch": branch, "html_url": f"https://github.com/o/r/actions/runs/{id_}"}


# ---- the publish workflow's run

def test_a_later_failing_codeql_run_on_the_tag_is_not_the_publish_run():
    runs = [run(2, "CodeQL", ".github/workflows/codeql.yml", conclusion="failure", created="2026-05-11T02:00:05Z"),
            run(1, "publish", PUBLISH, status="in_progress", conclusion=None)]
    assert ci_select.publish_run(runs, PUBLISH, TAG)["id"] == 1
    assert ci_select.others_seen(runs, PUBLISH, TAG) == ["CodeQL (.github/workflows/codeql.yml) failure"]


@pytest.mark.parametrize("wanted", [PUBLISH, "publish.yml", "publish"])
def test_the_workflow_by_path_file_name_or_name(wanted):
    assert ci_select.workflow_matches(run(1, "publish", PUBLISH), wanted)
    assert not ci_select.workflow_matches(run(1, "CI", ".github/workflows/ci.yml"), wanted)


def test_matching_is_exact():
    r = run(1, "publish image", ".github/workflows/publish.yml@refs/tags/v1")     # a ref suffix is dropped
    assert ci_select.workflow_matches(r, PUBLISH) and ci_select.workflow_matches(r, "publish image")
    assert not ci_select.workflow_matches(r, "publish") and not ci_select.workflow_matches(r, "workflows/publish.yml")
    assert not ci_select.workflow_matches({"name": None, "path": None}, "")


def test_newest_publish_run_of_the_tag_wins_and_other_tags_are_ignored():
    runs = [run(5, "publish", PUBLISH, branch="main", created="2026-05-12T00:00:00Z"),
            run(3, "publish", PUBLISH, conclusion="failure", created="2026-05-11T01:00:00Z"),
            run(4, "publish", PUBLISH, status="queued", conclusion=None, created="2026-05-11T03:00:00Z")]
    assert ci_select.publish_run(runs, PUBLISH, TAG)["id"] == 4
    assert ci_select.publish_run(runs, "deploy.yml", TAG) is None
    assert ci_select.publish_run([], PUBLISH, TAG) is None


@pytest.mark.parametrize("conclusion", ["failure", "cancelled", "timed_out", "action_required", "neutral", "skipped",
                                        "stale", "startup_failure", "something_new"])
def test_every_end_but_success_is_failed_at_once(conclusion):
    assert ci_select.outcome("completed", conclusion) == "failed"
    assert decide(Poll("completed", conclusion, "u", D)) == "failed"


@pytest.mark.parametrize("status,conclusion,out", [
    ("queued", "", "wait"), ("in_progress", "", "wait"), ("waiting", "", "wait"), ("pending", "", "wait"),
    ("completed", "", "wait"), ("completed", "success", "success"), ("", "", "wait"),
    ("action_required", "action_required", "failed")])
def test_outcome(status, conclusion, out):
    assert ci_select.outcome(status, conclusion) == out


# ---- check runs

def check(id_, name, status="completed", conclusion="success", started="2026-05-08T02:10:00Z"):
    return {"id": id_, "name": name, "status": status, "conclusion": conclusion, "started_at": started}


def test_a_queued_rerun_beside_an_older_success_is_the_newest():
    runs = [check(10, "integration"), check(11, "integration", "queued", None, None), check(12, "lint")]
    assert ci_select.newest_check_run(runs, "integration")["id"] == 11


def test_newest_check_run_by_id_then_start():
    runs = [check(20, "integration", conclusion="failure", started="2026-05-08T03:00:00Z"), check(21, "integration")]
    assert ci_select.newest_check_run(runs, "integration")["id"] == 21
    assert ci_select.newest_check_run(runs, "other") is None


def test_official_check_run_example_parses():
    body = schema.example("check-run-paginated")
    assert body["total_count"] == len(body["check_runs"]) == 1
    found = ci_select.newest_check_run(body["check_runs"], "mighty_readme")
    assert (found["status"], found["conclusion"], found["app"]["slug"]) == ("completed", "neutral", "octoapp")


def test_official_workflow_run_examples_parse():
    page = schema.example("workflow-run-paginated")
    one = schema.example("workflow-run")
    for r in [*page["workflow_runs"], one]:
        assert r["path"].endswith("@main")                 # GitHub's example: the path carries the ref
        assert ci_select.workflow_matches(r, r["path"]) and ci_select.workflow_matches(r, r["name"])
        assert ci_select.workflow_matches(r, r["path"].split("@")[0])
        picked = ci_select.publish_run([r], r["path"], r["head_branch"])
        assert picked is r
        assert ci_select.outcome(str(r["status"] or ""), str(r["conclusion"] or "")) in ("wait", "success", "failed")
    assert (one["status"], one["conclusion"]) == ("queued", None)
    assert ci_select.outcome(one["status"], "") == "wait"
    ended = {**one, "status": "completed", "conclusion": "neutral"}             # neutral: done, and no publish
    assert ci_select.outcome(ended["status"], ended["conclusion"]) == "failed"


def test_official_pull_request_example_has_what_preflight_reads():
    pull = schema.example("pull-request")
    assert isinstance(pull["merged"], bool) and pull["state"] in ("open", "closed") and len(pull["merge_commit_sha"]) == 40
    assert isinstance(pull["title"], str)


def test_the_official_examples_mostly_fit_their_own_schemas():
    assert schema.validate(schema.CHECK_RUNS, schema.example("check-run-paginated")) == []
    assert schema.validate(schema.WORKFLOW_RUNS, schema.example("workflow-run-paginated")) == []
    assert schema.validate(schema.WORKFLOW_RUN, schema.example("workflow-run")) == []
    # GitHub's own pull-request example leaves out a team's `type`, which team-simple requires
    assert schema.validate(schema.PULL, schema.example("pull-request")) == ["requested_teams/0: 'type' is a required property"]


# ---- Link paging

@pytest.mark.parametrize("header,url", [
    ('<https://api.github.com/resource?page=2>; rel="next", <https://api.github.com/resource?page=5>; rel="last"',
     "https://api.github.com/resource?page=2"),
    ('<https://api.github.com/r?page=1>; rel="prev", <https://api.github.com/r?page=3>; rel="next", '
     '<https://api.github.com/r?page=4>; rel="last", <https://api.github.com/r?page=1>; rel="first"',
     "https://api.github.com/r?page=3"),
    ('<https://api.github.com/r?page=4>; rel="last", <https://api.github.com/r?page=2>;rel=next', "https://api.github.com/r?page=2"),
    ('<https://api.github.com/r?page=1>; rel="prev", <https://api.github.com/r?page=1>; rel="first"', None),
    ("", None), (None, None), ("garbage", None),
])
def test_next_link(header, url):
    assert next_link(header) == url


@pytest.mark.parametrize("url,base,ok", [
    ("https://api.github.com/repos/o/r/check-runs?page=2", "https://api.github.com", True),
    ("https://api.github.com.evil.example/repos", "https://api.github.com", False),
    ("http://api.github.com/repos", "https://api.github.com", False),
    ("https://user:pw@api.github.com/repos", "https://api.github.com", False),
    ("https://ghe.example/api/v3/repos/o/r", "https://ghe.example/api/v3", True),
    ("https://ghe.example/other/repos", "https://ghe.example/api/v3", False),
    ("http://127.0.0.1:8123/repos/x?page=2", "http://127.0.0.1:8123", True),
    ("http://127.0.0.1:9999/repos/x?page=2", "http://127.0.0.1:8123", False),
])
def test_next_pages_stay_on_the_api_origin(url, base, ok):
    assert same_origin(url, base) is ok


# ---- config

def cfg(**over):
    c = copy.deepcopy(DEFAULTS)
    c.update(over)
    return c


def test_publish_workflow_default_and_override():
    assert load_settings(cfg()).publish_workflow == ".github/workflows/publish.yml"
    assert load_settings(cfg(publish_workflow="Publish image")).publish_workflow == "Publish image"


@pytest.mark.parametrize("value", ["", " publish", "a\nb", "/etc/passwd", ".github/../x.yml", 5, None])
def test_bad_publish_workflow_is_one_line_exit_2(value):
    with pytest.raises(BadInput) as e:
        load_settings(cfg(publish_workflow=value))
    assert e.value.exit_code == 2 and "publish_workflow" in e.value.line() and "\n" not in e.value.line()


# ---- Tushare's reply codes

def test_a_bad_tushare_token_is_said_plainly():
    problem, fix = tushare.reply_problem(40101, "您的token不对，请确认。")
    assert problem == "the Tushare token is wrong or expired (Tushare answered code 40101: 您的token不对，请确认。)"
    assert "TUSHARE_TOKEN" in fix
    assert "rate-limited" in tushare.reply_problem(40203, "抱歉，您每分钟最多访问该接口1次")[0]
    assert tushare.reply_problem(-2001, "x")[0] == "Tushare answered code -2001: x"
