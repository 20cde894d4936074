"""Issue 21 items 1, 4, 5, the pure parts: the plan before a change, the version-naming check, the
typed-back answer, "nothing to roll back", the lock holder named before a resume pointer, the tag a
rollback leaves on origin, and the decision nobody confirmed."""
from __future__ import annotations

import pytest

from twilight_ops import change_plan as cp
from twilight_ops import lock, pending
from twilight_ops.journal import Step
from twilight_ops.phases.rollback import tag_left_line

V = "v0.3.0-w4-cutover"
KNOWN = (V, V)


# ---------------------------------------------------------------- the version-naming check

def test_a_version_tagged_on_the_commit_never_warns_whatever_its_name():
    assert cp.naming_warning("v0.3.0-w4-cutovr", ["v0.3.0-w4-cutovr"], KNOWN) is None
    assert cp.naming_warning("hotfix", ["hotfix", V], KNOWN) is None


def test_the_typo_of_the_issue_is_named_with_the_release_it_misses():
    line = cp.naming_warning("v0.3.0-w4-cutovr", [V], KNOWN)
    assert line == ("v0.3.0-w4-cutovr is not a tag on that commit and is one typo away from v0.3.0-w4-cutover: "
                    "check the spelling (the runbook's release is v0.3.0-w4-cutover)")


@pytest.mark.parametrize("version", ["v0.3", "0.3.0-w4-cutover", "v0.3.0-cutover", "v0.3.0-W4-Cutover-x", "release-1"])
def test_a_name_off_the_release_pattern_warns(version):
    line = cp.naming_warning(version, [], KNOWN)
    assert line is not None and line.startswith(f"{version} is not a tag on that commit") and "v0.3.0-w4-cutover" in line


@pytest.mark.parametrize("version", ["v0.3.1", "v0.4.0", "v1.0.0-w7-tdx-audit", "v0.3.0-w4-cutover"])
def test_well_formed_names_far_from_a_known_one_do_not_warn(version):
    assert cp.naming_warning(version, [], KNOWN) is None


def test_plain_versions_are_not_read_as_typos_of_the_previous_release():
    assert cp.naming_warning("v0.3.0", [], ("v0.2.0", V)) is None


# ---------------------------------------------------------------- the plan and the answer

def test_the_plan_names_target_what_runs_version_commit_and_warnings():
    plan = cp.ChangePlan("cutover", "tvps = deploy@10.0.0.5:22", "v0.2.0 (sha256:0123456789ab…, running/healthy)",
                         "v0.3.0-w4-cutovr", "a" * 40, "origin/main as last fetched; preflight fetches it first",
                         ("v0.3.0-w4-cutovr is not a tag on that commit …",))
    assert plan.lines() == [
        "plan: cutover v0.3.0-w4-cutovr",
        "  target    tvps = deploy@10.0.0.5:22",
        "  runs now  v0.2.0 (sha256:0123456789ab…, running/healthy)",
        "  version   v0.3.0-w4-cutovr: will tag, push, deploy and cut over",
        "  commit    aaaaaaaaaaaa (origin/main as last fetched; preflight fetches it first)",
        "  warning   v0.3.0-w4-cutovr is not a tag on that commit …"]


def test_a_plan_without_a_commit_says_why():
    plan = cp.ChangePlan("deploy", "tvps = u@h:22", "not known (x)", V, "", "/r is not a git checkout")
    assert plan.lines()[3:] == [f"  version   {V}: will deploy", "  commit    not known yet (/r is not a git checkout)"]


@pytest.mark.parametrize("typed,problem", [
    (V, None), (f"  {V}\n", None), ("yes", f"typed 'yes', not {V}"), ("v0.3.0-w4-cutovr", f"typed 'v0.3.0-w4-cutovr', not {V}"),
    ("", "nothing typed"), (None, "no answer (end of input)")])
def test_only_the_version_typed_back_confirms(typed, problem):
    assert cp.answer_problem(typed, V) == problem


def test_the_question_ends_like_every_confirmation():
    assert cp.question(V) == f"type the version ({V}) to go on: "


# ---------------------------------------------------------------- nothing to roll back

PRE = "ghcr.io/lacatfly/twilight-drive@sha256:" + "1" * 64


def nothing(**kw):
    args = dict(version=V, running_version="v0.2.0", running_digest=PRE, pre_digest=PRE, previous_version="v0.2.0",
                deployed=False, to_given=False)
    return cp.nothing_to_roll_back(**{**args, **kw})


def test_nothing_deployed_and_the_t0_digest_running_is_nothing_to_roll_back():
    assert nothing() == "nothing to roll back: tvps runs v0.2.0, the pre-cutover release"


def test_without_a_journal_the_previous_release_running_is_nothing_to_roll_back():
    assert nothing(version="v0.2.0", pre_digest=None, running_digest="x@sha256:" + "9" * 64) == \
        "nothing to roll back: tvps runs v0.2.0, the pre-cutover release"


@pytest.mark.parametrize("kw", [dict(deployed=True), dict(to_given=True), dict(running_version=None),
                                dict(running_digest="x@sha256:" + "2" * 64),
                                dict(pre_digest=None, running_version="v0.3.0-w4-cutover")])
def test_anything_else_goes_on_to_the_rollback(kw):
    assert nothing(**kw) is None


# ---------------------------------------------------------------- the lock holder before "resume it"

HOLDER = lock.Holder(operator="op@laptop", version=V, reason="cutover", acquired_at="2026-12-07T02:00:00+00:00",
                     client_pid=4242, host="laptop", client_start="99")


def test_a_live_holder_is_named_before_any_resume_pointer():
    e = lock.busy(HOLDER, "alive", "a cutover of V is in progress since S (last phase: deploy)", "inv cutover --resume")
    assert e is not None and e.exit_code == 1
    assert e.message == ("a cutover of V is in progress since S (last phase: deploy); the deploy lock is held now by "
                         "PID 4242 on laptop, operator op@laptop, since 2026-12-07T02:00:00+00:00 (cutover)")
    assert e.hint.startswith("wait for it to finish") and "kill -INT 4242" in e.hint and e.hint.endswith("inv cutover --resume")


def test_a_holder_elsewhere_points_at_its_operator_and_the_release():
    e = lock.busy(HOLDER, "elsewhere", "d", "inv cutover --resume")
    assert e is not None and "ask op@laptop" in e.hint and "`inv lock --release`, then: inv cutover --resume" in e.hint


@pytest.mark.parametrize("state", ["mine", "dead"])
def test_mine_or_dead_leaves_the_resume_pointer_as_it_is(state):
    assert lock.busy(HOLDER, state, "d", "r") is None


# ---------------------------------------------------------------- the tag a rollback leaves behind

def test_the_tag_left_on_origin_is_named_with_the_commands_that_delete_it():
    assert tag_left_line(V, "b" * 40, "/home/op/twilight drive") == (
        f"tag {V} stays on origin (at bbbbbbbbbbbb); if {V} will not be retried as it is, delete it: "
        f"git -C '/home/op/twilight drive' push origin :refs/tags/{V} && git -C '/home/op/twilight drive' tag -d {V}")


# ---------------------------------------------------------------- the decision nobody confirmed

def facts(verdict="ROLLBACK", confirmed_by="", **more):
    return {"cutover": {"started_at": "2026-12-07T02:00:00+00:00",
                        "decision": {"verdict": verdict, "reason": "server smoke red", "at": "2026-12-07T02:20:00+00:00",
                                     "confirmed_by": confirmed_by, "how": "typed yes" if confirmed_by else "not confirmed"}},
            "deployed_at": "2026-12-07T02:05:00+00:00", **more}


STEPS = [Step("decide", "2026-12-07T02:20:00+00:00", "2026-12-07T02:20:01+00:00", "ok",
              {"verdict": "ROLLBACK", "inputs": [
                  {"id": "deploy", "state": "green", "flags": [], "summary": "healthy"},
                  {"id": "smoke", "state": "red", "flags": ["close_raw_null", "http_5xx"], "summary": "HTTP 500"},
                  {"id": "agent", "state": "red", "flags": [], "summary": "no answer"}]})]


def test_an_unconfirmed_rollback_is_pending_with_its_red_flags_and_live_time():
    p = pending.of(V, facts(), STEPS)
    assert p is not None and p.verdict == "ROLLBACK"
    assert p.red_flags == ("smoke: close_raw_null, http_5xx", "agent: no answer")
    assert p.warning("tvps", "2026-12-07T02:47:30+00:00") == (
        f"NOT ROLLED BACK: {V} is still serving on tvps, live for 42 min; red flags: smoke: close_raw_null, http_5xx; "
        "agent: no answer — the runbook says roll back now")


def test_an_unconfirmed_go_is_pending_and_says_it_waits():
    p = pending.of(V, facts("GO"), [])
    assert p is not None and p.warning("tvps", "2026-12-07T03:15:00+00:00") == \
        f"not closed out: {V} is serving on tvps, live for 1 h 10 min; GO is waiting for confirmation"


@pytest.mark.parametrize("f", [facts(confirmed_by="op"), facts("INCOMPLETE"), facts("FIX-FORWARD"),
                               facts(rolled_back={"at": "x"}), facts(closeout={"at": "x"}), {}])
def test_confirmed_acted_on_or_other_verdicts_are_not_pending(f):
    assert pending.of(V, f, STEPS) is None


@pytest.mark.parametrize("since,now,text", [("2026-12-07T02:00:00+00:00", "2026-12-07T02:00:59+00:00", "0 min"),
                                            ("2026-12-07T02:00:00+00:00", "2026-12-07T04:05:00+00:00", "2 h 05 min"),
                                            ("", "2026-12-07T02:00:00+00:00", "?")])
def test_live_for(since, now, text):
    assert pending.live_for(since, now) == text
