"""inv decide: the go/no-go as a pure function over journal evidence (plain Journal values)."""
from __future__ import annotations

from twilight_ops import decide as d
from twilight_ops.journal import Journal, Step

T0 = "2026-12-03T10:00:00+00:00"


def at(minute: int, second: int = 0) -> str:
    return f"2026-12-03T10:{minute:02d}:{second:02d}+00:00"


def step(name: str, minute: int, outcome: str = "ok", note: str = "", **evidence) -> Step:
    return Step(name=name, started_at=at(minute), ended_at=at(minute, 30), outcome=outcome, note=note, evidence=evidence)


def journal(*steps: Step, **facts) -> Journal:
    return Journal(version="v0.3.0-w4-cutover", host="tvps", operator="op@laptop", created_at=T0, updated_at=T0,
                   facts=facts, steps=list(steps))


GREEN_SMOKE = dict(verdict="green", envelope="w4", status=200, red_flags=[], warnings=[], next_step="continue")
AGENT_GREEN = dict(checks=[{"id": "latest_quote", "level": "api", "status": "PASS", "red_flags": []},
                           {"id": "cache", "level": "api", "status": "SKIP", "red_flags": []},
                           {"id": "latest_quote", "level": "agent", "status": "PASS", "red_flags": []}])


def deployed(minute: int = 6) -> list[Step]:
    return [step("deploy#1:pull", minute - 1), step("deploy#1:up", minute - 1),
            step("deploy#1:health-gate", minute - 1), step("deploy#1", minute, digest="repo@sha256:" + "b" * 64)]


def green_journal() -> Journal:
    return journal(*deployed(), step("smoke-w4", 15, **GREEN_SMOKE), step("hermes-verify", 25),
                   step("agent-smoke", 35, **AGENT_GREEN), deploy_attempt=1)


def verdict(j: Journal) -> d.Decision:
    return d.decide(d.gather(j), j.version)


def test_all_green_is_go_with_the_runbook_reason():
    dec = verdict(green_journal())
    assert dec.verdict == d.GO
    assert "all four agent checks green + curl smoke green" in dec.reason
    assert dec.next_step.startswith("inv closeout")
    assert [i.state for i in dec.inputs] == ["green"] * 4


def test_nothing_recorded_is_incomplete_and_names_every_command():
    dec = verdict(journal())
    assert dec.verdict == d.INCOMPLETE
    for cmd in ("inv deploy", "inv smoke", "inv hermes-reinstall", "inv agent-smoke"):
        assert cmd in dec.next_step


def test_close_raw_null_smoke_is_rollback():
    smoke = dict(GREEN_SMOKE, verdict="red", next_step="rollback",
                 red_flags=[{"code": "close_raw_missing", "message": "close_raw is null — Composer didn't return a Quote"}])
    j = journal(*deployed(), step("smoke-w4", 15, outcome="red", **smoke), deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.ROLLBACK               # red decides although the agent checks never ran
    assert "close_raw" in dec.reason and "inv rollback --version v0.3.0-w4-cutover" in dec.next_step
    assert "close_raw_missing" in dec.trigger


def test_legacy_envelope_after_deploy_is_rollback():
    smoke = dict(GREEN_SMOKE, verdict="red", envelope="legacy", next_step="rollback",
                 red_flags=[{"code": "legacy_envelope", "message": "the pull didn't take"}])
    dec = verdict(journal(*deployed(), step("smoke-w4", 15, outcome="red", **smoke), deploy_attempt=1))
    assert dec.verdict == d.ROLLBACK and "legacy_envelope" in dec.trigger


def test_canonical_unit_violation_is_fix_forward_not_rollback():
    smoke = dict(GREEN_SMOKE, verdict="red", status=500, next_step="fix-forward",
                 red_flags=[{"code": "http_5xx", "message": "HTTP 500 with CanonicalUnitViolation"}])
    dec = verdict(journal(*deployed(), step("smoke-w4", 15, outcome="red", **smoke), deploy_attempt=1))
    assert dec.verdict == d.FIX_FORWARD
    assert "do not roll back" in dec.reason and "fix forward" in dec.next_step


def test_fix_forward_loses_to_a_rollback_class_red_flag():
    smoke = dict(GREEN_SMOKE, verdict="red", status=500, next_step="fix-forward",
                 red_flags=[{"code": "http_5xx", "message": "CanonicalUnitViolation"}])
    agent = dict(checks=[{"id": "unknown_code", "level": "api", "status": "FAIL",
                          "red_flags": [{"code": "unknown_code_500"}]}])
    j = journal(*deployed(), step("smoke-w4", 15, outcome="red", **smoke), step("hermes-verify", 25),
                step("agent-smoke", 35, outcome="red", **agent), deploy_attempt=1)
    assert verdict(j).verdict == d.ROLLBACK


def test_failed_health_gate_is_rollback():
    j = journal(step("deploy#1:pull", 5), step("deploy#1:up", 5),
                step("deploy#1:health-gate", 6, outcome="failed", note="backend not healthy within 60 s"),
                deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.ROLLBACK
    assert dec.inputs[0].state == "red" and "health-gate failed: backend not healthy" in dec.inputs[0].summary


def test_a_deploy_cut_off_midway_is_incomplete_not_green():
    j = journal(step("deploy#1:pull", 5), step("deploy#1:up", 5, outcome="running"), deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.INCOMPLETE and "--resume" in dec.next_step


def test_a_pull_that_could_not_reach_the_registry_is_incomplete_naming_it_never_rollback():
    note = ("the pull of v0.3.0-w4-cutover could not reach the registry 127.0.0.1:56639 (connection refused): "
            "nothing was changed")
    j = journal(step("deploy#1:pull", 5, outcome="unreachable", note=note), deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.INCOMPLETE and dec.inputs[0].state == "missing"
    assert "pull unreachable" in dec.reason and "the registry 127.0.0.1:56639 (connection refused)" in dec.reason
    assert "inv cutover --version v0.3.0-w4-cutover --resume" in dec.next_step


def test_an_interrupted_up_is_incomplete_not_rollback():
    # issue 23 item 4: Ctrl-C inside `compose up` read as "up failed: interrupted: KeyboardInterrupt" → ROLLBACK
    j = journal(step("deploy#1:pull", 5), step("deploy#1:persist-version", 5),
                step("deploy#1:up", 5, outcome="interrupted", note="interrupted: KeyboardInterrupt"), deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.INCOMPLETE and "up interrupted" in dec.reason and "--resume" in dec.next_step


def test_a_resumed_attempt_that_then_fails_its_gate_is_rollback():
    j = journal(step("deploy#1:pull", 5, outcome="unreachable", note="could not reach the registry"),
                step("deploy#1:pull", 8), step("deploy#1:up", 8),
                step("deploy#1:health-gate", 9, outcome="failed", note="backend restarting: a restart loop"),
                deploy_attempt=1)
    assert verdict(j).verdict == d.ROLLBACK


def test_a_smoke_older_than_the_deploy_is_stale():
    j = journal(step("smoke-w4", 1, **GREEN_SMOKE), *deployed(6), step("hermes-verify", 25),
                step("agent-smoke", 35, **AGENT_GREEN), deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.INCOMPLETE
    assert dec.inputs[1].state == "missing" and "older than the deploy" in dec.inputs[1].summary


def test_agent_checks_before_the_skill_was_verified_do_not_count():
    j = journal(*deployed(), step("smoke-w4", 15, **GREEN_SMOKE), step("agent-smoke", 20, **AGENT_GREEN),
                step("hermes-verify", 25), deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.INCOMPLETE and "inv agent-smoke" in dec.next_step


def test_agent_red_flag_is_rollback():
    agent = dict(checks=[{"id": "latest_quote", "level": "agent", "status": "FAIL",
                          "red_flags": [{"code": "hermes_legacy_prompt"}]}])
    j = journal(*deployed(), step("smoke-w4", 15, **GREEN_SMOKE), step("hermes-verify", 25),
                step("agent-smoke", 35, outcome="red", **agent), deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.ROLLBACK and "hermes_legacy_prompt" in dec.trigger


def test_agent_failure_without_red_flag_is_incomplete():
    agent = dict(checks=[{"id": "latest_quote", "level": "agent", "status": "FAIL", "red_flags": [],
                          "evidence": {"reason": "no answer after 2 attempt(s)"}}])
    j = journal(*deployed(), step("smoke-w4", 15, **GREEN_SMOKE), step("hermes-verify", 25),
                step("agent-smoke", 35, outcome="red", **agent), deploy_attempt=1)
    dec = verdict(j)
    assert dec.verdict == d.INCOMPLETE and "no answer" in dec.reason


def test_an_agent_that_could_not_answer_is_incomplete_even_beside_passing_checks():
    """The model endpoint down: Hermes exits 0 with its own error line; agent-smoke records UNREACHABLE."""
    agent = dict(checks=[
        {"id": "unknown_code", "level": "api", "status": "PASS", "red_flags": []},
        {"id": "unknown_code", "level": "agent", "status": "UNREACHABLE", "red_flags": [],
         "evidence": {"reason": "incomplete: no answer after 2 attempt(s): the agent reported: "
                                "API call failed after 3 retries: Connection error."}}])
    for outcome in ("red", "ok"):     # whatever the step's outcome says, an unanswered check is never green
        j = journal(*deployed(), step("smoke-w4", 15, **GREEN_SMOKE), step("hermes-verify", 25),
                    step("agent-smoke", 35, outcome=outcome, **agent), deploy_attempt=1)
        dec = verdict(j)
        assert dec.verdict == d.INCOMPLETE, outcome
        assert "unknown_code (agent)" in dec.reason and "API call failed after 3 retries" in dec.reason


def test_unchecked_smoke_token_problem_is_not_a_rollback():
    smoke = dict(GREEN_SMOKE, verdict="red", status=401, next_step="investigate",
                 red_flags=[{"code": "unauthorized", "message": "HTTP 401"}])
    dec = verdict(journal(*deployed(), step("smoke-w4", 15, outcome="red", **smoke), deploy_attempt=1))
    assert dec.verdict == d.INCOMPLETE and "not checked" in dec.inputs[1].summary


def test_already_running_noop_deploy_counts_as_green():
    j = journal(step("deploy-noop", 6, note="v0.3.0-w4-cutover already runs healthy; nothing to do"),
                step("smoke-w4", 15, **GREEN_SMOKE), step("hermes-verify", 25), step("agent-smoke", 35, **AGENT_GREEN))
    assert verdict(j).verdict == d.GO


def test_decision_json_carries_every_input():
    js = verdict(green_journal()).to_json()
    assert js["verdict"] == "GO" and [i["id"] for i in js["inputs"]] == ["deploy", "smoke", "hermes", "agent"]


# ---------------------------------------------------------------- issue 21 item 3: one next step, same target

PREFIX = "INVOKE_TWILIGHT_DEPLOY_DEADLINE=15 inv -f '/tmp/my cfg/invoke.yaml'"


def test_invocation_carries_the_runs_f_file_and_env_but_no_token_setting():
    env = {"INVOKE_TWILIGHT_DEPLOY_DEADLINE": "15", "INVOKE_TWILIGHT_TOKEN_FILE": "/secret/path", "HOME": "/root",
           "INVOKE_TWILIGHT_API_TOKEN": "abc"}
    from twilight_ops import runbook

    assert runbook.invocation("/tmp/my cfg/invoke.yaml", env) == PREFIX
    assert runbook.invocation(None, {}) == "inv"


def test_next_step_is_one_shape_quoted_with_its_note_and_a_not_needed_form():
    from twilight_ops.runbook import next_step

    assert next_step(PREFIX, "rollback", "--version", "v0.3.0-w4-cutover", reason="deploy: it's red",
                     note="runbook §2") == (f"{PREFIX} rollback --version v0.3.0-w4-cutover --reason "
                                            "'deploy: it'\"'\"'s red'  (runbook §2)")
    assert next_step("inv", "smoke", first="fix the cause") == "fix the cause, then inv smoke"
    assert next_step(PREFIX, "smoke", not_needed="ROLLBACK") == "not needed: the decision is ROLLBACK"


def failed_gate_journal() -> Journal:
    note = ("health-gate: backend running, not healthy after 60 s — roll back — run: inv -f /x/invoke.yaml rollback "
            "--version v0.3.0-w4-cutover --reason 'backend running, not healthy'")
    return journal(step("deploy#1:pull", 5), step("deploy#1:up", 5),
                   step("deploy#1:health-gate", 6, outcome="failed", note=note), deploy_attempt=1)


def test_a_rollback_names_one_command_with_the_runs_prefix_and_no_run_line_in_its_reason():
    j = failed_gate_journal()
    dec = d.decide(d.gather(j, PREFIX), j.version, PREFIX)
    assert dec.verdict == d.ROLLBACK
    assert dec.next_step == (f"{PREFIX} rollback --version v0.3.0-w4-cutover --reason 'deploy: deploy_failed'  "
                             "(runbook §2, budget 30 min)")
    assert "run: " not in dec.reason and "inv " not in dec.reason
    assert "backend running, not healthy after 60 s" in dec.reason


def test_rows_that_never_ran_say_they_are_not_needed_under_a_rollback():
    j = failed_gate_journal()
    dec = d.decide(d.gather(j, PREFIX), j.version, PREFIX)
    missing = [i for i in dec.inputs if i.state == d.MISSING]
    assert [i.id for i in missing] == ["smoke", "hermes", "agent"]
    assert {i.run for i in missing} == {"not needed: the decision is ROLLBACK"}


def test_inside_a_cutover_the_one_command_is_its_resume_with_yes():
    j = failed_gate_journal()
    dec = d.decide(d.gather(j, PREFIX), j.version, PREFIX, cutover=True)
    assert dec.next_step == f"{PREFIX} cutover --version v0.3.0-w4-cutover --resume --yes  (rolls back: runbook §2, budget 30 min)"
    go = d.decide(d.gather(green_journal(), "inv -f c.yaml"), "v0.3.0-w4-cutover", "inv -f c.yaml", cutover=True)
    assert go.next_step == "inv -f c.yaml cutover --version v0.3.0-w4-cutover --resume --yes  (closes out: T+00:55)"


def test_incomplete_names_its_commands_with_the_runs_prefix():
    dec = d.decide(d.gather(journal(), PREFIX), "v0.3.0-w4-cutover", PREFIX)
    assert dec.next_step == (f"run: {PREFIX} deploy --version v0.3.0-w4-cutover ; {PREFIX} smoke ; "
                             f"{PREFIX} hermes-reinstall ; {PREFIX} agent-smoke")


def test_the_decision_table_shows_not_needed_rows_as_such():
    import io

    from rich.console import Console

    from twilight_ops.render.decide import render

    j = failed_gate_journal()
    buf = io.StringIO()
    render(d.decide(d.gather(j, PREFIX), j.version, PREFIX), Console(file=buf, width=400, emoji=False))
    out = buf.getvalue()
    assert "(not needed: the decision is ROLLBACK)" in out and "(run: " not in out
    assert out.count("rollback --version") == 1


def test_a_deploy_hint_with_a_command_never_reaches_the_decision_reason():
    note = ("the pull of v0.3.0-w4-cutover could not reach the registry 127.0.0.1:5 (connection refused): nothing was "
            "changed, v0.3.0-w4-cutover was not started; tvps now: backend runs v0.2.0 — nothing to roll back; when it "
            "answers again: inv -f /x/invoke.yaml deploy --version v0.3.0-w4-cutover --yes")
    j = journal(step("deploy#1:pull", 5, outcome="unreachable", note=note), deploy_attempt=1)
    dec = d.decide(d.gather(j, "inv -f /x/invoke.yaml"), j.version, "inv -f /x/invoke.yaml")
    assert "the registry 127.0.0.1:5 (connection refused)" in dec.reason and "inv " not in dec.reason
    assert dec.next_step.startswith("run: inv -f /x/invoke.yaml cutover --version v0.3.0-w4-cutover --resume")
