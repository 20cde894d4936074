"""The twin's GitHub and Tushare stand-ins: pure builders, routing, trade_cal (no HTTP, no twin)."""
from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

import pytest

from twilight_ops.errors import BadInput
from twilight_ops.twin import github_api, preflight_faults, tushare_api
from twilight_ops.twin.standins_server import env_value
from twilight_ops.twin.state import TwinState

MAIN = "a" * 40
PREV = "b" * 40
TOKEN = "ghp_twin_unit"
OK = f"Bearer {TOKEN}"


@pytest.fixture
def state():
    return github_api.initial_state({"main": MAIN, "v0.2.0": PREV})


def get(state, path, auth=OK, query=""):
    return github_api.route("GET", path, query, auth, state, TOKEN)


# ---- GitHub: auth

@pytest.mark.parametrize("auth", [None, "", "Bearer", "Bearer wrong", "Basic " + TOKEN, TOKEN, "token  "])
def test_refused_without_the_token(state, auth):
    status, body = get(state, "/repos/lacatfly/twilight-drive/pulls/38", auth=auth)
    assert status == 401
    assert body["message"] == "Bad credentials" and body["documentation_url"].startswith("https://docs.github.com/")


@pytest.mark.parametrize("auth", [f"Bearer {TOKEN}", f"token {TOKEN}", f"bearer {TOKEN}"])
def test_bearer_and_token_schemes_accepted(state, auth):
    assert get(state, "/repos/lacatfly/twilight-drive/pulls/38", auth=auth)[0] == 200


# ---- GitHub: pulls

def test_every_dependency_pr_and_the_lifespan_pr_merged(state):
    for n in (*github_api.DEPENDENCY_PRS, github_api.LIFESPAN_PR):
        status, pull = get(state, f"/repos/lacatfly/twilight-drive/pulls/{n}")
        assert status == 200
        assert pull["number"] == n and pull["merged"] is True and pull["state"] == "closed"
        assert pull["merged_at"].endswith("Z") and len(pull["merge_commit_sha"]) == 40
        assert pull["html_url"] == f"https://github.com/lacatfly/twilight-drive/pull/{n}"
        assert pull["base"]["ref"] == "main" and pull["head"]["ref"]
    assert get(state, f"/repos/lacatfly/twilight-drive/pulls/{github_api.LIFESPAN_PR}")[1]["title"] == "T2.7 lifespan injection"


@pytest.mark.parametrize("path", ["/repos/lacatfly/twilight-drive/pulls/40", "/repos/lacatfly/twilight-drive/pulls/x",
                                  "/repos/someone/else/pulls/38", "/repos/lacatfly/twilight-drive/nothing"])
def test_unknown_is_githubs_404(state, path):
    status, body = get(state, path)
    assert status == 404 and body["message"] == "Not Found" and "documentation_url" in body


def test_pull_object_unmerged_shape():
    pull = github_api.pull_object("o/r", 7, "t", merged=False, merged_at=None, merge_commit_sha="c" * 40, head_ref="x")
    assert (pull["state"], pull["merged"], pull["merged_at"], pull["closed_at"]) == ("open", False, None, None)


# ---- GitHub: check runs

def test_check_runs_on_the_cutover_commit(state):
    status, body = get(state, f"/repos/lacatfly/twilight-drive/commits/{MAIN}/check-runs")
    assert status == 200 and body["total_count"] == len(body["check_runs"]) == 2
    names = {r["name"]: r for r in body["check_runs"]}
    integ = names[github_api.INTEGRATION_CHECK]
    assert "core/tests/integration/test_service_price_route.py" in integ["name"]
    assert (integ["status"], integ["conclusion"], integ["head_sha"]) == ("completed", "success", MAIN)
    assert {"id", "html_url", "started_at", "completed_at"} <= set(integ)


def test_check_runs_by_branch_tag_and_short_sha(state):
    for ref in ("main", MAIN[:7], "v0.2.0"):
        status, body = get(state, f"/repos/lacatfly/twilight-drive/commits/{ref}/check-runs")
        assert status == 200 and body["total_count"] >= 1
    status, body = get(state, f"/repos/lacatfly/twilight-drive/commits/{MAIN}/check-runs",
                       query=urlencode({"check_name": github_api.OTHER_CHECK}))
    assert [r["name"] for r in body["check_runs"]] == [github_api.OTHER_CHECK]


def test_check_runs_unknown_commit_is_422(state):
    status, body = get(state, f"/repos/lacatfly/twilight-drive/commits/{'c' * 40}/check-runs")
    assert status == 422 and body["message"].startswith("No commit found for SHA")


# ---- GitHub: workflow runs

def test_workflow_runs_filters(state):
    status, body = get(state, "/repos/lacatfly/twilight-drive/actions/runs")
    assert status == 200 and body["total_count"] == 2
    run = get(state, "/repos/lacatfly/twilight-drive/actions/runs", query=f"head_sha={MAIN}")[1]["workflow_runs"]
    assert [r["head_sha"] for r in run] == [MAIN]
    assert {"id", "name", "head_branch", "head_sha", "event", "status", "conclusion", "html_url", "created_at",
            "updated_at", "run_attempt"} <= set(run[0])
    assert get(state, "/repos/lacatfly/twilight-drive/actions/runs", query="branch=v0.2.0")[1]["total_count"] == 1
    assert get(state, "/repos/lacatfly/twilight-drive/actions/runs", query="event=workflow_dispatch")[1]["total_count"] == 0
    assert get(state, "/repos/lacatfly/twilight-drive/actions/runs", query="status=success")[1]["total_count"] == 2
    assert get(state, "/repos/lacatfly/twilight-drive/actions/runs", query="status=in_progress")[1]["total_count"] == 0


def test_workflow_runs_newest_first_and_in_progress_has_no_conclusion(state):
    state["workflow_runs"].append(github_api.workflow_run("o/r", 5, "d" * 40, "v0.3.0-w4-cutover",
                                                          status="in_progress", created_at="2026-06-01T00:00:00Z"))
    runs = get(state, "/repos/lacatfly/twilight-drive/actions/runs")[1]["workflow_runs"]
    assert runs[0]["id"] == 5 and runs[0]["conclusion"] is None
    assert get(state, "/repos/lacatfly/twilight-drive/actions/runs", query="status=in_progress")[1]["total_count"] == 1


def test_one_workflow_run(state):
    rid = state["workflow_runs"][0]["id"]
    status, run = get(state, f"/repos/lacatfly/twilight-drive/actions/runs/{rid}")
    assert status == 200 and run["id"] == rid
    assert get(state, "/repos/lacatfly/twilight-drive/actions/runs/123")[0] == 404


def test_state_is_json(state):
    assert json.loads(json.dumps(state)) == state


# ---- Tushare

def test_trade_cal_rows_from_weekdays():
    rows = tushare_api.trade_cal_rows(dt.date(2026, 5, 8), dt.date(2026, 5, 11))  # Fri .. Mon
    assert [r["cal_date"] for r in rows] == ["20260511", "20260510", "20260509", "20260508"]
    assert [r["is_open"] for r in rows] == [1, 0, 0, 1]
    assert [r["pretrade_date"] for r in rows] == ["20260508", "20260508", "20260508", "20260507"]
    assert {r["exchange"] for r in rows} == {"SSE"}


def test_trade_cal_open_only_and_fields():
    data = tushare_api.trade_cal({"start_date": "20260504", "end_date": "20260510", "is_open": "1", "exchange": "SZSE"},
                                 "cal_date,is_open", dt.date(2026, 5, 11))
    assert data["fields"] == ["cal_date", "is_open"] and data["has_more"] is False
    assert [i[0] for i in data["items"]] == ["20260508", "20260507", "20260506", "20260505", "20260504"]


def test_trade_cal_defaults_to_the_last_30_days():
    data = tushare_api.trade_cal({}, None, dt.date(2026, 5, 11))
    assert data["fields"] == list(tushare_api.TRADE_CAL_FIELDS)
    assert data["items"][0][1] == "20260511" and data["items"][-1][1] == "20260411" and len(data["items"]) == 31


def body(**kw):
    return json.dumps({"api_name": "trade_cal", "token": "right", "params": {"start_date": "20260508", "end_date": "20260511"},
                       "fields": "", **kw}).encode()


def test_handle_right_token():
    out = tushare_api.handle(body(), "right", dt.date(2026, 5, 11))
    assert out["code"] == 0 and out["msg"] == "" and out["request_id"]
    assert out["data"]["items"][0] == ["SSE", "20260511", 1, "20260508"]


@pytest.mark.parametrize("token", ["wrong", "", None, 5])
def test_handle_wrong_token_is_tushares_40101(token):
    out = tushare_api.handle(body(token=token), "right")
    assert (out["code"], out["msg"], out["data"]) == (40101, "您的token不对，请确认。", None)


def test_handle_refuses_everything_when_no_token_is_accepted():
    assert tushare_api.handle(body(token=""), "")["code"] == 40101


@pytest.mark.parametrize("raw", [b"not json", b"[1]", "\xff".encode("latin-1")])
def test_handle_bad_body(raw):
    out = tushare_api.handle(raw, "right")
    assert out["code"] != 0 and out["data"] is None


def test_handle_unknown_api_and_bad_params():
    assert tushare_api.handle(body(api_name="daily"), "right")["code"] != 0
    assert tushare_api.handle(body(params={"start_date": "2026-05-08"}), "right")["code"] != 0
    assert tushare_api.handle(body(fields="cal_date,nope"), "right")["code"] != 0


def test_env_value(tmp_path):
    env = tmp_path / ".env"
    env.write_text("A=1\nexport TUSHARE_TOKEN='abc'\nOPERATOR_TOKEN=x\n")
    assert env_value(env, "TUSHARE_TOKEN") == "abc"
    assert env_value(env, "MISSING") == ""
    assert env_value(tmp_path / "none", "A") == ""


# ---- preflight config and switch names

def test_preflight_config_keys(tmp_path):
    st = TwinState(dir=str(tmp_path), user="u", group="g", root_mode=True, github_port=4100, tushare_port=4200)
    cfg = preflight_faults.preflight_config(st)
    assert cfg["github_api"] == "http://127.0.0.1:4100" and cfg["tushare_url"] == "http://127.0.0.1:4200/"
    assert cfg["github_repo"] == "lacatfly/twilight-drive"
    assert cfg["github_token_file"] == str(tmp_path / "operator" / "gh-token")
    assert cfg["local_repo"] == str(tmp_path / "operator" / "twilight-drive")
    assert cfg["ci_check_name"] == github_api.INTEGRATION_CHECK and cfg["lifespan_pr"] == "45"


def test_unknown_switch_and_misplaced_pr(tmp_path):
    st = TwinState(dir=str(tmp_path), user="u", group="g", root_mode=True)
    with pytest.raises(BadInput, match="unknown"):
        preflight_faults.apply(st, "nope")
    with pytest.raises(BadInput, match="--pr"):
        preflight_faults.apply(st, "check-run-failed", 41)
    with pytest.raises(BadInput, match="no twilight-drive repos"):
        preflight_faults.apply(st, "check-run-failed")
