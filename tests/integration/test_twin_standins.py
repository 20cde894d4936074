"""The twin's preflight parts for real: the GitHub and Tushare stand-ins (their own process),
the twilight-drive repos (real git) and every preflight switch, through `inv`."""
from __future__ import annotations

import json
import os
import subprocess

import httpx
import pytest

from tests import github_schema as schema
from tests.conftest import TWIN_DIR, inv
from twilight_ops.github import next_link
from twilight_ops.secret import Secret
from twilight_ops.twin import build, drive_repos, github_api, preflight_faults, standins
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

REPO = "/repos/lacatfly/twilight-drive"

# Runs on tvps as the twin account: reads TUSHARE_TOKEN from ~/twilight/.env itself (the token
# never leaves tvps, never in argv), POSTs trade_cal, prints Tushare's reply.  The token to use
# comes from the first stdin line: "env" (the .env's) or a literal wrong one.
TUSHARE_CALL = r"""
import json, os, urllib.request
URL = {url!r}
WHICH = {which!r}
token = WHICH
if WHICH == "env":
    for line in open(os.path.expanduser("~/twilight/.env")):
        k, _, v = line.strip().partition("=")
        if k == "TUSHARE_TOKEN":
            token = v
body = json.dumps({{"api_name": "trade_cal", "token": token, "fields": "",
                   "params": {{"exchange": "SSE", "start_date": "20260504", "end_date": "20260511"}}}}).encode()
req = urllib.request.Request(URL, data=body, headers={{"Content-Type": "application/json"}})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
print(opener.open(req, timeout=10).read().decode())
"""


@pytest.fixture(scope="module")
def st(twin):
    state = load_or_new(TWIN_DIR)
    yield state
    preflight_faults.clear(load_or_new(TWIN_DIR))


@pytest.fixture(scope="module")
def gh(st):
    token = st.github_token_file.read_text().strip()
    with httpx.Client(base_url=st.github_api, trust_env=False, timeout=10,
                      headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                               "X-GitHub-Api-Version": "2022-11-28"}) as client:
        yield client


def tushare_via_tvps(ex, st, which: str = "env") -> dict:
    res = ex.run(["python3", "-"], stdin=TUSHARE_CALL.format(url=st.tushare_url, which=which), timeout=30)
    assert "python3 -" == res.command
    return json.loads(res.stdout)


def tvps_head(ex) -> str:
    return ex.run(["git", "-C", ex.expand("~/twilight/source"), "rev-parse", "HEAD"]).stdout.strip()


def local_git(st, *args: str) -> str:
    return drive_repos.git(st.operator_clone, *args)


def switch(*args: str) -> subprocess.CompletedProcess:
    r = inv("twin.preflight-fault", *args, "--dir", str(TWIN_DIR))
    assert r.returncode == 0, r.stderr
    return r


def assert_clean(st, gh, ex) -> None:
    w4, v020 = st.drive_commits["w4"], st.drive_commits["v0.2.0"]
    assert all(gh.get(f"{REPO}/pulls/{n}").json()["merged"] for n in (*github_api.DEPENDENCY_PRS, github_api.LIFESPAN_PR))
    runs = gh.get(f"{REPO}/commits/{w4}/check-runs").json()["check_runs"]
    assert {(r["name"], r["conclusion"]) for r in runs} >= {(github_api.INTEGRATION_CHECK, "success")}
    assert tushare_via_tvps(ex, st)["code"] == 0
    assert drive_repos.commits(st.origin_repo) == {"v0.2.0": v020, "main": w4}
    local_git(st, "fetch", "-q", "origin")
    assert local_git(st, "rev-parse", "main", "origin/main").split() == [w4, w4]
    assert tvps_head(ex) == w4


# ---- GitHub stand-in

def test_github_refuses_without_the_token(st):
    with httpx.Client(base_url=st.github_api, trust_env=False, timeout=10) as client:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "token nope"}):
            r = client.get(f"{REPO}/pulls/38", headers=headers)
            assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
        token = st.github_token_file.read_text().strip()
        assert client.get(f"{REPO}/pulls/38", headers={"Authorization": f"token {token}"}).status_code == 200


def test_github_token_file_is_private(st):
    assert st.github_token_file.stat().st_mode & 0o777 == 0o600


def test_github_pulls_merged_and_404(gh):
    for n in (*github_api.DEPENDENCY_PRS, github_api.LIFESPAN_PR):
        pull = gh.get(f"{REPO}/pulls/{n}").json()
        assert (pull["number"], pull["state"], pull["merged"]) == (n, "closed", True)
        assert pull["merged_at"] and len(pull["merge_commit_sha"]) == 40
    r = gh.get(f"{REPO}/pulls/40")
    assert r.status_code == 404 and r.json()["message"] == "Not Found"
    assert r.headers["content-type"].startswith("application/json")


def test_github_pull_list_over_http(gh, st):
    r = gh.get(f"{REPO}/pulls", params={"state": "all", "sort": "created", "direction": "desc", "per_page": 100})
    assert r.status_code == 200 and "link" not in r.headers
    assert schema.validate(schema.PULLS, r.json()) == []
    assert [p["number"] for p in r.json()] == sorted((*github_api.DEPENDENCY_PRS, github_api.LIFESPAN_PR), reverse=True)
    r = gh.get(f"{REPO}/pulls", params={"state": "all", "per_page": 4})
    assert len(r.json()) == 4 and next_link(r.headers["link"]) == f"{st.github_api}{REPO}/pulls?state=all&per_page=4&page=2"


def test_github_check_runs_on_the_cutover_commit(gh, st):
    body = gh.get(f"{REPO}/commits/{st.drive_commits['w4']}/check-runs").json()
    assert body["total_count"] == len(body["check_runs"]) >= 2
    (integ,) = [r for r in body["check_runs"] if r["name"] == github_api.INTEGRATION_CHECK]
    assert (integ["status"], integ["conclusion"], integ["head_sha"]) == ("completed", "success", st.drive_commits["w4"])
    assert gh.get(f"{REPO}/commits/{'0' * 40}/check-runs").status_code == 422


def test_github_actions_runs(gh, st):
    w4 = st.drive_commits["w4"]
    body = gh.get(f"{REPO}/actions/runs", params={"head_sha": w4, "branch": "main"}).json()  # tag pushes run CI too
    assert body["total_count"] == 1
    (run,) = body["workflow_runs"]
    assert (run["head_sha"], run["head_branch"], run["status"], run["conclusion"]) == (w4, "main", "completed", "success")
    assert gh.get(f"{REPO}/actions/runs", params={"branch": "v0.2.0", "event": "push"}).json()["total_count"] == 1
    assert gh.get(f"{REPO}/actions/runs/{run['id']}").json()["html_url"] == run["html_url"]
    assert gh.get(f"{REPO}/actions/runs/1").status_code == 404


def test_github_serves_a_run_written_to_its_state_file(gh, st):
    """A CI simulation appends/updates runs by writing the state file; no restart."""
    sha = st.drive_commits["w4"]
    run = github_api.workflow_run(st.github_repo, 9_100_001, sha, "v9.9.9-state-file", status="in_progress",
                                  created_at="2026-06-01T00:00:00Z")  # a tag no twin CI run uses
    standins.update_github_state(st.base, lambda s: s["workflow_runs"].append(run))
    try:
        runs = gh.get(f"{REPO}/actions/runs", params={"branch": "v9.9.9-state-file"}).json()["workflow_runs"]
        assert [(r["id"], r["status"], r["conclusion"]) for r in runs] == [(9_100_001, "in_progress", None)]

        def complete(s: dict) -> None:
            for r in s["workflow_runs"]:
                if r["id"] == 9_100_001:
                    r.update(status="completed", conclusion="success")

        standins.update_github_state(st.base, complete)
        assert gh.get(f"{REPO}/actions/runs/9100001").json()["conclusion"] == "success"
    finally:
        standins.update_github_state(st.base, lambda s: {**s, "workflow_runs": [r for r in s["workflow_runs"] if r["id"] != 9_100_001]})


# ---- Tushare stand-in, called from tvps

def test_tushare_right_token_from_tvps(ex, st):
    reply = tushare_via_tvps(ex, st)
    assert reply["code"] == 0 and reply["msg"] == ""
    assert reply["data"]["fields"] == ["exchange", "cal_date", "is_open", "pretrade_date"]
    assert reply["data"]["items"][0] == ["SSE", "20260511", 1, "20260508"]
    assert len(reply["data"]["items"]) == 8


def test_tushare_wrong_token_from_tvps(ex, st):
    reply = tushare_via_tvps(ex, st, which="not-the-token")
    assert (reply["code"], reply["msg"], reply["data"]) == (40101, "您的token不对，请确认。", None)


def test_tushare_token_never_logged(st):
    env = (st.remote_root / ".env").read_text()
    token = [line.split("=", 1)[1] for line in env.splitlines() if line.startswith("TUSHARE_TOKEN=")][0]
    gh_token = st.github_token_file.read_text().strip()
    log = standins.StandinPaths.under(st.base).log.read_text()
    assert "POST / " in log and token not in log and gh_token not in log
    assert str(Secret(token)) == "***"


# ---- the repos

def test_repos_tag_clone_and_tvps_pin(ex, st):
    w4, v020 = st.drive_commits["w4"], st.drive_commits["v0.2.0"]
    assert local_git(st, "rev-parse", "v0.2.0^{commit}") == v020
    assert local_git(st, "cat-file", "-t", "v0.2.0") == "tag"
    assert local_git(st, "rev-parse", "origin/main") == w4 and local_git(st, "rev-parse", "main") == w4
    assert local_git(st, "log", "-1", "--format=%s", "main").startswith("W4")
    assert "close_raw" in local_git(st, "show", "main:skill/stock-research/SKILL.md")
    assert local_git(st, "config", "--local", "user.email") == drive_repos.IDENTITY["user.email"]
    head = tvps_head(ex)
    assert head == w4
    src = ex.expand("~/twilight/source")
    assert ex.run(["git", "-C", src, "symbolic-ref", "-q", "HEAD"], check=False).exited == 1  # detached
    assert ex.run(["git", "-C", src, "status", "--porcelain"]).stdout == ""  # compose.yml as committed
    assert (st.tvps_source / "deploy/compose.yml").read_text() == build.render_compose(st)


def test_install_skill_script(st, tmp_path):
    env = {**os.environ, "HERMES_HOME": str(tmp_path / "hermes")}
    r = subprocess.run(["bash", str(st.operator_clone / "scripts/install-skill.sh")], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "skill installed: stock-research"
    installed = (tmp_path / "hermes/skills/stock-research/SKILL.md").read_text()
    assert installed.startswith("---\nname: stock-research\n") and "version: 0.3.0" in installed


def test_twin_status_records_the_parts(st):
    r = inv("twin.status", "--dir", str(TWIN_DIR))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["standins"]["alive"] is True
    assert report["github"] == {"api": st.github_api, "repo": "lacatfly/twilight-drive", "token_file": str(st.github_token_file)}
    assert report["tushare"]["url"] == st.tushare_url
    assert report["git"]["operator_clone"] == str(st.operator_clone)
    assert preflight_faults.preflight_config(st)["local_repo"] == build.settings_for(st.invoke_yaml).local_repo.as_posix()


def test_second_up_reuses_everything(st):
    pid = standins.StandinPaths.under(st.base).pidfile.read_text()
    again = build.up(TWIN_DIR, say=lambda line: None)
    assert again.drive_commits == st.drive_commits
    assert (again.github_port, again.tushare_port) == (st.github_port, st.tushare_port)
    assert standins.StandinPaths.under(st.base).pidfile.read_text() == pid


# ---- the switches (each one, then --clear)

def test_switch_bad_input():
    r = inv("twin.preflight-fault", "--name", "nope", "--dir", str(TWIN_DIR))
    assert r.returncode == 2 and "unknown" in r.stderr and "Traceback" not in r.stderr
    r = inv("twin.preflight-fault", "--dir", str(TWIN_DIR))
    assert r.returncode == 2 and "--clear" in r.stderr
    r = inv("twin.preflight-fault", "--name", "pr-unmerged", "--pr", "40", "--dir", str(TWIN_DIR))
    assert r.returncode == 2 and "#40" in r.stderr


def test_switch_pr_unmerged(gh, st, ex):
    switch("--name", "pr-unmerged", "--pr", "43")
    pull = gh.get(f"{REPO}/pulls/43").json()
    assert (pull["state"], pull["merged"], pull["merged_at"]) == ("open", False, None)
    assert gh.get(f"{REPO}/pulls/44").json()["merged"] is True
    listed = {p["number"]: p for p in gh.get(f"{REPO}/pulls", params={"state": "all"}).json()}
    assert (listed[43]["state"], listed[43]["merged_at"]) == ("open", None) and listed[44]["merged_at"]
    switch("--clear")
    assert_clean(st, gh, ex)


def test_switch_check_run_failed(gh, st, ex):
    switch("--name", "check-run-failed")
    runs = gh.get(f"{REPO}/commits/{st.drive_commits['w4']}/check-runs").json()["check_runs"]
    assert {r["name"]: r["conclusion"] for r in runs}[github_api.INTEGRATION_CHECK] == "failure"
    switch("--clear")
    assert_clean(st, gh, ex)


def test_switch_tushare_token_invalid(gh, st, ex):
    switch("--name", "tushare-token-invalid")
    assert tushare_via_tvps(ex, st)["code"] == 40101
    switch("--clear")
    assert_clean(st, gh, ex)


def test_switch_source_pinned_elsewhere(gh, st, ex):
    switch("--name", "source-pinned-elsewhere")
    assert tvps_head(ex) == st.drive_commits["v0.2.0"]
    owner = ex.run(["stat", "-c", "%U", ex.expand("~/twilight/source/.git/HEAD")]).stdout.strip()
    assert owner == st.user
    switch("--clear")
    assert_clean(st, gh, ex)


def test_switch_install_skill_outdated(gh, st, ex):
    switch("--name", "install-skill-outdated")
    switch("--name", "install-skill-outdated")  # a second time pushes nothing more
    new = drive_repos.commits(st.origin_repo)["main"]
    assert new != st.drive_commits["w4"]
    assert drive_repos.git(st.origin_repo, "rev-list", "--count", f"{st.drive_commits['w4']}..main") == "1"
    local_git(st, "fetch", "-q", "origin")
    assert local_git(st, "diff", "--name-only", "main", "origin/main") == "scripts/install-skill.sh"
    assert local_git(st, "rev-list", "--count", "main..origin/main") == "1"
    assert tvps_head(ex) == new  # the cutover commit moved; tvps follows it
    runs = gh.get(f"{REPO}/commits/{new}/check-runs").json()["check_runs"]
    assert {r["name"]: r["conclusion"] for r in runs}[github_api.INTEGRATION_CHECK] == "success"
    switch("--clear")
    assert_clean(st, gh, ex)
    assert gh.get(f"{REPO}/commits/{new}/check-runs").status_code == 422


def test_switch_local_main_behind(gh, st, ex):
    switch("--name", "local-main-behind")
    local_git(st, "fetch", "-q", "origin")
    assert local_git(st, "rev-list", "--count", "main..origin/main") == "1"
    assert local_git(st, "diff", "main", "origin/main", "--", "scripts/install-skill.sh") == ""
    assert tvps_head(ex) == st.drive_commits["w4"]
    switch("--clear")
    assert_clean(st, gh, ex)


def test_clear_on_a_clean_twin_changes_nothing(gh, st, ex):
    before = standins.read_github_state(st.base)
    switch("--clear")
    assert standins.read_github_state(st.base) == before
    assert_clean(st, gh, ex)
