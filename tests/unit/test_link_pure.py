"""Issue 23 items 5-6, pure parts: which temp files a dead run left, the resume line, the lines a
lost link and a Ctrl-C print, the step an error escaped from, the op-timeout key."""
from __future__ import annotations

import pytest

from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.errors import BadInput, HostKeyRejected, Unreachable, mark_step, step_of
from twilight_ops.phases.cutover import interrupted_line, lost_on_the_way, resume_line
from twilight_ops.remote import is_stale_temp, stopped_answering, temp_name

V = "v0.3.0-w4-cutover"


def test_write_files_temp_is_the_shape_the_sweep_looks_for():
    name = temp_name(f"journal-{V}.json")
    assert name.startswith(f".journal-{V}.json.") and name.endswith(".tmp")
    assert is_stale_temp(name, 100, 200)


@pytest.mark.parametrize("filename", [
    f".journal-{V}.json.0badc0de.tmp", ".env.1234abcd.tmp", ".info.json.ffffffff.tmp"])
def test_a_temp_older_than_the_run_is_stale(filename):
    assert is_stale_temp(filename, 999, 1000)
    assert not is_stale_temp(filename, 1000, 1000)      # written since the run began: another writer's


@pytest.mark.parametrize("filename", [
    f"journal-{V}.json",                 # the journal itself
    f"journal-{V}.json.0badc0de.tmp",    # no leading dot
    f".journal-{V}.json.notes.tmp",      # not 8 hex digits
    f".journal-{V}.json.0BADC0DE.tmp",   # not our (lower-case) hex
    f".journal-{V}.json.0badc0de.tmp~",
    ".0badc0de.tmp",                     # no name before the token
    "audit.log", "lock",
])
def test_anything_else_is_never_stale(filename):
    assert not is_stale_temp(filename, 0, 10**10)


def test_resume_line_repeats_the_runtime_config_quoted():
    assert resume_line(V, None) == f"inv cutover --version {V} --resume"
    assert resume_line(V, "/tmp/twin/invoke.yaml") == f"inv -f /tmp/twin/invoke.yaml cutover --version {V} --resume"
    assert resume_line(V, "/tmp/my twin/x.yaml") == f"inv -f '/tmp/my twin/x.yaml' cutover --version {V} --resume"


def test_resume_line_repeats_the_runs_env_settings_but_never_a_token_setting():
    env = {"INVOKE_TWILIGHT_HOST": "tvps 2", "INVOKE_TWILIGHT_TOKEN_FILE": "/x", "HOME": "/root"}
    assert resume_line(V, "/t/i.yaml", env) == f"INVOKE_TWILIGHT_HOST='tvps 2' inv -f /t/i.yaml cutover --version {V} --resume"


def test_the_innermost_step_is_the_one_named():
    e = stopped_answering("tvps", "`docker compose up -d`", 5)
    assert step_of(e) is None
    mark_step(e, "deploy#1:up")
    mark_step(e, "cutover:deploy")
    assert step_of(e) == "deploy#1:up"
    k = KeyboardInterrupt()
    mark_step(k, "cutover:smoke")
    assert step_of(k) == "cutover:smoke"


def test_a_lost_link_mid_cutover_names_the_operation_the_step_and_the_resume_line():
    e = stopped_answering("tvps", "`docker compose up -d`", 5)
    mark_step(e, "deploy#1:up")
    again = lost_on_the_way(e, resume_line(V, "/t/invoke.yaml"))
    assert isinstance(again, Unreachable) and again.exit_code == 3
    assert again.line() == ("tvps stopped answering during `docker compose up -d` (no reply within 5 s; the connection "
                            "was closed); step in flight: deploy#1:up — check the network and `ssh tvps true`, then "
                            f"resume with: inv -f /t/invoke.yaml cutover --version {V} --resume")
    assert "\n" not in again.line()


def test_a_lost_link_keeps_its_kind_and_works_without_a_step_or_hint():
    e = HostKeyRejected("host key of tvps CHANGED")
    again = lost_on_the_way(e, "inv cutover --version X --resume")
    assert type(again) is HostKeyRejected
    assert again.line() == "host key of tvps CHANGED — resume with: inv cutover --version X --resume"


def test_ctrl_c_names_the_step_it_stopped():
    k = KeyboardInterrupt()
    assert interrupted_line(k, "R") == "interrupted: the journal shows how far it got; resume with: R"
    mark_step(k, "deploy#2:pull")
    assert interrupted_line(k, "R") == "interrupted during deploy#2:pull: the journal shows how far it got; resume with: R"


def test_the_op_timeout_is_read_and_bounded():
    assert load_settings(dict(DEFAULTS)).ssh_op_timeout_s == 30.0
    assert load_settings({**DEFAULTS, "ssh_op_timeout_seconds": "3"}).ssh_op_timeout_s == 3.0
    for bad in ("0", "601", "soon", ""):
        with pytest.raises(BadInput, match="ssh_op_timeout_seconds"):
            load_settings({**DEFAULTS, "ssh_op_timeout_seconds": bad})


def test_preflight_reports_a_check_that_could_not_ask_its_source_but_a_lost_link_ends_the_run():
    from twilight_ops.errors import LinkLost, Unreachable
    from twilight_ops.phases import preflight
    from twilight_ops.remote import stopped_answering

    def github_down():
        raise Unreachable("GitHub API unreachable: connection refused", "check the network")

    row = preflight._guard("dependency_prs", github_down)
    assert row.id == "dependency_prs" and row.status.name == "FAIL" and "GitHub API unreachable" in row.reason

    def frozen():
        raise stopped_answering("tvps", "`git -C ~/twilight/source rev-parse HEAD`", 30)

    with pytest.raises(LinkLost) as e:
        preflight._guard("commit_pinned", frozen)
    assert e.value.exit_code == 3 and "tvps stopped answering" in e.value.message
