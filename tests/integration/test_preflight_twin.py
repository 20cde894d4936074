"""`inv preflight` through the twin: the seven §0 checks (each failing on its own switch,
with nothing on tvps changed), the tool's own /price calls left out of no_traffic while a
client's call still counts, the T+00:00 snapshot under live writes (readable by the operator,
with the warehouse's owner and mode), its reuse, and no token in output, the journal or
tvps's process list.

The tests that send client traffic (twin.load, a bare httpx call) do it under
tests/client_traffic.elsewhere_in_time: at a past twin clock no other run uses, so it never
falls in a later preflight's 10-minute window (here, in a later module or session)."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.client_traffic import elsewhere_in_time
from tests.conftest import TWIN_DIR, error_lines, inv
from tests import journals
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.builders.layout import layout
from twilight_ops.twin import preflight_faults
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

VERSION = "v0.3.0-w4-cutover"


def preflight(twin, *args, env=None, version=VERSION):
    return inv("preflight", "--version", version, "--json", *args, cfg=twin.invoke_yaml, env=env)


def report(r) -> dict:
    assert "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


def rows(rep: dict) -> dict[str, dict]:
    return {c["id"]: c for c in rep["checks"] + rep["t0"]}


def remote_exists(ex, path: str) -> bool:
    return ex.run(["test", "-e", path], check=False).ok


def journal_paths(settings, ex, version):
    lay = layout(settings, ex.home)
    return journals.local_path(settings, version), lay.journal_path(version)


@pytest.fixture(scope="module")
def st(twin):
    preflight_faults.clear(load_or_new(TWIN_DIR))
    yield load_or_new(TWIN_DIR)
    preflight_faults.clear(load_or_new(TWIN_DIR))


def test_a_clean_idle_twin_passes_all_seven_and_records_t0(twin, st, ex, twin_settings):
    r = preflight(twin)
    rep = report(r)
    assert r.returncode == 0 and rep["verdict"] == "go", r.stdout
    by = rows(rep)
    assert [c["id"] for c in rep["checks"]] == ["commit_pinned", "dependency_prs", "ci_green", "tushare_token",
                                                "install_skill_latest", "clock_skew", "no_traffic"]
    assert all(c["status"] == "PASS" for c in rep["checks"] + rep["t0"])
    assert by["service"]["evidence"]["restart_count"] == 0 and "@sha256:" in by["service"]["evidence"]["repo_digest"]
    local, remote = journal_paths(twin_settings, ex, VERSION)
    facts = journals.read(local)["facts"]
    mirror = journals.read(Path(ex.expand(remote)))["facts"]
    assert facts["pre_digest"] == by["service"]["evidence"]["repo_digest"] == mirror["pre_digest"]
    assert facts["pre_digest"].split("@")[0].endswith("/lacatfly/twilight-drive")
    assert facts["cutover_commit"] == rep["commit"] == st.drive_commits["w4"]
    snap = facts["snapshot"]
    assert snap["host_path"].endswith("/twilight/data/warehouse.duckdb.pre-w4") and len(snap["sha256"]) == 64
    assert "provider_audit_log" in snap["tables"]
    # issue 15 §2: the operator (tvps's account) can read it, and it has the warehouse's owner, group and mode
    summed = ex.run(["sha256sum", "--", snap["host_path"]], check=False)
    assert summed.ok and summed.stdout.split()[0] == snap["sha256"], summed.stderr
    warehouse = layout(twin_settings, ex.home).warehouse
    stat = ex.run(["stat", "-c", "%U:%G %a", "--", warehouse, snap["host_path"]]).stdout.splitlines()
    assert stat[0] == stat[1] and not stat[1].startswith("root:"), stat

    # a second preflight verifies and reuses the snapshot: same sha256, same bytes
    again = report(preflight(twin))
    assert rows(again)["snapshot"]["status"] == "PASS" and rows(again)["snapshot"]["evidence"]["sha256"] == snap["sha256"]
    assert journals.read(local)["facts"]["snapshot"]["sha256"] == snap["sha256"]


def test_ci_green_reads_every_page_of_check_runs(twin, st):
    """120 other apps' check runs listed first: the integration check is on page 2 of 100 and
    is found; a queued re-run of it (started_at null) beside the older success is pending."""
    from twilight_ops.twin import github_api, github_shapes, release_faults, standins

    sha = st.drive_commits["w4"]
    release_faults.apply(load_or_new(TWIN_DIR), "other-app-checks")
    rerun = github_shapes.check_run(github_api.OWNER_REPO, 90_000_099, github_api.INTEGRATION_CHECK, sha, None,
                                    status="queued")

    def add_rerun(state: dict) -> None:
        state["check_runs"][sha].append(rerun)

    def drop_rerun(state: dict) -> None:
        state["check_runs"][sha] = [r for r in state["check_runs"][sha] if r["id"] != rerun["id"]]

    try:
        paged = rows(report(preflight(twin, "--no-snapshot", version="v0.3.0-pf-paged")))["ci_green"]
        standins.update_github_state(st.base, add_rerun)
        pending = rows(report(preflight(twin, "--no-snapshot", version="v0.3.0-pf-rerun")))["ci_green"]
    finally:
        standins.update_github_state(st.base, drop_rerun)
        release_faults.clear(load_or_new(TWIN_DIR))
    assert paged["status"] == "PASS" and paged["evidence"]["conclusion"] == "success", paged
    assert pending["status"] == "FAIL" and "still queued" in pending["reason"], pending


SWITCHES = [
    ("pr-unmerged", "dependency_prs", "#41"),
    ("check-run-failed", "ci_green", "failure"),
    ("tushare-token-invalid", "tushare_token", "the Tushare token is wrong or expired (Tushare answered code 40101"),
    ("source-pinned-elsewhere", "commit_pinned", "tvps source is at"),
    ("install-skill-outdated", "install_skill_latest", "differs from origin/main"),
    ("local-main-behind", "install_skill_latest", "behind origin/main"),
    ("tvps-clock-skew", "clock_skew", "clock skew: tvps is 600 s ahead of this machine"),
]


@pytest.mark.parametrize("switch,check,says", SWITCHES)
def test_each_check_fails_on_its_switch_and_tvps_is_untouched(twin, st, ex, twin_settings, switch, check, says):
    version = f"v0.3.0-pf-{switch}"
    snapshot = f"warehouse.duckdb.pf-{switch}"
    preflight_faults.apply(load_or_new(TWIN_DIR), switch)
    try:
        r = preflight(twin, env={"INVOKE_TWILIGHT_SNAPSHOT_NAME": snapshot}, version=version)
    finally:
        preflight_faults.clear(load_or_new(TWIN_DIR))
    rep = report(r)
    assert r.returncode == 1 and rep["verdict"] == "no-go"
    failed = {c["id"]: c for c in rep["checks"] if c["status"] == "FAIL"}
    assert set(failed) == {check}, failed
    assert says in failed[check]["reason"] and failed[check]["next_step"]
    assert rep["t0"] == []
    local, remote = journal_paths(twin_settings, ex, version)
    assert not local.exists() and not remote_exists(ex, remote)
    assert not remote_exists(ex, f"{layout(twin_settings, ex.home).data_dir}/{snapshot}")


def test_no_token_in_output_journal_or_tvps_process_list(twin, st, ex, twin_settings):
    env_text = ex.read_file(layout(twin_settings, ex.home).env_file).decode()
    tushare = [line.split("=", 1)[1].strip() for line in env_text.splitlines() if line.startswith("TUSHARE_TOKEN=")][0]
    github = st.github_token_file.read_text().strip()
    seen: list[str] = []
    done = threading.Event()

    def sample() -> None:          # the twin's tvps is this host: its process list is ours to read
        while not done.is_set():
            seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        r = inv("preflight", "--version", VERSION, cfg=twin.invoke_yaml)     # the table form
        rj = preflight(twin)
    finally:
        done.set()
        sampler.join()
    assert r.returncode == 0 and rj.returncode == 0, r.stdout + r.stderr
    local, remote = journal_paths(twin_settings, ex, VERSION)
    texts = [r.stdout, r.stderr, rj.stdout, rj.stderr, local.read_text(), ex.read_file(remote).decode(), *seen]
    assert len(seen) > 5
    for token in (tushare, github):
        assert len(token) >= 16
        assert not any(token in t for t in texts)


def test_bad_input_touches_nothing(twin):
    for args, says in [(("--version", "v1;rm -rf ~"), "is not a release tag"),
                       (("--version", VERSION, "--commit", "HEAD~1"), "is not a commit id")]:
        r = inv("preflight", *args, cfg=twin.invoke_yaml)
        assert r.returncode == 2 and says in r.stderr and len(error_lines(r.stderr)) == 1, r.stderr


def test_no_snapshot_runs_the_six_checks_only(twin, st, ex, twin_settings):
    version = "v0.3.0-pf-nosnap"
    r = preflight(twin, "--no-snapshot", version=version, env={"INVOKE_TWILIGHT_SNAPSHOT_NAME": "warehouse.duckdb.pf-nosnap"})
    rep = report(r)
    assert r.returncode == 0 and [(c["id"], c["status"]) for c in rep["t0"]] == [("snapshot", "SKIP")]
    local, remote = journal_paths(twin_settings, ex, version)
    assert not local.exists() and not remote_exists(ex, remote)
    assert not remote_exists(ex, f"{layout(twin_settings, ex.home).data_dir}/warehouse.duckdb.pf-nosnap")


@pytest.mark.parametrize("how", [("--dry", "preflight"), ("preflight", "--no-snapshot")])
def test_without_a_snapshot_the_verdict_does_not_claim_t0_facts(twin, st, ex, twin_settings, how):
    """Issue 15 §5: `inv --dry preflight` and `--no-snapshot` took no snapshot: GO must not say
    the T+00:00 facts are in the journal."""
    version = "v0.3.0-pf-dry"
    r = inv(*how, "--version", version, cfg=twin.invoke_yaml, env={"INVOKE_TWILIGHT_SNAPSHOT_NAME": "warehouse.duckdb.pf-dry",
                                                                      "COLUMNS": "300"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "facts are in the journal" not in r.stdout
    assert "verdict: GO on the seven checks — no snapshot taken and no T+00:00 facts recorded" in r.stdout
    assert f"before tag-push run: inv preflight --version {version}" in r.stdout
    local, remote = journal_paths(twin_settings, ex, version)
    assert not local.exists() and not remote_exists(ex, remote)


def test_status_then_preflight_is_go_its_own_call_left_out(twin, st, ex, twin_settings):
    """Issue 15 §1: `inv status` calls /price once; preflight right after must not count it."""
    record = twin_settings.state_dir / "own-calls" / f"{twin_settings.host}.jsonl"
    before = len(record.read_text().splitlines()) if record.exists() else 0
    s = inv("status", cfg=twin.invoke_yaml)
    assert s.returncode == 0, s.stdout + s.stderr
    (new,) = [json.loads(line) for line in record.read_text().splitlines()[before:]]     # one call, one line
    assert new["kind"] == "api" and new["codes"] == [twin_settings.smoke_code] and new["status"] == 200
    r = preflight(twin, "--no-snapshot", version="v0.3.0-pf-own")
    rep = report(r)
    row = rows(rep)["no_traffic"]
    assert r.returncode == 0 and rep["verdict"] == "go", row
    assert row["status"] == "PASS" and row["evidence"]["calls"] == 0
    assert row["evidence"]["own_calls_left_out"] >= 1 and row["evidence"]["seen"] >= 1
    assert f"{row['evidence']['own_calls_left_out']} of twilight-ops's own call(s) left out" in row["reason"]
    table = inv("preflight", "--version", "v0.3.0-pf-own", "--no-snapshot", cfg=twin.invoke_yaml, env={"COLUMNS": "300"})
    assert table.returncode == 0 and "own call(s) left out" in table.stdout, table.stdout


def test_a_client_call_still_counts_next_to_the_tools_own(twin, st, ex, twin_settings):
    """A call that is not the tool's (a bare httpx GET with the operator token) makes it NO-GO,
    even right after `inv status`; the evidence says how many own calls were left out."""
    import httpx

    version, snapshot = "v0.3.0-pf-client", "warehouse.duckdb.pf-client"
    token = ex.read_secret(layout(twin_settings, ex.home).token_file)
    with elsewhere_in_time(twin):
        assert inv("status", cfg=twin.invoke_yaml).returncode == 0
        with httpx.Client(base_url=twin_settings.api_base, timeout=10, trust_env=False) as client:
            got = client.get("/price", params={"code": twin_settings.smoke_code},
                             headers={"Authorization": f"Bearer {token.reveal()}"})
        assert got.status_code == 200
        r = preflight(twin, env={"INVOKE_TWILIGHT_SNAPSHOT_NAME": snapshot}, version=version)
    rep = report(r)
    row = rows(rep)["no_traffic"]
    assert r.returncode == 1 and rep["verdict"] == "no-go" and rep["t0"] == []
    assert row["status"] == "FAIL" and row["evidence"]["calls"] == 1 and row["evidence"]["own_calls_left_out"] == 1
    assert "client /price call(s)" in row["reason"] and "own call(s) left out" in row["reason"]
    assert not remote_exists(ex, f"{layout(twin_settings, ex.home).data_dir}/{snapshot}")


def test_traffic_fails_no_traffic_and_takes_no_snapshot(twin, st, ex, twin_settings):
    version, snapshot = "v0.3.0-pf-traffic", "warehouse.duckdb.pf-traffic"
    with elsewhere_in_time(twin):
        load = subprocess.run([str(os.path.join(os.path.dirname(os.sys.executable), "inv")), "twin.load", "--dir",
                               str(TWIN_DIR), "--seconds", "2", "--rps", "5"], capture_output=True, text=True, timeout=120)
        assert load.returncode == 0, load.stderr
        r = inv("preflight", "--version", version, "--json", cfg=twin.invoke_yaml,
                env={"INVOKE_TWILIGHT_SNAPSHOT_NAME": snapshot})
    rep = report(r)
    assert r.returncode == 1
    row = rows(rep)["no_traffic"]
    assert row["status"] == "FAIL" and row["evidence"]["calls"] >= 5 and "provider_audit_log" in row["evidence"]["source"]
    assert not remote_exists(ex, f"{layout(twin_settings, ex.home).data_dir}/{snapshot}")


COUNT_SNAPSHOT = r"""
import duckdb, json, sys
con = duckdb.connect(sys.argv[1] if len(sys.argv) > 1 else {path!r}, read_only=True)
print(json.dumps({{"provider_audit_log": con.execute("SELECT count(*) FROM provider_audit_log").fetchone()[0]}}))
"""


def test_the_snapshot_holds_up_under_writes(twin, st, ex, twin_settings):
    """Live /price load while preflight snapshots: the snapshot opens in the container with
    exactly the counts recorded in the journal."""
    version, name = "v0.3.0-pf-load", "warehouse.duckdb.pf-load"
    inv_bin = os.path.join(os.path.dirname(os.sys.executable), "inv")
    with elsewhere_in_time(twin):
        load = subprocess.Popen([inv_bin, "twin.load", "--dir", str(TWIN_DIR), "--seconds", "12", "--rps", "40"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2)    # let the load start writing audit rows (a sampling delay, not a wait for a condition)
            r = inv("preflight", "--version", version, "--json", cfg=twin.invoke_yaml,     # the load is client traffic
                    env={"INVOKE_TWILIGHT_TRAFFIC_MAX_CALLS": "1000000", "INVOKE_TWILIGHT_SNAPSHOT_NAME": name})
            running_while = load.poll() is None
        finally:
            out, err = load.communicate(timeout=120)
    assert load.returncode == 0, err
    rep = report(r)
    assert r.returncode == 0, r.stdout
    assert running_while, "the load generator had stopped before the snapshot finished"
    snap = rows(rep)["snapshot"]["evidence"]
    lay = layout(twin_settings, ex.home)
    res = ex.run(compose_cmd.compose_exec_python(lay),
                 stdin=COUNT_SNAPSHOT.format(path=f"/data/{name}"), timeout=120)
    assert json.loads(res.stdout) == {"provider_audit_log": snap["tables"]["provider_audit_log"]}
    assert snap["tables"]["provider_audit_log"] > 0


def skew_tvps(seconds: float) -> None:
    """tvps alone runs `seconds` off the tool's clock (the backend, `date` over SSH); the tool's offset stays."""
    r = inv("twin.clock", "--skew", str(seconds), "--dir", str(TWIN_DIR))
    assert r.returncode == 0, r.stderr


def test_a_tvps_10_min_behind_still_counts_its_traffic_and_fails_clock_skew(twin, st, ex, twin_settings):
    """Issue 23 §3: with tvps's clock 10 minutes behind, the client calls of tvps's last 10 minutes
    count (not 0: the window ends at tvps's now), and the skew is a FAIL naming it, with the fix."""
    version, snapshot = "v0.3.0-pf-skew", "warehouse.duckdb.pf-skew"
    from twilight_ops.twin import control

    with elsewhere_in_time(twin) as offset:
        # the tool 10 min ahead of the unused past minute, tvps on it: its rows land where an unskewed
        # test's would (a later test's window never sees them)
        control.set_clock(ex, twin_settings, offset + 600, twin.invoke_yaml, -600)
        assert abs(float(ex.run(["date", "+%s"]).stdout) - (time.time() + offset)) < 5   # `date` on tvps: its clock
        load = inv("twin.load", "--dir", str(TWIN_DIR), "--seconds", "2", "--rps", "5", "--unknown-pct", "0")
        assert load.returncode == 0, load.stderr
        r = preflight(twin, version=version, env={"INVOKE_TWILIGHT_SNAPSHOT_NAME": snapshot})
        wider = preflight(twin, "--no-snapshot", version=version, env={"INVOKE_TWILIGHT_MAX_CLOCK_SKEW_SECONDS": "900"})
    rep = report(r)
    by = rows(rep)
    assert r.returncode == 1 and rep["verdict"] == "no-go" and rep["t0"] == []
    assert [c["id"] for c in rep["checks"]][-2:] == ["clock_skew", "no_traffic"]
    skew = by["clock_skew"]
    assert skew["status"] == "FAIL", skew
    assert "clock skew: tvps is 600 s behind this machine (±" in skew["reason"] and "more than 60 s" in skew["reason"]
    assert abs(skew["evidence"]["skew_s"] + 600) < 5 and skew["evidence"]["max_s"] == 60
    assert "timedatectl set-ntp true" in skew["next_step"]
    traffic = by["no_traffic"]
    assert traffic["status"] == "FAIL" and traffic["evidence"]["calls"] >= 10, traffic
    assert not remote_exists(ex, f"{layout(twin_settings, ex.home).data_dir}/{snapshot}")
    # the twin's libfaketime sessions share one semaphore + shm pair: none left behind per command
    uid = os.stat(ex.home).st_uid
    assert len([p for p in os.listdir("/dev/shm") if "faketime" in p and os.stat(f"/dev/shm/{p}").st_uid == uid]) == 2
    # a bound above the skew: the skew passes and is shown; the traffic still counts
    by = rows(report(wider))
    assert by["clock_skew"]["status"] == "PASS" and "tvps is 600 s behind this machine" in by["clock_skew"]["reason"]
    assert by["no_traffic"]["status"] == "FAIL" and by["no_traffic"]["evidence"]["calls"] >= 10


def test_a_skew_within_the_bound_passes_shows_it_and_the_own_call_is_still_left_out(twin, st, ex, twin_settings):
    """30 s behind (bound 60 s): clock_skew PASS showing the skew; `inv status`'s own call, stamped by
    tvps 30 s earlier than the tool recorded it, is still matched and left out: GO."""
    with elsewhere_in_time(twin):
        skew_tvps(-30)
        assert inv("status", cfg=twin.invoke_yaml).returncode == 0
        r = preflight(twin, "--no-snapshot", version="v0.3.0-pf-skew-ok")
        table = inv("preflight", "--version", "v0.3.0-pf-skew-ok", "--no-snapshot", cfg=twin.invoke_yaml,
                    env={"COLUMNS": "300"})
    rep = report(r)
    by = rows(rep)
    assert r.returncode == 0 and rep["verdict"] == "go", by
    assert by["clock_skew"]["status"] == "PASS" and abs(by["clock_skew"]["evidence"]["skew_s"] + 30) < 5
    assert "clock skew: tvps is 30 s behind this machine (±" in by["clock_skew"]["reason"]
    assert by["no_traffic"]["evidence"]["calls"] == 0 and by["no_traffic"]["evidence"]["own_calls_left_out"] >= 1
    assert table.returncode == 0 and "tvps is 30 s behind this machine" in table.stdout, table.stdout
