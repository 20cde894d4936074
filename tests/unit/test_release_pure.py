"""Pure parts of tag-push and deploy: the publish decision, git ls-remote parsing, the
registry's token challenge, the compose .env edit, the deploy attempt, the same-day rule."""
from __future__ import annotations

import pytest

from twilight_ops import envfile, registry
from twilight_ops.builders import git
from twilight_ops.executor import render
from twilight_ops.journal import Step, new_journal
from twilight_ops.phases import deploy, rollout, tag_push
from twilight_ops.phases.tag_push import Poll, decide

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("poll,verdict", [
    (Poll("", "", "", None), "wait"),
    (Poll("queued", "", "u", None), "wait"),
    (Poll("in_progress", "", "u", D), "wait"),               # the image can land before the run ends
    (Poll("completed", "success", "u", None), "wait"),       # the run says done, the registry not yet
    (Poll("completed", "success", "u", D), "done"),
    (Poll("completed", "failure", "u", None), "failed"),
    (Poll("completed", "cancelled", "u", D), "failed"),
    (Poll("completed", "timed_out", "u", None), "failed"),
    (Poll("completed", "skipped", "u", D), "failed"),           # done and failed at once, never the 20-min deadline
    (Poll("completed", "neutral", "u", None), "failed"),
    (Poll("completed", "stale", "u", None), "failed"),
    (Poll("completed", "action_required", "u", None), "failed"),
])
def test_publish_decision(poll, verdict):
    assert decide(poll) == verdict


def test_progress_line_names_run_and_registry():
    assert Poll("in_progress", "", "u", None).line(42.4) == "waiting for the image: CI in_progress, registry not yet — 42s"


def test_progress_line_names_other_workflows_while_the_publish_run_is_missing():
    codeql = ("CodeQL (.github/workflows/codeql.yml) failure",)
    assert Poll("", "", "", None, "", codeql).line(3) == (
        "waiting for the image: CI not started (other workflows on the tag: CodeQL (.github/workflows/codeql.yml) "
        "failure), registry not yet — 3s")
    assert Poll("queued", "", "u", None, "publish", codeql).line(3) == "waiting for the image: CI queued, registry not yet — 3s"


def test_ls_remote_parsing():
    lightweight = "c058ef83d32414e23940f88209ef06f44906a53f\trefs/tags/v0.3.0-w4-cutover\n"
    annotated = ("bb76a973681ae3d36dda887c49addb7e8ab2c6bb\trefs/tags/v0.2.0\n"
                 "98a9b2fff3a952ee507c60089fc4cf959db93f25\trefs/tags/v0.2.0^{}\n")
    assert git.parse_ls_remote(lightweight, "v0.3.0-w4-cutover").startswith("c058ef83")
    assert git.parse_ls_remote(annotated, "v0.2.0").startswith("98a9b2ff")
    assert git.parse_ls_remote("", "v0.2.0") is None
    assert render(git.push_tag("origin", "v0.3.0-w4-cutover")) == (
        "git push --quiet origin refs/tags/v0.3.0-w4-cutover:refs/tags/v0.3.0-w4-cutover")
    assert render(git.tag("v0.3.0-w4-cutover", "c058ef8")) == "git tag --no-sign v0.3.0-w4-cutover c058ef8"


def test_registry_challenge():
    ghcr = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:lacatfly/twilight-drive:pull"'
    assert registry.parse_challenge(ghcr) == {"realm": "https://ghcr.io/token", "service": "ghcr.io",
                                              "scope": "repository:lacatfly/twilight-drive:pull"}
    assert registry.parse_challenge('Basic realm="Registry"') is None
    assert registry.parse_challenge("") is None
    assert registry.split_repo("ghcr.io/lacatfly/twilight-drive") == ("ghcr.io", "lacatfly/twilight-drive")


def test_env_file_edit_keeps_every_other_line():
    text = "# deploy env\nCOMPOSE_PROJECT_NAME=twilight\nexport TWILIGHT_VERSION=v0.2.0\nTWILIGHT_VERSION=v0.1.9\n"
    assert envfile.get(text, "TWILIGHT_VERSION") == "v0.1.9"
    out = envfile.set_var(text, "TWILIGHT_VERSION", "v0.3.0-w4-cutover")
    assert out == "# deploy env\nCOMPOSE_PROJECT_NAME=twilight\nTWILIGHT_VERSION=v0.3.0-w4-cutover\n"
    assert envfile.set_var("", "TWILIGHT_VERSION", "v0.2.0") == "TWILIGHT_VERSION=v0.2.0\n"
    assert envfile.get(envfile.set_var("", "TWILIGHT_VERSION", "v0.2.0@" + D), "TWILIGHT_VERSION").endswith(D)
    with pytest.raises(ValueError):
        envfile.set_var("", "TWILIGHT_VERSION", "v1 $(id)")


def test_deploy_attempts_resume_or_start_anew():
    j = new_journal("v0.3.0-w4-cutover", "tvps", "ops")
    assert rollout.attempt(j, rollout.DEPLOY) == 1
    j.steps.append(Step("deploy#1:pull", "t", outcome="ok"))
    j.steps.append(Step("deploy#1:up", "t"))           # outcome "running": the run was killed in it
    assert rollout.attempt(j, rollout.DEPLOY) == 1                      # resume the cut-off attempt
    j.steps.append(Step("deploy#1:up", "t", outcome="failed"))
    assert rollout.attempt(j, rollout.DEPLOY) == 2                      # a failed attempt is over: start anew
    j.steps.append(Step("deploy#2", "t", outcome="ok"))
    assert rollout.attempt(j, rollout.DEPLOY) == 3                      # the last one finished
    j.steps.append(Step("deploy#3:pull", "t"))
    j.facts["rolled_back"] = {"at": "2026-12-01T02:00:00+00:00", "attempt": 3}
    assert rollout.attempt(j, rollout.DEPLOY) == 4                      # the last one was rolled back


def test_rolled_back_today_is_the_shanghai_calendar_day():
    # 2026-12-01 17:30 UTC is already 2026-12-02 in Asia/Shanghai
    assert deploy.shanghai_day("2026-12-01T17:30:00+00:00") == "2026-12-02"
    assert deploy.shanghai_day("2026-12-01T15:59:59+00:00") == "2026-12-01"


def test_commit_ids():
    assert tag_push.git_sha("c058ef8") and not tag_push.git_sha("HEAD~1") and not tag_push.git_sha("C058EF8")


@pytest.mark.parametrize("facts,says", [
    ({"pre_digest": "ghcr.io/lacatfly/twilight-drive@sha256:../../x"}, "not an image digest"),
    ({"pre_digest": "ghcr.io/lacatfly/twilight-drive@sha256:" + "a" * 64, "pre_version": "v0.2.0;reboot"},
     "not a release tag"),
])
def test_rollback_validates_the_journals_pin_before_using_it(facts, says):
    """The journal may be tvps's mirror: its digest and version pass the same validators as --to."""
    from twilight_ops.config import DEFAULTS, load_settings
    from twilight_ops.errors import BadInput
    from twilight_ops.phases import rollback
    from twilight_ops.target import Target

    j = new_journal("v0.3.0-w4-cutover", "tvps", "ops")
    j.facts.update(facts)
    t = Target(load_settings(dict(DEFAULTS)), version="v0.3.0-w4-cutover", announce=None)
    with pytest.raises(BadInput) as e:
        rollback.resolve(t, j, None)       # refused before any connection or registry call
    assert says in e.value.line() and t.connected is False


@pytest.mark.parametrize("path", ["/data/..", "/home/u/twilight/data/", "/x/snap\x1b]0;pwn"])
def test_rollback_refuses_a_hostile_snapshot_path_from_the_journal(path):
    from twilight_ops.errors import BadInput
    from twilight_ops.phases import rollback

    with pytest.raises(BadInput):
        rollback.snapshot_name({"host_path": path})
    assert rollback.snapshot_name({"host_path": "/h/twilight/data/warehouse.duckdb.pre-w4"}) == "warehouse.duckdb.pre-w4"


@pytest.mark.parametrize("tagged,pushed,says", [
    ("created", "pushed", "tagged v0.3.0-w4-cutover at c058ef8c0ffe; pushed it to origin; CI "),
    ("already", "pushed", "tag v0.3.0-w4-cutover already existed at c058ef8c0ffe; pushed it to origin; CI "),
    ("already", "already", "tag v0.3.0-w4-cutover already existed at c058ef8c0ffe; origin already had it; CI "),
    ("created", "already", "tagged v0.3.0-w4-cutover at c058ef8c0ffe; origin already had it; CI "),
])
def test_the_tag_push_sentence_reads_naturally(tagged, pushed, says):
    """Issue 15 §5: never "tag already, already"."""
    rep = tag_push.TagPushReport("v0.3.0-w4-cutover", "c058ef8c0ffe" + "0" * 28, tagged, pushed,
                                 "https://gh/actions/runs/7", "ghcr.io/x@sha256:ab", 41.6)
    line = rep.sentence()
    assert line.startswith(says) and line.endswith("published ghcr.io/x@sha256:ab after 42 s")
    assert "already, already" not in line


def test_a_failed_publish_run_names_the_rerun_of_that_run_before_a_new_tag():
    # issue 23 item 7: CI failing because the registry was down said "push a new tag"; re-running CI was the fix
    hint = tag_push.after_failed_run("https://github.com/LaCatFly/twilight-drive/actions/runs/10000007",
                                     "LaCatFly/twilight-drive", "v0.3.0-w4-cutover")
    assert "gh run rerun 10000007 --failed --repo LaCatFly/twilight-drive" in hint
    assert "failed to reach the registry" in hint and "inv tag-push --version v0.3.0-w4-cutover" in hint
    assert hint.index("re-run") < hint.index("push a new tag")
    assert "re-run it from GitHub Actions" in tag_push.after_failed_run("", "o/r", "v1")
