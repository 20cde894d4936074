"""Issue 21 items 1, 4 and 5 through the twin, as the operator types them:

- a typo in --version stops at the plan (its warning line), before anything changes;
- `inv tag-push` answered wrongly tags nothing;
- `inv rollback` with nothing deployed says "nothing to roll back" (exit 1, nothing touched);
- a second `inv cutover` while another run holds the lock names that run (PID, host, since, phase) first;
- a ROLLBACK left unconfirmed is said in red, and `inv status` shows it with its red flags and the command.
"""
from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests import journals
from tests.conftest import error_lines, inv
from tests.cutover_fixtures import fresh, reset_after_module, short_cache_ttl  # noqa: F401  fixtures
from tests.integration.test_bare_commands_twin import running, typed
from twilight_ops import lock
from twilight_ops.builders.layout import layout
from twilight_ops.clock import iso, now_utc
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import preflight_faults, rehearse
from twilight_ops.twin.state import load_or_new

pytestmark = [pytest.mark.twin, pytest.mark.usefixtures("short_cache_ttl")]

V, PREVIOUS, TYPO = rehearse.V, "v0.2.0", "v0.3.0-w4-cutovr"


def lock_holder(settings):
    with SSHExecutor(settings) as ex:
        return lock.read_holder(ex, layout(settings, ex.home))


def tags(settings, where: str = "local") -> str:
    repo = str(settings.local_repo)
    argv = ["git", "-C", repo, "tag", "-l"] if where == "local" else ["git", "-C", repo, "ls-remote", "--tags", "origin"]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout


def test_a_typo_in_the_version_stops_at_the_plan_and_touches_nothing(fresh, twin_settings):
    before = running(twin_settings).repo_digest
    code, out = typed(fresh.invoke_yaml, "cutover", "--version", TYPO, answer=V)     # types what was meant
    assert code == 2, out
    assert f"plan: cutover {TYPO}" in out and f"runs now  {PREVIOUS} (sha256:" in out
    assert f"  target    {twin_settings.host} = " in out
    flat = " ".join(out.split())          # a terminal's lines fold at spaces (issue 21 item 7)
    assert (f"warning {TYPO} is not a tag on that commit and is one typo away from {V}: check the spelling" in flat)
    assert out.index("warning") < out.index(f"type the version ({TYPO}) to go on:")
    assert f"not confirmed: typed '{V}', not {TYPO}; nothing changed" in flat and "Traceback" not in out
    assert running(twin_settings).repo_digest == before
    assert lock_holder(twin_settings) is None
    assert not journals.local_path(twin_settings, TYPO).exists()
    assert TYPO not in tags(twin_settings) and TYPO not in tags(twin_settings, "origin")


def test_tag_push_shows_the_commit_and_a_wrong_answer_tags_nothing(fresh, twin_settings):
    code, out = typed(fresh.invoke_yaml, "tag-push", "--version", V, answer="yes")
    assert code == 2, out
    assert f"plan: tag-push {V}" in out and "will tag and push" in out and "warning" not in out
    assert "commit    " in out and "not known yet" not in out
    assert f"not confirmed: typed 'yes', not {V}" in out
    assert V not in tags(twin_settings) and V not in tags(twin_settings, "origin")


def test_rollback_with_nothing_deployed_says_so_and_touches_nothing(fresh, twin_settings):
    before = running(twin_settings).repo_digest
    cfg = fresh.invoke_yaml
    r = inv("rollback", "--version", PREVIOUS, "--yes", cfg=cfg)                  # the running release named
    (line,) = [x for x in error_lines(r.stderr) if x.startswith("error:")]
    assert r.returncode == 1 and f"nothing to roll back: tvps runs {PREVIOUS}, the pre-cutover release" in line, r.stderr
    assert "give --to" not in r.stderr and "Traceback" not in r.stderr

    assert inv("preflight", "--version", V, "--json", cfg=cfg).returncode == 0     # T+00:00 taken, nothing deployed
    r = inv("rollback", "--version", V, "--yes", "--reason", "nothing yet", cfg=cfg)
    assert r.returncode == 1 and f"nothing to roll back: tvps runs {PREVIOUS}, the pre-cutover release" in r.stderr, r.stderr
    assert running(twin_settings).repo_digest == before
    facts = journals.local(twin_settings, V)["facts"]
    assert "rolled_back" not in facts                                              # a retry today stays allowed
    assert lock_holder(twin_settings) is None


def test_a_second_cutover_names_the_run_that_holds_the_lock_first(fresh, twin_settings):
    cfg = fresh.invoke_yaml
    preflight_faults.apply(load_or_new(fresh.base), "pr-unmerged")
    first = inv("cutover", "--version", V, cfg=cfg)                                # NO-GO: a cutover in progress
    assert first.returncode == 1 and "plan: cutover" in first.stderr, first.stderr[-2000:]
    other = subprocess.Popen(["sleep", "600"])                                     # another live run on this machine
    try:
        holder = lock.Holder(operator=twin_settings.operator, version=V, reason="cutover", acquired_at=iso(now_utc()),
                             client_pid=other.pid, host=socket.gethostname(), client_start=lock.proc_start(other.pid) or "")
        with SSHExecutor(twin_settings) as ex:
            assert lock.acquire(ex, layout(twin_settings, ex.home), holder)[0] == lock.FRESH
        r = inv("cutover", "--version", V, cfg=cfg)
        (line,) = [x for x in error_lines(r.stderr) if x.startswith("error:")]
        assert r.returncode == 1, r.stderr
        assert f"a cutover of {V} is in progress since" in line and "(last phase: preflight)" in line
        assert f"held now by PID {other.pid} on {socket.gethostname()}, operator {twin_settings.operator}, since " in line
        assert "wait for it to finish" in r.stderr and f"kill -INT {other.pid}" in r.stderr, r.stderr
        assert "resume it:" not in r.stderr and "plan:" not in r.stderr               # no pointer that hits the lock
        again = inv("cutover", "--version", V, "--resume", cfg=cfg)
        assert again.returncode == 1 and f"PID {other.pid} on {socket.gethostname()}" in again.stderr, again.stderr
        assert lock_holder(twin_settings) == holder                                    # left in place
    finally:
        other.kill()
        other.wait()
        with SSHExecutor(twin_settings) as ex:
            lock.release(ex, layout(twin_settings, ex.home))


def test_a_rollback_left_unconfirmed_is_red_and_inv_status_shows_it(fresh, twin_settings):
    cfg = fresh.invoke_yaml
    rehearse.apply(fresh, twin_settings, rehearse.SCENARIOS["close-raw-null"])
    r = inv("cutover", "--version", V, "--json", cfg=cfg, timeout=900)              # no terminal, no --yes
    assert r.returncode == 1, r.stderr[-3000:]
    assert json.loads(r.stdout)["outcome"] == "awaiting-confirmation"
    assert f"plan: cutover {V}" in r.stderr and "to go on" not in r.stderr         # shown; without a terminal not asked
    (red,) = [x for x in r.stderr.splitlines() if x.startswith("NOT ROLLED BACK")]
    assert red.startswith(f"NOT ROLLED BACK: {V} is still serving on {twin_settings.host}, live for ")
    assert "red flags: smoke: close_raw_missing" in red and red.endswith("the runbook says roll back now")

    st = inv("status", cfg=cfg)
    assert st.returncode == 0, st.stderr
    out = st.stdout
    assert f"pending decision: ROLLBACK of {V}" in out and "not confirmed" in out
    assert "NOT ROLLED BACK" in out and "red flag: smoke: close_raw_missing" in out
    assert "data plan (§2.3): " in out and "could not be read" not in out             # what the rollback would do
    assert f"act on it: inv -f {cfg} rollback --version {V} --reason 'smoke: close_raw_missing'" in out
    pending = json.loads(inv("status", "--json", cfg=cfg).stdout)["pending"]
    assert pending["verdict"] == "ROLLBACK" and pending["red_flags"] == ["smoke: close_raw_missing"]
    assert running(twin_settings).version == V                                     # nothing rolled back behind its back
