"""`inv cutover`, `inv decide`, `inv report` through the twin: a green cutover end to end, kill -9 in
the middle of deploy then --resume (one tag, one snapshot, the right digest), and the refusals of a
wrong start.  The red flags reaching their decisions are in test_cutover_red_flags_twin.py (its own
module, so another xdist worker runs it beside this one)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, error_lines, inv
from tests import journals
from tests.cutover_fixtures import fresh, reset_after_module, short_cache_ttl  # noqa: F401  fixtures
from twilight_ops import health
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import rehearse
from twilight_ops.twin.state import load_or_new

pytestmark = [pytest.mark.twin, pytest.mark.usefixtures("short_cache_ttl")]

V = rehearse.V


def journal(settings) -> dict:
    return journals.local(settings, V)


def steps(settings, name: str) -> list[dict]:
    return [s for s in journal(settings)["steps"] if s["name"] == name]


def cutover(twin, *args: str, timeout: float = 900):
    return inv("cutover", "--version", V, *args, cfg=twin.invoke_yaml, timeout=timeout)


def test_green_cutover_closes_out_and_reports(fresh, twin_settings):
    r = cutover(fresh, "--yes", "--json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    result = json.loads(r.stdout)
    assert result["outcome"] == "closed-out" and result["decision"]["verdict"] == "GO"
    for hint in ("next: inv tag-push", "next: inv smoke", "next: T+00:35"):     # the cutover runs them itself
        assert hint not in r.stderr, hint
    assert re.search(r"^T\+\d\d:\d\d  deploy  \(slot T\+00:05, budget 10 min", r.stderr, re.M), r.stderr[-3000:]  # issue 21 §8
    assert "of the 60-minute budget" in r.stderr and f"report    {result['report_path']}" in r.stderr   # the summary block
    assert r.stderr.count(result["report_path"]) == 1
    for phase in ("preflight", "tag-push", "deploy", "smoke", "hermes-reinstall", "agent-smoke"):
        assert [s["outcome"] for s in steps(twin_settings, f"cutover:{phase}")] == ["ok"], phase
    j = journal(twin_settings)
    assert j["facts"]["cutover"]["decision"]["how"] == "--yes"
    assert j["facts"]["post_digest"] == j["facts"]["published_digest"]
    with SSHExecutor(twin_settings) as ex:
        svc = health.service_of(health.read_services(ex, layout(twin_settings, ex.home), twin_settings.image_repo),
                                twin_settings.service)
    assert svc.version == V and svc.repo_digest == j["facts"]["post_digest"]
    report = open(result["report_path"], encoding="utf-8").read()
    for text in ("## Timeline", "| preflight |", "| agent-smoke |", "**GO**", j["facts"]["pre_digest"],
                 j["facts"]["post_digest"], "confirmed by: " + j["facts"]["cutover"]["operator"], "### T+00:35 agent checks"):
        assert text in report, text
    origin = load_or_new(fresh.base).origin_repo
    status = subprocess.run(["git", "-C", str(origin), "show", "main:docs/status/index.md"],
                            capture_output=True, text=True, check=True).stdout
    assert status.count("v0.3.0 W4 /price cutover completed") == 1

    again = inv("report", V, cfg=fresh.invoke_yaml)
    assert again.returncode == 0 and again.stdout == report
    d = inv("decide", "--version", V, "--json", cfg=fresh.invoke_yaml)
    assert d.returncode == 0, d.stderr
    assert json.loads(d.stdout)["verdict"] == "GO"
    second = cutover(fresh, "--yes")
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout + second.stderr
    assert (second.stdout + second.stderr).count(result["report_path"]) == 1      # issue 21 §10: once, in the summary
    assert len(steps(twin_settings, "cutover:preflight")) == 1


def test_kill_9_in_deploy_then_resume(fresh, twin_settings):
    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(fresh.invoke_yaml), "cutover", "--version", V, "--yes"]
    path = journals.local_path(twin_settings, V)
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    killed_in = None
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            running = rehearse.running_step(rehearse.read_journal(path), "deploy#")
            if running:
                os.killpg(proc.pid, signal.SIGKILL)
                killed_in = running
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and killed_in is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert killed_in is not None, "the cutover never reached deploy"
    before = journal(twin_settings)
    snap_sha = before["facts"]["snapshot"]["sha256"]

    refused = cutover(fresh, "--yes")
    assert refused.returncode == 2
    assert "in progress" in refused.stderr and "--resume" in refused.stderr

    r = cutover(fresh, "--resume", "--yes", "--json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert json.loads(r.stdout)["outcome"] == "closed-out"
    assert "took the deploy lock over" in r.stderr
    j = journal(twin_settings)
    assert [s["outcome"] for s in j["steps"] if s["name"] == "tag-push"] == ["ok"]     # one tag push
    assert [s["outcome"] for s in j["steps"] if s["name"] == "snapshot"] == ["ok"]     # one snapshot
    assert j["facts"]["snapshot"]["sha256"] == snap_sha
    assert len(j["facts"]["cutover"]["resumed"]) == 1
    assert [s["outcome"] for s in j["steps"] if s["name"] == "cutover:preflight"] == ["ok"]
    st = load_or_new(fresh.base)
    tags = subprocess.run(["git", "-C", str(st.origin_repo), "tag", "--list", V], capture_output=True, text=True).stdout
    assert tags.split() == [V]
    with SSHExecutor(twin_settings) as ex:
        lay = layout(twin_settings, ex.home)
        listing = ex.run(["ls", "-1", lay.data_dir]).stdout.split()
        svc = health.service_of(health.read_services(ex, lay, twin_settings.image_repo), twin_settings.service)
        sha = ex.run(["sha256sum", "--", j["facts"]["snapshot"]["host_path"]]).stdout.split()[0]
    assert [n for n in listing if n.startswith(twin_settings.snapshot_name)] == [twin_settings.snapshot_name]
    assert sha == snap_sha
    assert svc.version == V and svc.repo_digest == j["facts"]["published_digest"] == j["facts"]["post_digest"]


def test_resume_without_a_cutover_is_refused(fresh):
    r = cutover(fresh, "--resume", "--yes")
    assert r.returncode == 2
    assert error_lines(r.stderr) == [f"error: no cutover of {V} to resume (its journal has none) — "
                                     f"start one: inv -f {fresh.invoke_yaml} cutover --version {V}"]   # the same -f


def test_decide_with_no_evidence_is_incomplete_and_names_what_to_run(fresh):
    r = inv("decide", "--version", V, cfg=fresh.invoke_yaml)
    assert r.returncode == 1
    assert "INCOMPLETE" in r.stdout
    for cmd in ("deploy", "smoke", "hermes-reinstall", "agent-smoke"):      # aimed at the same -f (issue 21 item 3)
        assert f"inv -f {fresh.invoke_yaml} {cmd}" in r.stdout, cmd


def test_cutover_bad_version_is_one_line_exit_2(twin):
    r = inv("cutover", "--version", "v0.3.0;rm -rf /", cfg=twin.invoke_yaml)
    assert r.returncode == 2 and len(error_lines(r.stderr)) == 1 and "Traceback" not in r.stderr


def test_rollback_waits_for_confirmation_then_resume_yes_rolls_back(fresh, twin_settings):
    rehearse.apply(fresh, twin_settings, rehearse.SCENARIOS["close-raw-null"])
    r = cutover(fresh, "--json")                      # no terminal, no --yes: the decision waits
    assert r.returncode == 1, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["outcome"] == "awaiting-confirmation" and result["decision"]["verdict"] == "ROLLBACK"
    # one command, aimed at the same -f: the cutover's resume confirms and rolls back (issue 21 item 3)
    assert f"to roll back: inv -f {fresh.invoke_yaml} cutover --version {V} --resume --yes" in r.stderr
    j = journal(twin_settings)
    assert "rolled_back" not in j["facts"] and j["facts"]["cutover"]["decision"]["how"] == "not confirmed"
    assert not steps(twin_settings, "cutover:hermes-reinstall")     # red at T+00:15: no agent phases

    again = cutover(fresh, "--resume", "--yes", "--json")
    assert again.returncode == 1, again.stderr[-3000:]
    assert json.loads(again.stdout)["outcome"] == "rolled-back"
    j = journal(twin_settings)
    assert j["facts"]["cutover"]["decision"]["how"] == "--yes"
    assert [s["outcome"] for s in j["steps"] if s["name"] == "cutover:smoke"] == ["red"]   # not re-run on resume
    assert j["facts"]["rolled_back"]["trigger"] == "cutover decision ROLLBACK: smoke: close_raw_missing"


def test_go_without_confirmation_waits_and_names_the_command(fresh, twin_settings):
    r = cutover(fresh, "--json")                      # no terminal, no --yes
    assert r.returncode == 1, r.stderr[-3000:]
    assert json.loads(r.stdout)["outcome"] == "awaiting-confirmation"
    assert f"to close out: inv -f {fresh.invoke_yaml} cutover --version {V} --resume --yes" in r.stderr   # the same -f
    assert (f"if you said no because something is wrong, roll back: inv -f {fresh.invoke_yaml} rollback --version {V} "
            "--reason 'GO not confirmed: <why>'") in r.stderr                     # "no" at GO offers the rollback
    again = cutover(fresh, "--resume", "--yes", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["outcome"] == "closed-out"
    assert journal(twin_settings)["facts"]["cutover"]["decision"]["how"] == "--yes"
