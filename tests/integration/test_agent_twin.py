"""Issue 11 phases through the twin: `inv hermes-reinstall` (T+00:25) and `inv agent-smoke` (T+00:35).

Real parts only: the operator clone's install-skill.sh, the real Hermes Agent on the operator
side (HERMES_HOME and PATH from the twin's invoke.yaml) talking to the twin's model stand-in, the backend over HTTP and its log
over SSH, Tushare's trade_cal from tvps.  W4 runs for this module (v0.2.0 again afterwards);
the clock is moved to an OPEN time (a Monday, 10:00 Asia/Shanghai) and the quote cache TTL
shortened to 6 s (twin.cache and the tool's cache_ttl_seconds together).  Every test leaves
backend and Hermes faults cleared; the module leaves clock, TTL and journals as it found them.
The Hermes-side faults, the model endpoint down, long-form wording, a stale trade_cal and the cache
check outside OPEN are in test_agent_smoke_faults_twin.py (its own module: another xdist worker).
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from tests.conftest import TWIN_DIR, error_lines, inv
from tests import journals
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import control
from twilight_ops.twin.operator_side import set_hermes_fault

pytestmark = pytest.mark.twin

W4 = "v0.3.0-w4-cutover"
PREVIOUS = "v0.2.0"
CST = dt.timezone(dt.timedelta(hours=8))
OPEN = dt.datetime(2026, 5, 11, 10, 0, tzinfo=CST).isoformat()        # a Monday, morning session
AFTER_CLOSE = dt.datetime(2026, 5, 11, 16, 0, tzinfo=CST).isoformat()
TTL = "6"
ENV = {"INVOKE_TWILIGHT_CACHE_TTL_SECONDS": TTL, "INVOKE_TWILIGHT_CACHE_SLACK_SECONDS": "2", "COLUMNS": "400"}
ROW_KEYS = {"id", "level", "status", "red_flags", "evidence"}


def twin_task(*args: str) -> subprocess.CompletedProcess:
    r = inv(*args, "--dir", str(TWIN_DIR))
    assert r.returncode == 0, r.stderr
    return r


def run(twin, task: str, *args: str) -> subprocess.CompletedProcess:
    r = inv(task, *args, cfg=twin.invoke_yaml, env=ENV)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def as_json(r: subprocess.CompletedProcess) -> dict:
    obj, end = json.JSONDecoder().raw_decode(r.stdout.lstrip())
    assert r.stdout.lstrip()[end:].strip() == "", r.stdout
    return obj


def rows(report: dict) -> dict[tuple[str, str], dict]:
    assert set(report) == {"checks", "verdict"}
    out = {}
    for row in report["checks"]:
        assert set(row) == ROW_KEYS, row
        out[(row["id"], row["level"])] = row
    return out


def flags(report: dict) -> set[str]:
    return {f["code"] for row in report["checks"] for f in row["red_flags"]}


def journal_files(twin, settings):
    local = settings.state_dir / "journals"
    found = sorted(local.rglob("*.json*")) if local.exists() else []
    return found + sorted((twin.remote_root / "cutover").glob("journal-*.json*"))


@pytest.fixture(scope="module")
def w4_open(twin, twin_settings):
    """W4 running, the clock at an OPEN time, TTL 6 s, the skill reinstalled; all undone afterwards."""
    from twilight_ops.twin import ci_release

    ci_release.ensure_published(twin, W4)      # W4 reaches the registry only through the twin's CI
    # the operator's skill as committed (W4): an earlier rollback leaves v0.2.0's SKILL.md checked out,
    # and the real Hermes would then answer in the legacy wording it describes
    subprocess.run(["git", "-C", str(twin.operator_clone), "checkout", "HEAD", "--", "skill/"], check=True)
    before = {p: p.read_bytes() for p in journal_files(twin, twin_settings)}
    with SSHExecutor(twin_settings) as ex:
        # the module starts from no journal (put back afterwards): what a module before it on this worker
        # left in W4's journal (a red deploy of a lock or health-gate test) must not judge its decisions
        mirror = twin.remote_root / "cutover"
        for path in before:
            ex.run(["rm", "-f", "--", str(path)]) if path.parent == mirror else path.unlink()
        control.clear_faults(ex, twin_settings)
        control.run_version(ex, twin_settings, W4)
    twin_task("twin.clock", "--at", OPEN)
    twin_task("twin.cache", "--ttl", TTL)
    yield twin
    set_hermes_fault(twin.hermes_home, None)
    with SSHExecutor(twin_settings) as ex:
        control.clear_faults(ex, twin_settings)
        control.set_cache_ttl(ex, twin_settings, None, twin.invoke_yaml)
        control.set_clock(ex, twin_settings, 0.0, twin.invoke_yaml)
        control.run_version(ex, twin_settings, PREVIOUS)
        mirror = twin.remote_root / "cutover"
        for path in journal_files(twin, twin_settings):
            if path not in before:
                ex.run(["rm", "-f", "--", str(path)]) if path.parent == mirror else path.unlink()
        for path, data in before.items():
            if path.parent == mirror:
                ex.write_file(str(path), data, mode=0o600)
            else:
                path.write_bytes(data)


@pytest.fixture
def faults(w4_open, twin_settings):
    """faults("name", ...) on the backend, hermes_fault("name") on the operator side; cleared after the test."""
    with SSHExecutor(twin_settings) as ex:
        yield (lambda *names: control.set_faults(ex, twin_settings, list(names)),
               lambda name: set_hermes_fault(w4_open.hermes_home, name))
        control.clear_faults(ex, twin_settings)
    set_hermes_fault(w4_open.hermes_home, None)


def local_journal(settings) -> dict:
    return journals.local(settings, W4)


# ---------------------------------------------------------------- hermes-reinstall


def test_hermes_reinstall_installs_restarts_and_verifies_then_a_rerun_skips_the_side_effects(w4_open, twin_settings):
    r = run(w4_open, "hermes-reinstall", "--force", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    out = as_json(r)
    assert out["verdict"] == "ok" and [s["id"] for s in out["steps"]] == ["install", "restart", "registered", "files"]
    assert all(s["status"] == "PASS" for s in out["steps"]), out
    assert "skill installed: stock-research" in out["steps"][0]["evidence"]["output_tail"]
    # the real Hermes 0.19: no gateway runs, so nothing needs a restart (every hermes process rescans the skills)
    assert out["steps"][1]["reason"].startswith("done: not needed: no Hermes gateway is running"), out["steps"][1]
    assert out["steps"][2]["reason"] == "`hermes skills list` shows stock-research enabled"     # the real table's Status
    assert out["steps"][2]["evidence"]["status"] == "enabled"
    assert out["steps"][3]["evidence"]["files"] >= 1
    installed = w4_open.hermes_home / "skills" / "stock-research" / "SKILL.md"
    assert installed.read_text() == (w4_open.operator_clone / "skill" / "stock-research" / "SKILL.md").read_text()
    names = [s["name"] for s in local_journal(twin_settings)["steps"]]
    assert {"hermes-install", "hermes-restart", "hermes-verify"} <= set(names)
    audit = (w4_open.remote_root / "cutover" / "audit.log")
    if audit.exists():
        assert "hermes-reinstall" in audit.read_text()

    again = as_json(run(w4_open, "hermes-reinstall", "--json"))
    assert [s["evidence"].get("how") for s in again["steps"][:2]] == ["skipped", "skipped"]
    assert again["steps"][2]["status"] == "PASS" and "skills list" in again["steps"][2]["reason"]   # no restart now: not the log


def test_hermes_reinstall_names_the_failed_step_when_the_skill_does_not_register(w4_open, faults):
    _, hermes_fault = faults
    hermes_fault("skill_missing")
    r = run(w4_open, "hermes-reinstall", "--force")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "step registered: `hermes skills list` does not show stock-research" in r.stdout
    assert "verdict: FAILED" in r.stdout
    out = as_json(run(w4_open, "hermes-reinstall", "--force", "--json"))
    reg = out["steps"][2]
    assert reg["id"] == "registered" and reg["status"] == "FAIL"
    assert "stock-research" not in reg["evidence"]["skills_list"]
    assert "inv hermes-reinstall --force" in reg["next_step"] and out["verdict"] == "failed"


def test_a_skill_disabled_in_hermes_config_fails_registration(w4_open, faults):
    """Issue 19: Hermes 0.19 still lists a disabled skill (Status disabled); listed is not registered."""
    _, hermes_fault = faults
    hermes_fault("skill_disabled")
    out = as_json(run(w4_open, "hermes-reinstall", "--force", "--json"))
    reg = out["steps"][2]
    assert reg["status"] == "FAIL" and out["verdict"] == "failed", out
    assert reg["reason"] == "step registered: `hermes skills list` shows stock-research as disabled"
    assert "disabled" in reg["evidence"]["skills_list"] and "skills.disabled" in reg["next_step"]


def test_a_skill_md_without_front_matter_is_reported(w4_open):
    """Issue 19: Hermes lists a SKILL.md with no front matter under its folder name (enabled); the
    registered step says what is wrong with the file instead of passing it."""
    skill_md = w4_open.operator_clone / "skill" / "stock-research" / "SKILL.md"
    good = skill_md.read_bytes()
    skill_md.write_text("# stock-research\n\nCall GET /price?code=<ts_code> and report close_raw.\n")
    try:
        out = as_json(run(w4_open, "hermes-reinstall", "--force", "--json"))
    finally:
        skill_md.write_bytes(good)
    reg = out["steps"][2]
    assert reg["status"] == "FAIL" and out["verdict"] == "failed", out
    assert "Hermes lists stock-research by its folder only" in reg["reason"]
    assert "SKILL.md has no front matter" in reg["reason"] and "front matter" in reg["next_step"]
    assert reg["evidence"]["status"] == "enabled"                      # what Hermes itself said
    assert out["steps"][3]["status"] == "PASS"                          # the files are the repo's (broken) files
    assert run(w4_open, "hermes-reinstall", "--force").returncode == 0  # the good file back: green again


def test_hermes_reinstall_failing_restart_command_shows_its_output_tail(w4_open):
    env = {**ENV, "INVOKE_TWILIGHT_HERMES_RESTART": "hermes no-such-subcommand"}
    r = inv("hermes-reinstall", "--force", cfg=w4_open.invoke_yaml, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert "step restart (`hermes no-such-subcommand`) exited 2" in r.stdout
    assert "invalid choice" in r.stdout                 # argparse's own words, from the output tail
    assert "not run" in r.stdout                        # later steps skipped


def test_bad_agent_config_is_exit_2_before_anything_runs(w4_open):
    r = inv("agent-smoke", cfg=w4_open.invoke_yaml, env={"INVOKE_TWILIGHT_AGENT_CHAT_COMMAND": "hermes chat -q"})
    assert r.returncode == 2 and r.stdout == ""
    assert error_lines(r.stderr) == [error_lines(r.stderr)[0]] and "agent_chat_command" in r.stderr


# ---------------------------------------------------------------- agent-smoke


@pytest.fixture(scope="module")
def skill(w4_open):
    r = run(w4_open, "hermes-reinstall", "--force")
    assert r.returncode == 0, r.stdout + r.stderr
    return w4_open


def test_agent_smoke_is_green_on_a_healthy_w4_during_open(skill, twin_settings):
    record = twin_settings.state_dir / "own-calls" / f"{twin_settings.host}.jsonl"
    before = len(record.read_text().splitlines()) if record.exists() else 0
    r = run(skill, "agent-smoke", "--json")
    made = [json.loads(line) for line in record.read_text().splitlines()[before:]]
    report = as_json(r)
    assert r.returncode == 0, json.dumps(report, indent=1) + r.stderr
    got = rows(report)
    assert report["verdict"] == "green" and flags(report) == set()
    assert set(got) == {(c, lvl) for c in ("latest_quote", "historical", "cache", "unknown_code") for lvl in ("api", "agent")}
    assert {k: v["status"] for k, v in got.items() if v["status"] != "PASS"} == {("cache", "agent"): "SKIP"}
    assert got[("latest_quote", "api")]["evidence"]["market_state"] == "open"
    assert "HTTP 502" in got[("unknown_code", "api")]["evidence"]["backend_log"]
    calls = got[("cache", "api")]["evidence"]["calls"]
    assert calls[0]["as_of"] == calls[1]["as_of"] != calls[2]["as_of"]
    step = [s for s in local_journal(twin_settings)["steps"] if s["name"] == "agent-smoke"][-1]
    assert step["outcome"] == "ok" and step["evidence"]["calendar"] == "Tushare trade_cal"
    assert len(step["evidence"]["transcripts"]) == 3 and all(t["answer"] for t in step["evidence"]["transcripts"])

    r = run(skill, "agent-smoke")
    assert r.returncode == 0 and "verdict: GREEN" in r.stdout and "4 unknown code 999999.SH" in r.stdout

    # issue 15 §1: each prompt's window and codes, and every API-level call, went into the own-calls
    # record; preflight leaves both kinds out of no_traffic
    assert [(m["check"], m["codes"]) for m in made if m["kind"] == "agent"] == [
        ("latest_quote", ["600519.SH"]), ("historical", ["600519.SH"]), ("unknown_code", ["999999.SH"])]
    assert sum(m["kind"] == "api" for m in made) >= 6
    pf = run(skill, "preflight", "--version", W4, "--no-snapshot", "--json")
    no_traffic = {c["id"]: c for c in as_json(pf)["checks"]}["no_traffic"]
    by_kind = no_traffic["evidence"]["own_calls_by_kind"]
    assert by_kind["agent"] >= 3 and by_kind["api"] >= 6, no_traffic
    assert "own call(s) left out" in no_traffic["reason"]


@pytest.mark.parametrize("backend, flag, where", [
    ("close_qfq_null_history", "historical_qfq_missing", ("historical", "api")),
    ("stale_freshness_zero", "cache_never_hit", ("cache", "api")),
    ("as_of_backwards", "clock_backwards", ("cache", "api")),
    ("unknown_code_500", "unknown_code_500", ("unknown_code", "api")),
])
def test_each_backend_fault_raises_its_own_red_flag(skill, faults, backend, flag, where):
    set_backend, _ = faults
    set_backend(backend)
    r = run(skill, "agent-smoke", "--json")
    report = as_json(r)
    assert r.returncode == 1, json.dumps(report, indent=1)
    assert report["verdict"] == "red"
    row = rows(report)[where]
    assert row["status"] == "FAIL" and flag in [f["code"] for f in row["red_flags"]], row
    assert all(f["meaning"] for f in row["red_flags"])
