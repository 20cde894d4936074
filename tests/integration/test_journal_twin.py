"""Issue 20 item 1 through the twin: the run's one journal, an append-only event log.

- a green `inv cutover` then `inv rollback`: every step any phase wrote is in the journal once, the
  Hermes revert's install/restart/verify steps survive the rollback step around them (they were
  overwritten before), the mirror on tvps holds the same events, and the journal's sftp operations
  per cutover are counted (TWILIGHT_TRACE);
- kill -9 inside deploy: a new cutover is refused (one is in progress); then, with the last journal
  line of both copies cut short (what a kill in the middle of an append leaves), the journal loads,
  the torn line is reported and kept aside, and `--resume` finishes the cutover with one tag, one
  snapshot and the published digest running (this test was two: the kill -9 resume of
  test_cutover_twin and the torn line; one kill and one resume now prove both).

One twin reset per test (tests/cutover_fixtures.py) and the 6 s quote-cache TTL of the cutover modules.
"""
from __future__ import annotations

import base64
import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import journals
from tests.conftest import REPO, inv
from tests.cutover_fixtures import fresh, reset_after_module, short_cache_ttl  # noqa: F401  fixtures
from twilight_ops import health
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import rehearse
from twilight_ops.twin.state import load_or_new

pytestmark = [pytest.mark.twin, pytest.mark.usefixtures("short_cache_ttl")]

V = rehearse.V
# the journal before the event log, measured by issue 20 on a green cutover: ≈ 31 loads and ≈ 50
# saves, each one sftp read or whole-file write of the mirror (≈ 81 operations)
BEFORE = 81


def journal_ops(trace: Path, version: str) -> collections.Counter:
    ops: collections.Counter = collections.Counter()
    for line in trace.read_text().splitlines():
        rec = json.loads(line)
        if rec["side"] == "tvps" and str(rec.get("path", "")).endswith(f"/journal-{version}.jsonl"):
            ops[rec["op"]] += 1
    return ops


def once_each(j: dict, *, ended: bool = True) -> None:
    keys = [(s["name"], s["started_at"]) for s in j["steps"]]
    assert len(keys) == len(set(keys)), [k for k, n in collections.Counter(keys).items() if n > 1]
    if ended:
        assert all(s["outcome"] != "running" for s in j["steps"]), [s["name"] for s in j["steps"] if s["outcome"] == "running"]


def test_a_green_cutover_and_a_rollback_keep_every_step_once(fresh, twin_settings, tmp_path):
    trace = tmp_path / "trace.jsonl"
    r = inv("cutover", "--version", V, "--yes", "--json", cfg=fresh.invoke_yaml, timeout=900,
            env={"TWILIGHT_TRACE": str(trace)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert json.loads(r.stdout)["outcome"] == "closed-out"
    j = journals.local(twin_settings, V)
    once_each(j)
    names = [s["name"] for s in j["steps"]]
    for name in ("preflight", "snapshot", "tag-push", "deploy#1:pull", "deploy#1:up", "deploy#1:health-gate", "deploy#1",
                 "smoke-w4", "hermes-install", "hermes-restart", "hermes-verify", "agent-smoke", "decide", "closeout",
                 *(f"cutover:{p}" for p in ("preflight", "tag-push", "deploy", "smoke", "hermes-reinstall", "agent-smoke"))):
        assert names.count(name) == 1, (name, names)
    assert journals.mirror(fresh, V) == j                # the mirror folds to the same journal
    ops = journal_ops(trace, V)
    total = sum(ops.values())
    print(f"journal sftp operations in a green cutover: {total} {dict(ops)} (before the event log ≈ {BEFORE})")
    assert ops["write"] <= 1 and total * 5 <= BEFORE, ops
    for rec in map(json.loads, trace.read_text().splitlines()):     # the token never reaches the journal
        if str(rec.get("path", "")).endswith(".jsonl") and rec.get("data"):
            assert b"Bearer" not in base64.b64decode(rec["data"])

    back = inv("rollback", "--version", V, "--yes", "--reason", "journal test", cfg=fresh.invoke_yaml, timeout=600)
    assert back.returncode == 0, back.stdout[-2000:] + back.stderr[-4000:]
    j = journals.local(twin_settings, V)
    once_each(j)
    names = [s["name"] for s in j["steps"]]
    at = names.index("rollback#1:hermes")
    # the revert's own steps, inside the rollback's hermes step: before the event log only that step was left
    assert [n for n in names[at:] if n.startswith("hermes-")] == ["hermes-install", "hermes-restart", "hermes-verify"]
    assert j["facts"]["rolled_back"]["trigger"] == "journal test"
    assert journals.mirror(fresh, V) == j


def test_kill_9_with_a_torn_journal_line_then_resume_finishes(fresh, twin_settings):
    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(fresh.invoke_yaml), "cutover", "--version", V, "--yes"]
    local = journals.local_path(twin_settings, V)
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    killed_in = None
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            running = rehearse.running_step(rehearse.read_journal(local), "deploy#")
            if running:
                os.killpg(proc.pid, signal.SIGKILL)
                killed_in = running
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and killed_in is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert killed_in is not None, "the cutover never reached deploy"
    snap_sha = journals.local(twin_settings, V)["facts"]["snapshot"]["sha256"]

    refused = inv("cutover", "--version", V, "--yes", cfg=fresh.invoke_yaml, timeout=300)
    assert refused.returncode == 2
    assert "in progress" in refused.stderr and "--resume" in refused.stderr

    mirror = journals.mirror_path(fresh, V)
    for path in (local, mirror):                       # the last line of each copy cut in the middle
        data = path.read_bytes()
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        path.write_bytes(data[:len(data) - 1 - len(last) // 2])
    kept = {p: p.read_bytes() for p in (local, mirror)}

    r = inv("cutover", "--version", V, "--resume", "--yes", "--json", cfg=fresh.invoke_yaml, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert json.loads(r.stdout)["outcome"] == "closed-out"
    assert "took the deploy lock over" in r.stderr
    assert r.stderr.count("(the last, cut short)") == 2 and "Traceback" not in r.stderr
    for path, data in kept.items():                    # nothing lost: the damaged copy is kept beside
        aside = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".torn-")]
        assert [p.read_bytes() for p in aside] == [data]
    j = journals.local(twin_settings, V)
    once_each(j, ended=False)                          # the step the kill cut stays `running`; resume began anew
    assert [s["outcome"] for s in j["steps"] if s["name"] == "tag-push"] == ["ok"]
    assert [s["outcome"] for s in j["steps"] if s["name"] == "snapshot"] == ["ok"]
    assert j["facts"]["snapshot"]["sha256"] == snap_sha
    assert len(j["facts"]["cutover"]["resumed"]) == 1
    assert [s["outcome"] for s in j["steps"] if s["name"] == "cutover:preflight"] == ["ok"]
    assert journals.mirror(fresh, V) == j
    again = inv("report", V, cfg=fresh.invoke_yaml)                # the repaired copies load without a word
    assert again.returncode == 0 and "cut short" not in again.stderr
    st = load_or_new(fresh.base)                                   # one tag, one snapshot, the published digest
    tags = subprocess.run(["git", "-C", str(st.origin_repo), "tag", "--list", V], capture_output=True, text=True).stdout
    assert tags.split() == [V]
    with SSHExecutor(twin_settings) as ex:
        lay = layout(twin_settings, ex.home)
        listing = ex.run(["ls", "-1", lay.data_dir]).stdout.split()
        svc = health.service_of(health.read_services(ex, lay, twin_settings.image_repo), twin_settings.service)
        sha = ex.run(["sha256sum", "--", j["facts"]["snapshot"]["host_path"]]).stdout.split()[0]
    assert [n for n in listing if n.startswith(twin_settings.snapshot_name)] == [twin_settings.snapshot_name]
    assert sha == snap_sha
    assert svc.version == V and svc.repo_digest == j["facts"]["published_digest"] == j["facts"]["post_digest"]
