"""runbook.py: the journal's step names and fact keys are its file format; these pin them as the
files have always spelled them (a journal written before keeps loading, decide and report keep reading it)."""
from __future__ import annotations

from twilight_ops import runbook
from twilight_ops.runbook import Fact, Phases, Steps


def test_step_names_are_the_files_names():
    assert [Steps.deploy(3), Steps.deploy(3, Steps.PULL), Steps.deploy(3, Steps.PERSIST_VERSION),
            Steps.deploy(3, Steps.UP), Steps.deploy(3, Steps.HEALTH_GATE), Steps.deploy_parts(3)] == [
        "deploy#3", "deploy#3:pull", "deploy#3:persist-version", "deploy#3:up", "deploy#3:health-gate", "deploy#3:"]
    assert [Steps.rollback(2), Steps.rollback(2, Steps.PIN), Steps.rollback(2, Steps.DB_RESTORE),
            Steps.rollback(2, Steps.HEALTH), Steps.rollback(2, Steps.HERMES), Steps.rollback_parts(2)] == [
        "rollback#2", "rollback#2:pin", "rollback#2:db-restore", "rollback#2:health", "rollback#2:hermes", "rollback#2:"]
    assert (Steps.smoke("w4"), Steps.smoke("legacy")) == (Steps.SMOKE_W4, Steps.SMOKE_LEGACY) == ("smoke-w4", "smoke-legacy")
    assert Steps.cutover(Phases.HERMES) == "cutover:hermes-reinstall"
    assert Steps.guard_rollback(4) == "guard-rollback#4"
    assert (Steps.PREFLIGHT, Steps.SNAPSHOT, Steps.TAG_PUSH, Steps.DEPLOY_NOOP, Steps.HERMES_INSTALL, Steps.HERMES_RESTART,
            Steps.HERMES_VERIFY, Steps.AGENT_SMOKE, Steps.DECIDE, Steps.CLOSEOUT) == (
        "preflight", "snapshot", "tag-push", "deploy-noop", "hermes-install", "hermes-restart", "hermes-verify",
        "agent-smoke", "decide", "closeout")


def test_which_step_is_what():
    assert Steps.cutover_phase("cutover:agent-smoke") == "agent-smoke"
    assert Steps.cutover_phase("agent-smoke") is None
    assert Steps.is_rollback("rollback#2") and not Steps.is_rollback("rollback#2:pin")
    assert all(Steps.is_deploy(n) for n in ("deploy-noop", "deploy#1", "deploy#1:up"))
    assert not Steps.is_deploy("cutover:deploy")


def test_fact_keys_are_the_files_keys():
    keys = {k: v for k, v in vars(Fact).items() if k.isupper()}
    assert set(keys.values()) == {
        "cutover", "pre_version", "pre_digest", "cutover_commit", "preflight_at", "snapshot", "published_digest",
        "deploy_attempt", "post_digest", "deployed_at", "rollback_attempt", "rolled_back", "lock_takeovers",
        "closeout", "forward_baseline", "data_plan", "db_restore"}     # the last two: issue 24


def test_the_phase_table():
    assert runbook.CUTOVER_PHASES == ("preflight", "tag-push", "deploy", "smoke", "hermes-reinstall", "agent-smoke")
    assert [(p.name, p.at, p.budget) for p in runbook.PHASES] == [
        ("preflight", 0, "preflight"), ("tag-push", 5, "tag_push"), ("deploy", 5, "tag_push"), ("smoke", 15, "smoke"),
        ("hermes-reinstall", 25, "hermes_reinstall"), ("agent-smoke", 35, "agent_smoke"), ("decide", 50, "closeout"),
        ("closeout", 55, "closeout"), ("rollback", 50, "rollback")]
    assert runbook.phase("nope") is None


def test_readers_give_the_journal_s_values_or_nothing():
    rolled = {"at": "2026-12-03T10:40:00+00:00", "attempt": 1, "to": "v0.2.0@sha256:" + "a" * 64}
    facts = {Fact.ROLLED_BACK: rolled, Fact.DEPLOY_ATTEMPT: 2, Fact.CUTOVER: {"started_at": "t"}}
    assert runbook.rolled_back(facts) is rolled
    assert runbook.deploy_attempt(facts) == 2 and runbook.rollback_attempt(facts) == 0
    assert runbook.cutover_state(facts) == {"started_at": "t"}
    assert runbook.cutover_state({}) == {} and runbook.snapshot({}) is None and runbook.closeout({}) is None
