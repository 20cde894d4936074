"""Issue 2 end to end, through the real twin (sshd, dockerd, registry, DuckDB)."""
from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest
import yaml

from tests.client_traffic import elsewhere_in_time
from tests.container_scripts import on_a_copy
from tests.conftest import inv
from twilight_ops import lock
from twilight_ops.builders.layout import layout
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.errors import LockHeld
from twilight_ops.journal import JournalStore, new_journal

pytestmark = pytest.mark.twin

COUNT_ROWS = on_a_copy("""
print(con.execute("select count(*) from provider_audit_log").fetchone()[0])
""")


def audit_rows(ex, settings) -> int:
    lay = layout(settings, ex.home)
    return int(ex.run(compose_cmd.compose_exec_python(lay), stdin=COUNT_ROWS, timeout=60).stdout.strip())


def test_status_shows_previous_release_running_healthy(twin):
    r = inv("status", "--json", cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    (backend,) = [s for s in report["services"] if s["service"] == "backend"]
    assert backend["state"] == "running"
    assert backend["health"] == "healthy"
    assert backend["restart_count"] == 0
    assert backend["version"] == "v0.2.0"
    assert backend["repo_digest"] == f"{twin.image_repo}@{twin.digests['v0.2.0']}"
    assert report["envelope"] == "legacy"
    assert report["lock"] is None


def test_status_table_for_humans(twin):
    r = inv("status", cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stderr
    assert "backend" in r.stdout and "healthy" in r.stdout and "v0.2.0" in r.stdout
    assert "sha256:" in r.stdout
    token = (twin.remote_root / ".tokens/operator-test").read_text().strip()
    assert token not in r.stdout + r.stderr


def _bad_key_config(twin, tmp_path, known_hosts_text: str):
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_text)
    ssh_cfg = (twin.ssh_dir / "ssh_config").read_text()
    ssh_cfg = "\n".join(l for l in ssh_cfg.splitlines() if "UserKnownHostsFile" not in l) + "\n"
    (tmp_path / "ssh_config").write_text(ssh_cfg)
    cfg = yaml.safe_load(twin.invoke_yaml.read_text())
    cfg["twilight"].update(ssh_config=str(tmp_path / "ssh_config"), known_hosts=str(kh), connect_attempts=1)
    path = tmp_path / "invoke.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_unknown_host_key_is_refused(twin, tmp_path):
    cfg = _bad_key_config(twin, tmp_path, "")
    r = inv("status", cfg=cfg)
    assert r.returncode == 3
    assert "not in" in r.stderr and "refusing to connect" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("task", [("smoke", "--expect", "legacy", "--json"), ("monitor", "--hours", "1", "--json")])
def test_smoke_and_monitor_open_the_link_on_a_thread_and_still_refuse_an_unknown_key_as_status_does(twin, tmp_path, task):
    """Both open the link while they import (SSHExecutor.open_soon): what the thread meets is the
    same one line and exit code as a task that connects in place."""
    cfg = _bad_key_config(twin, tmp_path, "")
    status = inv("status", cfg=cfg)
    r = inv(*task, cfg=cfg)
    assert r.returncode == status.returncode == 3
    said = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert said == [line for line in status.stderr.splitlines() if line.startswith("error:")], r.stderr
    assert "refusing to connect" in said[0] and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_a_bad_code_for_smoke_is_exit_2_before_the_link_opens(twin):
    before = _accepted(twin)
    r = inv("smoke", "--code", "600519.SH;id", "--json", cfg=twin.invoke_yaml)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert _accepted(twin) == before, "a connection was opened"


def test_changed_host_key_is_refused(twin, tmp_path):
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ"
    cfg = _bad_key_config(twin, tmp_path, f"[127.0.0.1]:{twin.ssh_port} ssh-ed25519 {other}\n")
    r = inv("status", cfg=cfg)
    assert r.returncode == 3
    assert "CHANGED" in r.stderr
    assert "Traceback" not in r.stderr


def _accepted(twin) -> int:
    return (twin.ssh_dir / "sshd.log").read_text().count("Accepted publickey")


@pytest.mark.parametrize("hostile", ["v1;rm -rf ~", "$(id)", "v0.3.0\nrm -rf ~", "`id`"])
def test_hostile_version_refused_before_any_connection(twin, hostile):
    before = _accepted(twin)
    r = inv("lock", "--acquire", "--version", hostile, "--reason", "x", cfg=twin.invoke_yaml)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "is not a release tag" in r.stderr
    assert "Traceback" not in r.stderr
    assert _accepted(twin) == before, "a connection was opened"
    assert not (twin.remote_root / "cutover" / "lock").exists()


def test_bad_config_is_exit_2_before_connecting(twin):
    before = _accepted(twin)
    r = inv("status", cfg=twin.invoke_yaml, env={"INVOKE_TWILIGHT_REMOTE_ROOT": "~/../../etc"})
    assert r.returncode == 2 and "twilight.remote_root" in r.stderr
    assert _accepted(twin) == before


def test_each_price_call_adds_one_audit_row(ex, twin_settings, twin):
    token = ex.read_secret(layout(twin_settings, ex.home).token_file)
    before = audit_rows(ex, twin_settings)
    with elsewhere_in_time(twin), httpx.Client(base_url=twin_settings.api_base, timeout=10) as client:
        for code in ("600519.SH", "000001.SZ", "999999.SH"):    # client traffic: out of later preflights' windows
            client.get("/price", params={"code": code}, headers={"Authorization": f"Bearer {token.reveal()}"})
    assert audit_rows(ex, twin_settings) == before + 3


def test_second_lock_holder_is_refused(ex, twin_settings, twin):
    lay = layout(twin_settings, ex.home)
    alice = lock.new_holder("alice@laptop", "v0.3.0-w4-cutover", "W4 cutover")
    assert lock.acquire(ex, lay, alice) == (lock.FRESH, None)
    try:
        with pytest.raises(LockHeld) as e:
            lock.acquire(ex, lay, lock.new_holder("bob@desk", "v0.3.0-w4-cutover", "also W4"))
        assert "alice@laptop" in e.value.line() and "W4 cutover" in e.value.line()
        assert f"PID {os.getpid()}" in e.value.line() and alice.host in e.value.line()
        # the very process that holds it may re-enter (inv cutover around its deploy)
        assert lock.acquire(ex, lay, alice) == (lock.REENTERED, None)
        # and through the CLI, as another operator
        r = inv("lock", "--acquire", "--version", "v0.3.0-w4-cutover", "--reason", "mine",
                cfg=twin.invoke_yaml, env={"INVOKE_TWILIGHT_OPERATOR": "bob@desk"})
        assert r.returncode == 1 and "held by alice@laptop" in r.stderr
        assert lock.read_holder(ex, lay).operator == "alice@laptop"
    finally:
        lock.release(ex, lay)
    assert lock.read_holder(ex, lay) is None


def test_lock_released_on_failure(ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    with pytest.raises(RuntimeError):
        with lock.held(ex, lay, lock.new_holder("carol", "v0.3.0", "drill")):
            assert lock.read_holder(ex, lay).operator == "carol"
            raise RuntimeError("phase failed")
    assert lock.read_holder(ex, lay) is None


def test_lock_cli_cycle_writes_audit_lines(twin):
    audit = twin.remote_root / "cutover" / "audit.log"
    before = audit.read_text().splitlines() if audit.exists() else []
    r = inv("lock", "--acquire", "--version", "v0.3.0-w4-cutover", "--reason", "drill", cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stderr
    r = inv("lock", cfg=twin.invoke_yaml)
    assert "held by" in r.stdout
    r = inv("lock", "--release", cfg=twin.invoke_yaml)  # no tty, no --yes: refused
    assert r.returncode == 2 and "--yes" in r.stderr
    r = inv("lock", "--release", "--yes", cfg=twin.invoke_yaml)
    assert r.returncode == 0 and "released" in r.stdout
    after = audit.read_text().splitlines()
    assert after[: len(before)] == before  # append-only
    new = [json.loads(line) for line in after[len(before):]]
    assert [n["action"] for n in new] == ["lock-acquire", "lock-release"]


def test_journal_is_mirrored_and_survives_losing_the_laptop_copy(ex, twin_settings, tmp_path):
    lay = layout(twin_settings, ex.home)
    store = JournalStore(tmp_path / "state", "tvps", lay, ex)
    j = new_journal("v9.9.9-journal-test", "tvps", "ops")
    j.facts["pre_cutover_digest"] = "x@sha256:" + "b" * 64
    with store.step(j, "preflight") as step:
        step.evidence["ok"] = True
    shutil.rmtree(tmp_path / "state")  # the laptop loses it
    again = JournalStore(tmp_path / "state", "tvps", lay, ex).load("v9.9.9-journal-test")
    assert again is not None and again.done("preflight")
    assert again.facts["pre_cutover_digest"].endswith("b" * 64)
    assert "v9.9.9-journal-test" in store.list_remote()
    ex.run(["rm", "-f", "--", lay.journal_path("v9.9.9-journal-test")])


def test_a_file_in_the_way_of_the_lock_is_one_clear_error(twin, ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    ex.write_file(lay.lock_dir, b"not a directory\n")
    try:
        r = inv("lock", "--acquire", "--version", "v0.3.0-w4-cutover", "--reason", "x", cfg=twin.invoke_yaml)
        assert r.returncode == 1
        assert "is not a directory" in r.stderr and "Traceback" not in r.stderr and "Recursion" not in r.stderr
    finally:
        ex.run(["rm", "-f", "--", lay.lock_dir])


def test_markup_in_a_lock_reason_is_printed_as_text(twin, ex, twin_settings):
    reason = "maintenance [/] disk [bold]x"
    r = inv("lock", "--acquire", "--version", "v0.3.0-w4-cutover", "--reason", reason, cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stderr
    try:
        r = inv("status", cfg=twin.invoke_yaml)
        assert r.returncode == 0, r.stderr
        assert reason in r.stdout
        r = inv("lock", cfg=twin.invoke_yaml)
        assert reason in r.stdout
    finally:
        r = inv("lock", "--release", "--yes", cfg=twin.invoke_yaml)
        assert r.returncode == 0, r.stderr


def test_first_smoke_on_a_fresh_tvps_creates_the_cutover_dir(twin, ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    ex.run(["mv", "--", lay.cutover_dir, lay.cutover_dir + ".aside"])
    try:
        # the journal named explicitly: a bare `inv smoke` journals under the configured release (issue 25)
        r = inv("smoke", "--expect", "legacy", "--version", "v0.2.0", "--json", cfg=twin.invoke_yaml)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["verdict"] == "green"
        assert ex.run(["test", "-f", lay.journal_path("v0.2.0")], check=False).ok
    finally:
        ex.run(["rm", "-rf", "--", lay.cutover_dir])
        ex.run(["mv", "--", lay.cutover_dir + ".aside", lay.cutover_dir])


def test_journal_files_are_written_private(ex, twin_settings, tmp_path):
    lay = layout(twin_settings, ex.home)
    store = JournalStore(tmp_path / "state", "tvps", lay, ex)
    store.save(new_journal("v9.9.8-mode-test", "tvps", "ops"))
    try:
        mode = ex.run(["stat", "-c", "%a", "--", lay.journal_path("v9.9.8-mode-test")]).stdout.strip()
        assert mode == "600"
        assert oct(store.local_path("v9.9.8-mode-test").stat().st_mode & 0o777) == "0o600"
    finally:
        ex.run(["rm", "-f", "--", lay.journal_path("v9.9.8-mode-test")])
