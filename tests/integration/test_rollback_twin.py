"""`inv rollback` through the twin: cutover to v0.3.0 then back to the T+00:00 digest (legacy
envelope, same digest), --restore-db byte-identical with the failed copy kept, refused over
local skill changes, from tvps's journal copy, same-day redeploy refused, after a deploy that
died holding the lock (takeover recorded), a wrong --to refused, kill -9 mid-revert then again."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, error_lines, inv
from tests import journals
from twilight_ops.journal import JournalStore
from twilight_ops import health, lock
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import control
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

W4, PREVIOUS = "v0.3.0-w4-cutover", "v0.2.0"
SKILL = "skill/stock-research/SKILL.md"


def svc(ex, settings):
    return health.service_of(health.read_services(ex, layout(settings, ex.home), settings.image_repo), settings.service)


def journal(settings, version=W4) -> dict:
    return journals.local(settings, version)


def clean(ex, settings) -> None:
    lay = layout(settings, ex.home)
    ex.run(["find", lay.compose_env.rsplit("/", 1)[0], "-maxdepth", "1", "-name", ".env*", "-delete"])
    if lock.read_holder(ex, lay) is not None:
        lock.release(ex, lay)


def forget_rollback(settings, ex) -> None:
    """Let the next test cut over again today: drop 'rolled_back' from both journal copies."""
    store = JournalStore(settings.state_dir, settings.host, layout(settings, ex.home), ex)
    if store.load(W4) is None:
        return
    held = store.held(W4)
    held.facts.pop("rolled_back", None)
    store.save(held, mirror=True)                     # a "dropped" event, on the laptop and on tvps


@pytest.fixture(scope="module")
def base(twin, twin_settings):
    from twilight_ops.twin import ci_release

    ci_release.ensure_published(twin, W4)      # W4 reaches the registry only through the twin's CI
    with SSHExecutor(twin_settings) as ex:
        clean(ex, twin_settings)
        control.clear_faults(ex, twin_settings)
        control.run_version(ex, twin_settings, PREVIOUS)
    r = inv("preflight", "--version", W4, "--json", cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stdout + r.stderr
    yield twin
    with SSHExecutor(twin_settings) as ex:
        clean(ex, twin_settings)
        forget_rollback(twin_settings, ex)
        control.run_version(ex, twin_settings, PREVIOUS)
    clone = load_or_new(twin.base).operator_clone     # the skill back at the clone's HEAD for later modules
    subprocess.run(["git", "-C", str(clone), "checkout", "HEAD", "--", "skill/stock-research/"], check=True)


def cutover(twin, settings):
    with SSHExecutor(settings) as ex:
        forget_rollback(settings, ex)
    r = inv("deploy", "--version", W4, "--yes", cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stdout + r.stderr


def rollback(twin, *args, env=None):
    return inv("rollback", "--version", W4, "--yes", "--reason", "test trigger", *args, cfg=twin.invoke_yaml, env=env)


def test_dry_run_touches_nothing(base, ex, twin_settings):
    before = (svc(ex, twin_settings).repo_digest, journal(twin_settings)["steps"][-1]["name"])
    r = inv("--dry", "rollback", "--version", W4, cfg=base.invoke_yaml)
    assert r.returncode == 0 and "pin" in r.stdout and "health" in r.stdout, r.stderr
    assert (svc(ex, twin_settings).repo_digest, journal(twin_settings)["steps"][-1]["name"]) == before


def test_cutover_then_rollback_serves_legacy_on_the_pre_digest(base, ex, twin_settings):
    pre = journal(twin_settings)["facts"]["pre_digest"]
    cutover(base, twin_settings)
    assert svc(ex, twin_settings).version == W4
    r = rollback(base, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    now = svc(ex, twin_settings)
    assert now.repo_digest == pre and now.health == "healthy" and now.restart_count == 0
    assert rep["smoke"]["envelope"] == "legacy" and rep["smoke"]["verdict"] == "green"
    assert "Trigger: test trigger" in rep["follow_up"] and pre in rep["follow_up"]
    # §2.3's evidence is read before anything changes (issue 24), then the release path in its order
    assert [s["name"] for s in rep["steps"]][:5] == ["data-plan", "pin", "pull", "up", "health"]
    facts = journal(twin_settings)["facts"]
    assert facts["rolled_back"]["trigger"] == "test trigger" and facts["rolled_back"]["to"].endswith(pre.split("@")[1])
    # the skill is back at the previous tag in the operator's repo
    st = load_or_new(base.base)
    head = subprocess.run(["git", "-C", str(st.operator_clone), "diff", "--quiet", PREVIOUS, "--", "skill/stock-research/"])
    assert head.returncode == 0


def test_a_same_day_redeploy_is_refused(base):
    r = inv("deploy", "--version", W4, "--yes", cfg=base.invoke_yaml)
    assert r.returncode == 1 and "rolled back today" in r.stderr and "--force" in r.stderr


def test_restore_db_is_byte_identical_and_keeps_the_failed_copy(base, ex, twin_settings):
    cutover(base, twin_settings)
    snap = journal(twin_settings)["facts"]["snapshot"]
    data_dir = layout(twin_settings, ex.home).data_dir
    r = rollback(base, "--restore-db")
    assert r.returncode == 0, r.stdout + r.stderr
    listing = ex.run(["ls", "-1", "--", data_dir]).stdout.split()
    failed = [n for n in listing if n.startswith(f"warehouse.duckdb.failed-{W4}-")
              and not n.endswith(".parquet")]             # the rows written since T+00:00, exported beside it
    assert len(failed) == 1, listing                   # the replaced file is kept, never deleted
    # byte-identical: the restore hashed the file it put in place before the backend started
    step = [s for s in journal(twin_settings)["steps"] if s["name"].endswith(":db-restore")][-1]
    assert step["outcome"] == "ok" and step["evidence"]["sha256"] == snap["sha256"]
    assert step["evidence"]["restored"].endswith("/warehouse.duckdb")
    assert any(p.endswith(failed[0]) for p in step["evidence"]["moved_aside"])
    assert "previous database kept as" in r.stderr


def test_local_skill_changes_are_refused_and_survive(base, ex, twin_settings):
    st = load_or_new(base.base)
    path = st.operator_clone / SKILL
    original = path.read_text()
    path.write_text(original + "\nlocal edit the operator is still working on\n")
    try:
        before = svc(ex, twin_settings).repo_digest
        r = rollback(base)
        assert r.returncode == 2 and "uncommitted changes" in r.stderr and "--force" in r.stderr
        assert path.read_text().endswith("still working on\n")
        assert svc(ex, twin_settings).repo_digest == before
    finally:
        path.write_text(original)


def test_a_wrong_to_is_refused_before_anything_changes(base, ex, twin_settings):
    before = svc(ex, twin_settings).repo_digest
    for to, says in [("v0.1.7", "not in the registry"), ("sha256:" + "0" * 64, "neither on tvps nor in the registry"),
                     ("latest;reboot", "not a release tag"), ("other/repo@sha256:" + "1" * 64, "is not an image of")]:
        r = rollback(base, "--to", to)
        assert r.returncode == 2 and says in r.stderr, (to, r.stderr)
    assert svc(ex, twin_settings).repo_digest == before


def test_rollback_works_from_tvps_journal_copy(base, ex, twin_settings):
    cutover(base, twin_settings)
    pre = journal(twin_settings)["facts"]["pre_digest"]
    local = journals.local_path(twin_settings, W4)
    local.unlink()                                   # the laptop lost its journal
    r = rollback(base)
    assert r.returncode == 0, r.stdout + r.stderr
    assert svc(ex, twin_settings).repo_digest == pre
    # issue 15 §4: the follow-up's timeline keeps step names literally (rich made `:up:` an emoji)
    assert re.search(r"^- \S+ deploy#\d+:up: ok$", r.stdout, re.M), r.stdout
    assert "\U0001f199" not in r.stdout


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_rollback_after_a_deploy_that_died_holding_the_lock_records_the_takeover(base, ex, twin_settings):
    cutover(base, twin_settings)
    lay = layout(twin_settings, ex.home)
    ex.run(["mkdir", "-p", "--", lay.lock_dir])
    holder = {"operator": twin_settings.operator, "version": W4, "reason": "deploy", "acquired_at": "2026-12-01T00:00:00+00:00",
              "client_pid": dead_pid(), "host": socket.gethostname()}
    ex.write_file(lay.lock_info, json.dumps(holder).encode(), mode=0o644)
    r = rollback(base)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "took the deploy lock over" in r.stderr
    assert journal(twin_settings)["facts"]["lock_takeovers"][-1]["from_pid"] == holder["client_pid"]
    assert '"action":"lock-takeover"' in ex.read_file(lay.audit_log).decode()
    assert lock.read_holder(ex, lay) is None


def test_kill_9_in_the_middle_of_the_server_revert_then_again(base, ex, twin_settings):
    pre = journal(twin_settings)["facts"]["pre_digest"]
    cutover(base, twin_settings)
    argv = [os.path.join(os.path.dirname(sys.executable), "inv"), "-f", str(base.invoke_yaml), "rollback", "--version", W4,
            "--yes", "--reason", "killed midway"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    local = journals.local_path(twin_settings, W4)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:                # until the revert is under way (a condition, not a sleep)
        steps = [s["name"] for s in journals.read(local)["steps"]] if local.exists() else []
        if any(n.startswith("rollback#") and n.endswith((":pull", ":up")) for n in steps):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = rollback(base)
    assert r.returncode == 0, r.stdout + r.stderr
    now = svc(ex, twin_settings)
    assert now.repo_digest == pre and now.health == "healthy"
    assert lock.read_holder(ex, layout(twin_settings, ex.home)) is None


def test_a_rollback_whose_image_will_not_start_stops_at_once_with_its_own_next_step(base, ex, twin_settings):
    """The one release path: the rollback's health wait is deploy's (fails fast on a restart loop, the same
    evidence in the step) and its failure names what to do after a rollback, not `inv rollback` again."""
    from twilight_ops.twin import release_faults

    pre = journal(twin_settings)["facts"]["pre_digest"]
    cutover(base, twin_settings)
    release_faults.apply(base, "restart-loop", PREVIOUS)     # v0.2.0 exits 1 about a second after each start
    try:
        r = rollback(base)
    finally:
        release_faults.clear(base)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    (line,) = [x for x in error_lines(r.stderr) if x.startswith("error:")]
    assert "a restart loop" in line and "inv diagnose" in line, line
    assert "rollback --version" not in line, line
    steps = journal(twin_settings)["steps"]
    gate = [s for s in steps if s["name"].startswith("rollback#") and s["name"].endswith(":health")][-1]
    assert gate["outcome"] == "failed" and "a restart loop" in gate["note"], gate
    assert lock.read_holder(ex, layout(twin_settings, ex.home)) is None

    control.run_version(ex, twin_settings, PREVIOUS)        # out of docker's restart back-off, healthy again
    again = rollback(base)                                  # a new attempt ends on the pin, healthy
    assert again.returncode == 0, again.stdout + again.stderr
    now = svc(ex, twin_settings)
    assert now.repo_digest == pre and now.health == "healthy"
    gate = [s for s in journal(twin_settings)["steps"] if s["name"].endswith(":health")][-1]
    assert gate["outcome"] == "ok" and {"healthy_after_s", "noticed_healthy_at", "gate_s", "digest"} <= set(gate["evidence"])
