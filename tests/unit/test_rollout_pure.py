"""Pure parts of the one release path (phases/rollout.py) and its one health wait (health.py):
the attempt counter of deploy and rollback, step names, what a reference runs, when the wait stops."""
from __future__ import annotations

import pytest

from twilight_ops import health
from twilight_ops.facts import ComposeService
from twilight_ops.health import ServiceStatus
from twilight_ops.journal import Step, new_journal
from twilight_ops.phases import rollout
from twilight_ops.phases.rollout import DEPLOY, ROLLBACK, Ref

D = "sha256:" + "b" * 64


def test_step_names_are_the_ones_decide_and_report_read():
    assert rollout.step_name(DEPLOY, 2) == "deploy#2"
    assert rollout.step_name(DEPLOY, 1, "health-gate") == "deploy#1:health-gate"
    assert rollout.step_name(ROLLBACK, 3, "pin") == "rollback#3:pin"


def test_rollback_attempts_share_the_counter_rule():
    j = new_journal("v0.3.0-w4-cutover", "tvps", "ops")
    assert rollout.attempt(j, ROLLBACK) == 1 and j.facts["rollback_attempt"] == 1
    j.steps.append(Step("rollback#1:pin", "t", outcome="ok"))
    j.steps.append(Step("rollback#1:pull", "t"))                  # killed in it
    assert rollout.attempt(j, ROLLBACK) == 1                      # resumed
    j.steps.append(Step("rollback#1:pull", "t", outcome="unreachable"))
    assert rollout.attempt(j, ROLLBACK) == 1                      # a part did not answer: still resumed
    j.steps.append(Step("rollback#1:pull", "t", outcome="failed"))
    assert rollout.attempt(j, ROLLBACK) == 2                      # failed: a new attempt
    j.steps.append(Step("rollback#2", "t", outcome="ok"))
    assert rollout.attempt(j, ROLLBACK) == 3                      # finished: a new attempt
    assert "deploy_attempt" not in j.facts                        # the two counters are apart


def test_a_rollback_ends_a_deploy_attempt_but_not_a_rollback_attempt():
    j = new_journal("v0.3.0-w4-cutover", "tvps", "ops")
    j.facts.update(deploy_attempt=1, rollback_attempt=1, rolled_back={"attempt": 1, "rollback_attempt": 1})
    j.steps.append(Step("deploy#1:health-gate", "t", outcome="ok"))
    j.steps.append(Step("rollback#1:health", "t", outcome="ok"))
    assert rollout.attempt(j, DEPLOY) == 2
    assert rollout.attempt(j, ROLLBACK) == 1


def svc(version: str, digest: str) -> ServiceStatus:
    return ServiceStatus("backend", "running", "healthy", 0, f"ghcr.io/x/y:{version}", version, f"ghcr.io/x/y@{digest}")


def test_a_tag_is_verified_by_the_running_tag_and_a_pin_by_its_digest():
    assert Ref("v0.3.0-w4-cutover").runs(svc("v0.3.0-w4-cutover", D))
    assert not Ref("v0.3.0-w4-cutover").runs(svc("v0.2.0", D))
    pin = Ref(f"v0.2.0@{D}", D)
    assert pin.runs(svc("", D)) and not pin.runs(svc("", "sha256:" + "c" * 64))
    assert not pin.runs(None) and pin.running(None) == "nothing"
    assert pin.running(svc("", D)) == f"ghcr.io/x/y@{D}" and pin.wanted == D
    assert Ref("v0.3.0-w4-cutover").running(svc("v0.2.0", D)) == "ghcr.io/x/y:v0.2.0"


def row(state: str, health: str) -> ComposeService:
    return ComposeService("backend", "c1", "twilight-backend-1", state, health, "Up", "img")


@pytest.mark.parametrize("state,health_,why", [
    ("running", "starting", ""),
    ("running", "healthy", ""),
    ("created", "", ""),
    ("restarting", "", "a restart loop"),
    ("exited", "", "it will not turn healthy"),
    ("dead", "", "it will not turn healthy"),
    ("running", "unhealthy", "it will not turn healthy"),
])
def test_the_wait_stops_at_once_only_when_it_cannot_turn_healthy(state, health_, why):
    assert health.lost(row(state, health_)) == why


def test_the_wait_describes_the_state_it_prints():
    assert health.lost(None) == "" and health.describe(None) == "not listed"
    assert health.describe(row("running", "starting")) == "running, health starting"
    assert health.describe(row("running", "")) == "running, health none"


def test_an_unreachable_part_during_a_rollback_names_the_rollback_that_continues():
    from twilight_ops.config import DEFAULTS, load_settings
    from twilight_ops.phases import rollback
    from twilight_ops.target import Target

    t = Target(load_settings(dict(DEFAULTS)), version="v0.3.0-w4-cutover", announce=None,
               config_files=("defaults", "/tmp/x y/invoke.yaml (-f)"))
    assert rollback.rollback_again(t, "5xx > 5%") == \
        "inv -f '/tmp/x y/invoke.yaml' rollback --version v0.3.0-w4-cutover --yes --reason '5xx > 5%'"
    assert t.connected is False


def test_the_rollback_resume_line_carries_the_runs_env_settings_as_every_next_step_does(monkeypatch):
    """Target.command (the rollback, --to and --restore-db hints) starts with the run's invocation: its
    INVOKE_TWILIGHT_* settings (never one naming a token) and its -f file, so it aims at the same tvps."""
    from twilight_ops.config import DEFAULTS, load_settings
    from twilight_ops.phases import rollback
    from twilight_ops.target import Target

    monkeypatch.setenv("INVOKE_TWILIGHT_HOST", "tvps-b")
    monkeypatch.setenv("INVOKE_TWILIGHT_TOKEN_FILE", "/secret")
    t = Target(load_settings(dict(DEFAULTS)), version="v0.3.0-w4-cutover", announce=None,
               config_files=("defaults", "/tmp/x/invoke.yaml (-f)"))
    assert rollback.rollback_again(t, "5xx") == \
        "INVOKE_TWILIGHT_HOST=tvps-b inv -f /tmp/x/invoke.yaml rollback --version v0.3.0-w4-cutover --yes --reason 5xx"
    assert t.command("status") == "INVOKE_TWILIGHT_HOST=tvps-b inv -f /tmp/x/invoke.yaml status"
