"""§0 prerequisites and the T+00:00 snapshot: `inv preflight`.

    run(t, commit=None, snapshot=True) -> PreflightReport

Seven checks, each a CheckResult (PASS / FAIL / SKIP with evidence and the fix):
  commit_pinned         ~/twilight/source HEAD on tvps == the cutover commit (local origin/main after a fetch, or --commit)
  dependency_prs        every configured PR and the T2.7 lifespan PR merged (GitHub REST, github.GitHub.pulls:
                        one list of the repo's 100 newest PRs, merged = merged_at set; a PR not on it
                        by its own pulls/{n}.merged, those GETs sent at once)
  ci_green              the configured check run on the cutover commit concluded success
  tushare_token         a real trade_cal call made from tvps with TUSHARE_TOKEN from ~/twilight/.env answers code 0
  install_skill_latest  the local scripts/install-skill.sh equals origin/main's, and local main is not behind
  clock_skew            tvps's clock within max_clock_skew_seconds of this machine's (tvps_clock.py), shown as
                        `clock skew: tvps is 600 s behind this machine (±0.01 s)`
  no_traffic            at most traffic_max_calls client /price calls in the last traffic_minutes of tvps's clock
                        (audit log, else logs), the tool's own calls (own_calls.py: status, smoke, agent-smoke,
                        diagnose) left out, their times matched on one clock (the audit rows shifted by the skew)
Nothing on tvps changes unless all seven pass; then the T+00:00 facts: the backend running,
healthy, restart count 0, its pullable repo digest, and the snapshot (phases/snapshot.py).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from ..builders import git
from ..builders.compose import compose
from .. import tvps_clock
from ..clock import iso, now_utc
from ..errors import BadInput, CheckFailed, LinkLost, TwilightError, Unreachable
from ..results import CheckResult, Status, exit_code
from ..runbook import Fact, Steps
from ..target import Target

SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
INSTALL_SKILL = "scripts/install-skill.sh"


@dataclasses.dataclass(frozen=True)
class PreflightReport:
    version: str
    commit: str
    checks: tuple[CheckResult, ...]
    t0: tuple[CheckResult, ...]          # T+00:00: service state and snapshot (empty when not reached)

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return self.checks + self.t0

    @property
    def go(self) -> bool:
        return exit_code(self.results) == 0

    @property
    def recorded(self) -> bool:
        """The T+00:00 facts were recorded (not under --no-snapshot / --dry)."""
        return any(r.id == Steps.SNAPSHOT and r.status is Status.PASS for r in self.t0)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "commit": self.commit,
                "checks": [r.to_json() for r in self.checks], "t0": [r.to_json() for r in self.t0],
                "verdict": "go" if self.go else "no-go"}


def _fail(id: str, reason: str, fix: str, **evidence: Any) -> CheckResult:
    return CheckResult(id, Status.FAIL, reason, evidence, fix)


def _guard(id: str, fn, *args) -> CheckResult:
    """A check that could not ask its source is a FAIL naming why (one line), never a traceback.
    A lost link to tvps is not a check's answer: it ends the run (exit 3, the step in flight)."""
    try:
        return fn(*args)
    except LinkLost:
        raise
    except (Unreachable, CheckFailed, BadInput, TwilightError) as e:
        return _fail(id, e.message, e.hint or "fix the cause and re-run `inv preflight`")


# ---------------------------------------------------------------- the local repo

def local_repo(t: Target):
    path = t.settings.local_repo
    if not (path / ".git").exists():
        raise BadInput(f"twilight.local_repo {path} is not a git checkout",
                       "clone twilight-drive there or set twilight.local_repo")
    return t.local.child(cwd=path)


def cutover_commit(t: Target, repo, commit: str | None) -> str:
    repo.run(git.fetch("origin", "main"), timeout=120)
    ref = commit or "origin/main"
    r = repo.run(git.rev_parse(ref), check=False)
    if not r.ok or not r.stdout.strip():
        raise BadInput(f"--commit {commit!r} is not a commit in {t.settings.local_repo}" if commit else
                       f"{t.settings.local_repo} has no origin/main", "fetch the repo, or give a commit it has")
    return r.stdout.strip()


# ---------------------------------------------------------------- the seven checks

def commit_pinned(t: Target, cutover: str) -> CheckResult:
    r = t.ssh.run(git.git("-C", t.layout.source_dir, "rev-parse", "HEAD"), check=False, timeout=30)
    head = r.stdout.strip()
    if not r.ok or not re.fullmatch(r"[0-9a-f]{40}", head):
        return _fail("commit_pinned", f"{t.layout.source_dir} on tvps is not a git checkout ({r.stderr.strip()[:120]})",
                     f"clone twilight-drive into {t.layout.source_dir} on tvps and check out {cutover[:12]}")
    if head != cutover:
        return _fail("commit_pinned", f"tvps source is at {head[:12]}, the cutover commit is {cutover[:12]}",
                     f"on tvps: git -C {t.layout.source_dir} fetch && git -C {t.layout.source_dir} checkout {cutover}",
                     tvps_head=head, cutover=cutover)
    return CheckResult("commit_pinned", Status.PASS, f"tvps source at {head[:12]} = cutover commit", {"commit": head})


def dependency_prs(t: Target, gh) -> CheckResult:
    wanted = list(t.settings.dependency_prs)
    if t.settings.lifespan_pr is None:
        return _fail("dependency_prs", "the T2.7 lifespan-injection PR is not configured",
                     "set twilight.lifespan_pr to its number in invoke.yaml", prs=wanted)
    wanted.append(t.settings.lifespan_pr)
    open_, missing, merged = [], [], {}
    for n, pull in zip(wanted, gh.pulls(wanted)):      # one list request; answers (and the first error) in PR order
        if pull is None:
            missing.append(n)
        elif pull.get("merged") is True:
            merged[n] = str(pull.get("merge_commit_sha") or "")[:12]
        else:
            open_.append(f"#{n} ({pull.get('state', '?')}: {str(pull.get('title', ''))[:60]})")
    if open_ or missing:
        parts = ([f"not merged: {', '.join(open_)}"] if open_ else []) + (
            [f"not found: {', '.join(f'#{n}' for n in missing)}"] if missing else [])
        return _fail("dependency_prs", "; ".join(parts), "merge them first (runbook §0: do not start)",
                     merged=sorted(merged), not_merged=open_, not_found=missing)
    return CheckResult("dependency_prs", Status.PASS, f"{len(merged)} PRs merged (incl. T2.7 #{t.settings.lifespan_pr})",
                       {"merged": sorted(merged)})


def ci_green(t: Target, gh, cutover: str) -> CheckResult:
    name = t.settings.ci_check_name
    from .. import ci_select

    latest = ci_select.newest_check_run(gh.check_runs(cutover), name)   # every page; a queued re-run is the newest
    if latest is None:
        return _fail("ci_green", f"no check run named {name!r} on {cutover[:12]}",
                     "wait for CI on the cutover commit, or set twilight.ci_check_name", commit=cutover)
    ev = {k: latest.get(k) for k in ("name", "status", "conclusion", "html_url")}
    if latest.get("status") != "completed":
        return _fail("ci_green", f"{name!r} is still {latest.get('status')} on {cutover[:12]}", "wait for it to finish", **ev)
    if latest.get("conclusion") != "success":
        return _fail("ci_green", f"{name!r} concluded {latest.get('conclusion')} on {cutover[:12]}",
                     f"fix CI first: {latest.get('html_url')}", **ev)
    return CheckResult("ci_green", Status.PASS, f"{name!r} success on {cutover[:12]}", ev)


def tushare_token(t: Target) -> CheckResult:
    from ..builders import tushare
    import json

    today = now_utc(t.settings.clock_offset_seconds).date()
    script = tushare.check_script(t.layout.env_file, t.settings.tushare_url,
                                  (today - dt.timedelta(days=7)).strftime("%Y%m%d"), today.strftime("%Y%m%d"))
    r = t.ssh.run(tushare.ARGV, stdin=script, check=False, timeout=60)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1][:160]
        return _fail("tushare_token", f"the check could not run on tvps (exit {r.exited}: {tail})",
                     "tvps needs python3 on PATH for this check")
    if out.get("ok"):
        return CheckResult("tushare_token", Status.PASS, f"trade_cal answered code 0 ({out.get('rows')} rows) from tvps",
                           {"code": 0, "url": t.settings.tushare_url})
    if out.get("kind") == "reply":
        problem, fix = tushare.reply_problem(out.get("code"), out.get("msg"))
        return _fail("tushare_token", problem, fix.replace("the env file", t.layout.env_file), code=out.get("code"))
    return _fail("tushare_token", str(out.get("detail")), f"check {t.layout.env_file} and tvps's network",
                 kind=out.get("kind"))


def install_skill_latest(t: Target, repo) -> CheckResult:
    theirs = repo.run(git.show_file("origin/main", INSTALL_SKILL), check=False)
    if not theirs.ok:
        return _fail("install_skill_latest", f"origin/main has no {INSTALL_SKILL}", "check the repo layout")
    path = t.settings.local_repo / INSTALL_SKILL
    mine = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    behind = int(repo.run(git.rev_list_count("main..origin/main"), check=False).stdout.strip() or "0")
    if mine != theirs.stdout or behind:
        why = []
        if mine is None:
            why.append(f"{path} is missing")
        elif mine != theirs.stdout:
            why.append(f"{INSTALL_SKILL} differs from origin/main's")
        if behind:
            why.append(f"local main is {behind} commit(s) behind origin/main")
        return _fail("install_skill_latest", "; ".join(why),
                     f"in {t.settings.local_repo}: git checkout main && git pull (keep or stash local changes first)",
                     behind=behind)
    return CheckResult("install_skill_latest", Status.PASS, "same as origin/main; local main up to date", {"behind": 0})


TRAFFIC_ROWS = 2000          # (ts, ts_code) pairs the probe returns at most; rows beyond it count as traffic
LOG_TS = re.compile(r"\b(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))")
LOG_CODE = re.compile(r"\bcode=([A-Za-z0-9._-]{1,32})")


def log_calls(text: str, offset_s: float) -> list[tuple[dt.datetime | None, str | None]]:
    """`GET /price` lines of `docker compose logs --timestamps` as (ts on the tool's clock, code).

    The first timestamp on a line is the daemon's (tvps's wall clock; offset_s takes it to the
    tool's clock: clock_offset_seconds minus the measured skew); a line without a time or a code
    is kept as traffic."""
    from ..own_calls import parse_instant

    out: list[tuple[dt.datetime | None, str | None]] = []
    for line in text.splitlines():
        if "GET /price" not in line:
            continue
        ts_m, code_m = LOG_TS.search(line), LOG_CODE.search(line)
        ts = parse_instant(ts_m.group(1)) if ts_m else None
        out.append((ts + dt.timedelta(seconds=offset_s) if ts else None, code_m.group(1) if code_m else None))
    return out


def clock_skew(t: Target) -> tuple[CheckResult, "tvps_clock.Skew | None"]:
    """tvps's clock against this machine's: the skew (shown) and the verdict against the bound."""
    try:
        skew = tvps_clock.measure(t.ssh, t.settings.clock_offset_seconds)
    except (Unreachable, CheckFailed, TwilightError) as e:
        return _fail("clock_skew", f"tvps's clock could not be read: {e.message}", e.hint or "see `ssh tvps date`"), None
    return tvps_clock.check(skew, t.settings.max_clock_skew_seconds), skew


def no_traffic(t: Target, skew: "tvps_clock.Skew | None" = None) -> CheckResult:
    """Client /price calls in the last traffic_minutes of tvps's clock, the tool's own calls left out
    (own_calls.py; they are recorded on this machine's clock, so audit times are shifted by the skew)."""
    from .. import own_calls
    from ..own_calls import parse_instant
    from ..phases.monitor import fetch_metrics

    minutes, limit = t.settings.traffic_minutes, t.settings.traffic_max_calls
    skew = skew if skew is not None else tvps_clock.measure(t.ssh, t.settings.clock_offset_seconds)
    to_ours = dt.timedelta(seconds=-skew.seconds)     # a tvps time -> the same instant on this machine's clock
    since = now_utc(t.settings.clock_offset_seconds) - dt.timedelta(minutes=minutes)
    note = ""
    try:
        m = fetch_metrics(t, minutes / 60, rows_limit=TRAFFIC_ROWS, skew=skew)
        source, total = f"provider_audit_log (read {m.read_via})", m.total
        start = parse_instant(m.window_start_utc)
        since = start + to_ours if start else since
        rows = [(ts + to_ours if ts else None, code)
                for ts, code in ((parse_instant(ts), code) for ts, code in m.rows)] if m.rows is not None else []
        if m.rows is None:
            note = "the audit log has no ts_code column: no own call could be told apart"
    except BadInput as e:          # the running version writes no audit rows (no table): count log lines
        r = t.ssh.run(compose(t.layout, "logs", t.layout.service, f"--since={int(minutes)}m", "--no-color",
                              "--timestamps"), check=False, timeout=60)
        if not r.ok:
            return _fail("no_traffic", f"neither the audit log ({e.message}) nor the backend logs could be read",
                         "see `inv status`")
        source = "backend logs (the running version writes no audit rows)"
        rows = log_calls(r.stdout, t.settings.clock_offset_seconds - skew.seconds)
        total = len(rows)
    own = own_calls.read(t.settings, since - dt.timedelta(seconds=own_calls.SLACK_S))
    split = own_calls.leave_out(rows, own)
    calls = total - split.left_out           # rows the probe did not return (beyond TRAFFIC_ROWS) count as traffic
    ev: dict[str, Any] = {"source": source, "calls": calls, "minutes": minutes, "max": limit, "seen": total,
                          "clock": f"tvps's clock ({skew.describe()})",
                          "own_calls_left_out": split.left_out, "own_calls_by_kind": split.by_kind,
                          "own_calls_recorded": len(own), "own_calls_record": str(own_calls.record_path(t.settings))}
    if note:
        ev["note"] = note
    own_said = (f"{split.left_out} of twilight-ops's own call(s) left out" if split.left_out else
                "no own call of twilight-ops to leave out")
    said = f"{calls} client /price call(s) in the last {minutes:g} min ({source}; {own_said})"
    if calls > limit:
        return _fail("no_traffic", said,
                     "wait until the agent is idle and no batch runs (runbook §0), then re-run", **ev)
    if t.settings.batch_check:
        b = t.ssh.run(list(t.settings.batch_check), check=False, timeout=60)
        ev["batch_check"] = {"exit": b.exited, "output": (b.stdout + b.stderr).strip()[-200:]}
        if not b.ok:
            return _fail("no_traffic", f"the batch check says a batch is scheduled (exit {b.exited})",
                         "wait for it or disable it for the cutover window", **ev)
    return CheckResult("no_traffic", Status.PASS, said, ev)


# ---------------------------------------------------------------- T+00:00

def service_state(t: Target, journal_facts: dict) -> CheckResult:
    svc = t.service(refresh=True)
    if svc is None:
        return _fail("service", f"compose lists no {t.settings.service} service", "see `inv status`; abort (runbook T+00:00)")
    ev = {"state": svc.state, "health": svc.health, "restart_count": svc.restart_count, "version": svc.version,
          "repo_digest": svc.repo_digest}
    from ..health import is_healthy

    if not is_healthy(svc.state, svc.health) or svc.restart_count != 0:
        return _fail("service", f"{svc.service} is {svc.state}, health {svc.health}, restarts {svc.restart_count}",
                     "abort: the cutover assumes a healthy service (runbook T+00:00); investigate first", **ev)
    if not svc.repo_digest:
        return _fail("service", f"the running image {svc.image} has no pullable repo digest",
                     "it was not pulled from the registry: a rollback could not pin it; investigate first", **ev)
    recorded = journal_facts.get(Fact.PRE_DIGEST)
    if recorded and recorded != svc.repo_digest:
        return _fail("service", f"the journal's T+00:00 digest is {recorded} but {svc.repo_digest} runs now: "
                     "the cutover has begun, and T+00:00 facts are recorded once", 
                     "carry on with the cutover, or `inv rollback` to go back to the recorded digest", **ev)
    return CheckResult("service", Status.PASS, f"{svc.service} {svc.version} running, healthy, 0 restarts; {svc.repo_digest}", ev)


def run(t: Target, commit: str | None = None, snapshot: bool = True) -> PreflightReport:
    from .. import github
    from . import snapshot as snap

    if commit is not None and not SHA_RE.fullmatch(commit):
        raise BadInput(f"--commit {commit!r} is not a commit id", "give 7 to 40 lower-case hex digits")
    repo = local_repo(t)
    cutover = cutover_commit(t, repo, commit)
    gh_token = github.token(t.settings, t.local)
    checks: list[CheckResult] = []
    checks.append(_guard("commit_pinned", commit_pinned, t, cutover))
    with github.GitHub(t.settings, gh_token) as gh:
        checks.append(_guard("dependency_prs", dependency_prs, t, gh))
        checks.append(_guard("ci_green", ci_green, t, gh, cutover))
    checks.append(_guard("tushare_token", tushare_token, t))
    checks.append(_guard("install_skill_latest", install_skill_latest, t, repo))
    skew_row, skew = clock_skew(t)
    checks.append(skew_row)
    checks.append(_guard("no_traffic", no_traffic, t, skew))
    t0: list[CheckResult] = []
    if exit_code(checks) == 0:
        if not snapshot:
            t0.append(CheckResult(Steps.SNAPSHOT, Status.SKIP, "--no-snapshot: T+00:00 facts not recorded"))
        else:
            journal = t.journal()
            t0.append(service_state(t, journal.facts))
            if t0[-1].status is Status.PASS:
                t0.append(_guard(Steps.SNAPSHOT, snap.take, t, journal))
                if t0[-1].status is Status.PASS:
                    svc = t0[0].evidence
                    journal.facts.update({Fact.PRE_VERSION: svc["version"], Fact.PRE_DIGEST: svc["repo_digest"],
                                          Fact.CUTOVER_COMMIT: cutover, Fact.PREFLIGHT_AT: iso(now_utc())})
                    with t.journals.step(journal, Steps.PREFLIGHT) as step:
                        step.evidence.update({"checks": [c.to_json() for c in checks], "commit": cutover})
                    t.audit(Steps.PREFLIGHT, "go", f"commit {cutover[:12]} pre {svc['repo_digest']}")
    return PreflightReport(t.version, cutover, tuple(checks), tuple(t0))
