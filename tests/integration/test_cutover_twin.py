"""`inv cutover`, `inv decide`, `inv report` through the twin: a green cutover end to end (GO left
unconfirmed, then `--resume --yes`), a ROLLBACK left unconfirmed then confirmed, and the refusals of a
wrong start.  kill -9 in the middle of deploy then --resume (one tag, one snapshot, the right digest)
is in test_journal_twin.py, with a torn journal line.  The red flags reaching their decisions are in test_cutover_red_flags_twin.py (its own
module, so another xdist worker runs it beside this one)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import error_lines, inv
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


def test_green_cutover_waits_at_go_then_resume_yes_closes_out_and_reports(fresh, twin_settings):
    """A green cutover end to end.  With no terminal and no --yes it stops at GO and names the command
    (and the rollback a "no" offers); `--resume --yes` closes out.  This was two tests, each with its
    own green cutover (straight through with --yes, and GO left unconfirmed); one cutover proves both:
    the --yes straight through is test_journal_twin's green cutover and the rehearsal's green row."""
    first = cutover(fresh, "--json")                  # no terminal, no --yes
    assert first.returncode == 1, first.stderr[-3000:]
    assert json.loads(first.stdout)["outcome"] == "awaiting-confirmation"
    assert f"to close out: inv -f {fresh.invoke_yaml} cutover --version {V} --resume --yes" in first.stderr   # the same -f
    assert (f"if you said no because something is wrong, roll back: inv -f {fresh.invoke_yaml} rollback --version {V} "
            "--reason 'GO not confirmed: <why>'") in first.stderr                 # "no" at GO offers the rollback
    assert re.search(r"^T\+\d\d:\d\d  deploy  \(slot T\+00:05, budget 10 min", first.stderr, re.M), first.stderr[-3000:]  # issue 21 §8

    r = cutover(fresh, "--resume", "--yes", "--json")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    result = json.loads(r.stdout)
    assert result["outcome"] == "closed-out" and result["decision"]["verdict"] == "GO"
    for hint in ("next: inv tag-push", "next: inv smoke", "next: T+00:35"):     # the cutover runs them itself
        assert hint not in first.stderr + r.stderr, hint
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
