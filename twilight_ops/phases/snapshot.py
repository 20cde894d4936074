"""T+00:00: the backend's state and a consistent, verified, never-overwritten snapshot.

    snapshot_script(container_db, dest, margin_bytes) -> str   (pure) probe.py's copy routine + monitor/snapshot.py
    take(t, journal) -> CheckResult                            the journal step "snapshot" (resumable)

The snapshot is written by the backend image's own python3 + duckdb inside the
container (the data dir is mounted there), so it is a copy the running DuckDB
version can open; only one JSON object comes back over SSH.
"""
from __future__ import annotations

import json
import posixpath
from pathlib import Path

from ..builders.compose import compose_exec_python
from .. import runbook
from ..errors import CheckFailed, Unreachable
from ..monitor.bundle import bundle
from ..monitor.script import probe_source
from ..results import CheckResult, Status
from ..runbook import Fact, Steps
from ..target import Target

SNAPSHOT_FILE = Path(__file__).resolve().parents[1] / "monitor" / "snapshot.py"


def snapshot_script(container_db: str, dest: str, margin_bytes: int, attempts: int = 5) -> str:
    """The script sent to `python3 -` in the container: probe.py and monitor/snapshot.py as the real
    modules they are (monitor/bundle.py), then snapshot_main(params)."""
    params = json.dumps({"db_path": container_db, "dest": dest, "margin_bytes": int(margin_bytes), "attempts": attempts},
                        ensure_ascii=True, sort_keys=True)
    entry = ("import json, sys\nfrom twilight_ops.monitor.snapshot import snapshot_main\n"
             f"sys.exit(snapshot_main(json.loads({params!r})))\n")
    return bundle([("twilight_ops.monitor.probe", probe_source(False)),
                   ("twilight_ops.monitor.snapshot", SNAPSHOT_FILE.read_text(encoding="utf-8"))], entry)


def paths(t: Target) -> tuple[str, str]:
    """(the snapshot's path on tvps, the same file inside the container)."""
    name = t.settings.snapshot_name
    return (posixpath.join(t.layout.data_dir, name),
            posixpath.join(posixpath.dirname(t.settings.container_warehouse), name))


def run_in_container(t: Target) -> dict:
    host_path, container_path = paths(t)
    script = snapshot_script(t.settings.container_warehouse, container_path, t.settings.snapshot_margin_mb * 2**20)
    r = t.ssh.run(compose_exec_python(t.layout), stdin=script, check=False, timeout=t.settings.monitor_timeout)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1][:200]
        if "is not running" in r.stderr:
            raise Unreachable(f"the {t.settings.service} container is not running, so the snapshot cannot be taken",
                              "see `inv status`") from None
        raise CheckFailed(f"the snapshot script failed in the container (exit {r.exited}: {tail})",
                          "see `docker compose logs backend --tail=200` on tvps") from None
    if not isinstance(out, dict):
        raise CheckFailed("the snapshot script printed no JSON object", "re-run; report it if it persists")
    out["host_path"] = host_path
    return out


def take(t: Target, journal) -> CheckResult:
    """Take (or verify and reuse) the snapshot; record path, sha256, tables in the journal facts."""
    recorded = runbook.snapshot(journal.facts)

    def action(step) -> None:
        out = run_in_container(t)
        step.evidence.update(out)
        if not out.get("ok"):
            raise CheckFailed(f"snapshot not taken: {out.get('error')}",
                              "free disk space on tvps, or see the message; nothing was overwritten")
        if out["reused"] and recorded and recorded.get("sha256") != out["sha256"]:
            raise CheckFailed(
                f"{out['host_path']} exists but its sha256 {out['sha256'][:12]}… differs from the journal's "
                f"{recorded['sha256'][:12]}…: refusing to reuse it",
                "move it aside by hand (never delete it), then re-run `inv preflight`")
        record: runbook.Snapshot = {"host_path": out["host_path"], "path": out["path"], "sha256": out["sha256"],
                                    "bytes": out["bytes"], "tables": out["tables"],
                                    "taken_at": out.get("copied_at") or (recorded or {}).get("taken_at") or out["modified"]}
        journal.facts[Fact.SNAPSHOT] = record
        step.note = (f"reused the existing snapshot (last modified {out['modified']})" if out["reused"]
                     else f"taken in {out['copy_attempts']} attempt(s)")

    # a run cut off mid-step is simply redone: the action verifies and reuses a file that is there
    step, how = t.journals.once(journal, Steps.SNAPSHOT, action)
    if how == "skipped":   # done before: still make sure the file is there and unchanged
        out = run_in_container(t)
        if not out.get("ok") or out.get("sha256") != (recorded or {}).get("sha256"):
            return CheckResult(Steps.SNAPSHOT, Status.FAIL, f"the recorded snapshot is missing or changed: {out.get('error') or out.get('sha256')}",
                               out, "move the file aside (never delete it) and re-run `inv preflight`")
        return CheckResult(Steps.SNAPSHOT, Status.PASS, f"verified {out['host_path']} (sha256 {out['sha256'][:12]}…, unchanged)",
                           {k: out[k] for k in ("host_path", "sha256", "bytes", "tables")})
    snap = journal.facts[Fact.SNAPSHOT]
    how_taken = f"reused (file from {step.evidence.get('modified')})" if step.evidence.get("reused") else "took"
    return CheckResult(Steps.SNAPSHOT, Status.PASS,
                       f"{how_taken} {snap['host_path']} "
                       f"({snap['bytes'] / 2**20:.1f} MiB, sha256 {snap['sha256'][:12]}…, {len(snap['tables'])} tables)",
                       {k: snap[k] for k in ("host_path", "sha256", "bytes", "tables")})
