"""The smoke phase (runbook §1 T+00:15, and §2.4 after a rollback).

Live: read the operator token from tvps (a Secret), GET /price from this
machine, judge the envelope; on a 5xx fetch the backend's last 200 log lines
into the journal.  Offline: judge a saved body (`--from-file`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import audit, commands, status as status_mod, validate
from .api import get_price
from .clock import now_utc
from .config import Settings
from .envelope import Verdict, evaluate, redact
from .errors import BadInput
from .journal import JournalStore, new_journal
from .remote import SSHExecutor
from .secret import scrub

LOG_TAIL_SHOWN = 20
MAX_BODY_BYTES = 4 * 1024 * 1024   # --from-file: a /price body is a few kB


@dataclasses.dataclass(frozen=True)
class SmokeResult:
    verdict: Verdict
    logs: str = ""            # backend log tail, fetched on a 5xx
    journal_version: str = ""


def exit_code(result: SmokeResult) -> int:
    v = result.verdict
    if v.green:
        return 0
    codes = {f.code for f in v.red_flags}
    if codes == {"transport_error"}:
        return 3
    return 1


def from_file(settings: Settings, path: str, status: int, expect: str) -> SmokeResult:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"--from-file {path!r} is not a readable file", "give the path of a saved /price response body")
    if not 100 <= status <= 599:
        raise BadInput(f"--status {status} is not an HTTP status", "give a number from 100 to 599")
    size = p.stat().st_size
    if size > MAX_BODY_BYTES:
        raise BadInput(f"--from-file {path!r} is {size} bytes, more than a /price body ({MAX_BODY_BYTES} bytes at most)",
                       "give the saved response body only")
    with p.open("rb") as fh:
        body = fh.read(MAX_BODY_BYTES + 1)   # a file that grew since stat() is still capped
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"--from-file {path!r} is larger than {MAX_BODY_BYTES} bytes", "give the saved response body only")
    return SmokeResult(evaluate(status, body, expect, now_utc(settings.clock_offset_seconds),
                                settings.thresholds.adj_tolerance))


def _journal_version(ex: SSHExecutor, lay: commands.Layout, settings: Settings) -> str:
    """The release this smoke belongs to: the running tag; when pinned by digest (after a
    rollback) the tag has gone, so the version the deploy lock names; else 'unknown'."""
    from . import lock

    running = [s for s in status_mod.services(ex, lay, settings.image_repo) if s.service == settings.service]
    if running and running[0].version:
        return running[0].version
    holder = lock.read_holder(ex, lay)
    if holder is not None and holder.version not in ("?", ""):
        # read from tvps and about to name a local file: the same validator as --version
        return validate.version(holder.version, "the deploy lock's version on tvps")
    return "unknown"


def live(settings: Settings, ex: SSHExecutor, code: str, expect: str, version: str | None) -> SmokeResult:
    lay = commands.layout(settings, ex.home)
    token = ex.read_secret(lay.token_file)
    resp = get_price(settings, token, code)
    verdict = evaluate(resp.status, resp.body, expect, now_utc(settings.clock_offset_seconds),
                       settings.thresholds.adj_tolerance, resp.transport_error)
    logs = ""
    if resp.status is not None and resp.status >= 500:
        r = ex.run(commands.compose_logs(lay, 200), check=False, timeout=60)
        logs = redact(scrub(r.stdout + r.stderr, token))
    if version is None:
        version = _journal_version(ex, lay, settings)
    store = JournalStore(settings.state_dir, settings.host, lay, ex)
    store.secrets.append(token)
    journal = store.load(version) or new_journal(version, settings.host, settings.operator)
    with store.step(journal, f"smoke-{expect}") as step:
        step.evidence.update(verdict.to_json())
        step.evidence["code"] = code
        step.evidence["elapsed_ms"] = round(resp.elapsed_ms, 1)
        if logs:
            step.evidence["backend_logs_tail200"] = logs
        step.outcome = "ok" if verdict.green else "red"
        step.note = verdict.next_step
    flags = ",".join(f.code for f in verdict.red_flags)
    audit.append(ex, lay, audit.audit_line(settings.operator, f"smoke-{expect}", version, verdict.verdict,
                                           f"{code} HTTP {resp.status} {verdict.envelope} {flags}".strip()))
    return SmokeResult(verdict, logs, version)
