"""inv monitor (runbook §3, first 48 h) and inv diagnose (runbook §4)."""
from __future__ import annotations

import json as jsonlib
import sys
import time
from typing import Any

from invoke import task
from invoke.exceptions import Exit

from ..errors import BadInput
from ..output import console, err_console, finish, operation, print_json

MAX_WATCH_MINUTES = 24 * 60
MIN_WATCH_MINUTES_LOCAL = 0.005   # --db reads a local file: nothing remote to spare, still no busy loop
DEFAULT_UNTIL_HOURS = "48"


def _minutes(value: object, floor: float) -> float:
    """--watch in minutes, at least `floor` (config watch_floor_minutes, 0.25: --watch 1e-300
    would probe production back to back)."""
    from .. import validate

    try:
        m = float(validate.ascii_number(value, "--watch", "e.g. --watch 5"))
    except (TypeError, ValueError):
        raise BadInput(f"--watch {value!r} is not a number of minutes", "e.g. --watch 5") from None
    if not (floor <= m <= MAX_WATCH_MINUTES):
        raise BadInput(f"--watch {value!r} is out of range",
                       f"give from {floor:g} to {MAX_WATCH_MINUTES} minutes (--watch is in minutes)")
    return m


def _emit_json(m: Any, a: Any, hours: float, **extra: object) -> None:
    from ..monitor.metrics import to_json

    obj = {**to_json(m, a.bands, a.verdict, hours, m.read_via), **extra}
    if extra:
        sys.stdout.write(jsonlib.dumps(obj, default=str) + "\n")
        sys.stdout.flush()
    else:
        print_json(obj)


@task(help={
    "hours": "window: the last N hours of provider_audit_log (default 1)",
    "json": "print one JSON object (with --watch: one per round, one per line)",
    "watch": "repeat every N minutes (one line per round) until --until",
    "until": "with --watch: stop after N hours (default 48, the runbook's first 48 h)",
    "db": "run the same queries on this local DuckDB file instead of tvps (no connection)",
    "guard": "§2 guard: judge the runbook's rollback triggers each round; a trigger prints its evidence and "
             "the rollback command, exit 1 (without --watch: one round)",
    "auto_rollback": "with --guard: on a trigger run the rollback itself, once (journal step guard-rollback)",
    "version": "with --guard: the cutover being guarded (default: the running release)",
})
@operation
def monitor(c, hours="1", json=False, watch="", until="", db="", guard=False, auto_rollback=False, version=""):
    """§3 health of /price: error rate, served_by shares, p95, akshare-spot share during OPEN (--guard: §2 triggers)."""
    from .. import validate
    from ..target import Target

    if auto_rollback and not guard:
        raise BadInput("--auto-rollback only makes sense with --guard", "e.g. inv monitor --watch 5 --guard --auto-rollback")
    if version and not guard:
        raise BadInput("--version only makes sense with --guard", "e.g. inv monitor --watch 5 --guard --version V")
    if guard and db:
        raise BadInput("--guard calls /price and reads the journal: it cannot run on a --db file", "drop --db")
    if version:
        validate.version(version)
    t = Target.from_context(c, version=version or None)
    settings = t.settings
    h = validate.hours(hours, "--hours")
    every_s = _minutes(watch, MIN_WATCH_MINUTES_LOCAL if db else settings.watch_floor_minutes) * 60 if watch else None
    if until and every_s is None:
        raise BadInput("--until only makes sense with --watch", "e.g. --watch 5 --until 48")
    until_s = validate.hours(until or DEFAULT_UNTIL_HOURS, "--until") * 3600 if every_s is not None else None
    if guard:
        from ..output import dry_run

        if dry_run(c):      # --auto-rollback changes tvps: under --dry print what a round and a trigger do
            _guard_plan(t, auto_rollback)
            return
        _guard(t, h, every_s, until_s, json, auto_rollback)
        return
    local = _local_fetch(settings, db, h) if db else None   # checked before anything runs
    if every_s is not None:
        _, crossed = _watch(t, h, every_s, until_s, json, local)
        if crossed:
            raise Exit(code=1)
        return
    if local is None:
        t.ssh.open_soon()          # the handshake overlaps the imports below
    from ..monitor.metrics import assess
    from ..phases.monitor import check, fetch_metrics

    if local is not None:
        m = local()
    else:
        with t:
            m = fetch_metrics(t, h, leave_out_own=True)
    a = assess(m, settings.thresholds)
    if json:
        _emit_json(m, a, h)
        if a.verdict == "no_data":
            from ..monitor.metrics import NO_DATA_HINT

            err_console.print(f"no data: {NO_DATA_HINT}", markup=False, highlight=False)
    else:
        from ..render.monitor import render_report     # rich: only for the screen, never for --json

        render_report(console, a)
    finish([check(a)])


def _local_fetch(settings: Any, db: str, hours: float):
    from pathlib import Path

    from ..phases.monitor import fetch_local

    if not Path(db).expanduser().is_file():
        raise BadInput(f"--db {db!r} is not a file", "give a local DuckDB file, e.g. a copy of the warehouse snapshot")
    return lambda: fetch_local(settings, db, hours)


def _watch(t: Any, hours: float, every_s: float, until_s: float | None, as_json: bool,
           local_fetch) -> tuple[Any, bool]:
    """The watch loop wired to the console; (summary, whether any round was at investigate)."""
    from ..errors import Unreachable
    from ..monitor.metrics import Assessment, Metrics, assess
    from ..monitor.watch import RetryPolicy, WatchSummary, watch as watch_loop
    from ..phases.monitor import ReconnectingFetch
    from ..render.monitor import round_line

    th = t.settings.thresholds
    prev: Assessment | None = None
    first: tuple[int, str] | None = None      # (round, window end) of the first round at investigate
    policy = RetryPolicy()

    def on_round(n: int, _prev: Metrics | None, cur: Metrics) -> None:
        nonlocal prev, first
        a = assess(cur, th)
        if a.verdict == "investigate" and first is None:
            first = (n, cur.window_end_utc)
        if as_json:
            _emit_json(cur, a, hours, round=n)
        else:
            console.print(round_line(prev, a, n), markup=False, highlight=False)
            sys.stdout.flush()
        prev = a

    def on_retry(attempt: int, err: Unreachable, wait: float) -> None:
        err_console.print(f"round failed: {err.line()} — reconnecting in {wait:.0f} s "
                          f"(attempt {attempt + 1} of {policy.attempts})", markup=False, highlight=False)

    def run(fetch) -> WatchSummary:
        return watch_loop(fetch, every_s, until_s, time.monotonic, time.sleep, on_round, retry=policy, on_retry=on_retry)

    if local_fetch is not None:
        summary = run(local_fetch)
    else:
        with t:
            summary = run(ReconnectingFetch(t, hours))
    crossed = f"first investigate: round {first[0]} at {first[1]}" if first else "never at investigate"
    err_console.print(
        f"watch stopped ({summary.stopped}) after {summary.rounds} rounds in {summary.elapsed_s:.0f} s, "
        f"{summary.reconnects} reconnects; {crossed}", markup=False, highlight=False)
    return summary, first is not None


def _say(line: str) -> None:
    err_console.print(line, markup=False, highlight=False)


def _guard_plan(t: Any, auto: bool) -> None:
    from ..output import print_plan
    from ..phases import rollback

    steps = ["each round: the §3 probe in the backend container, GET /price of each liquid code, the journal's "
             "agent-smoke answers and the Hermes log; print every §2 trigger's state",
             "on a trigger: its evidence and the rollback command line; exit 1"]
    if auto:
        steps += [f"--auto-rollback, once (journal step guard-rollback#<deploy attempt>): {step}"
                  for step in rollback.plan(t, False)]
    print_plan("monitor --guard" + (" --auto-rollback" if auto else ""), steps)


def _guard(t: Any, hours: float, every_s: float | None, until_s: float | None, as_json: bool, auto: bool) -> None:
    """The §2 guard (docs/monitor.md "The §2 guard"): rounds until a trigger, the deadline or Ctrl-C."""
    from ..monitor.watch import RetryPolicy
    from ..phases import guard as phase
    from ..render import guard as view
    from ..runbook import next_step
    from ..sanitize import printable

    policy = RetryPolicy()

    def rollback_line(t: Any, reason: str) -> str:
        return next_step(t.prefix, "rollback", "--version", t.version, reason=reason)

    shown = [0]

    def show(rnd: Any) -> None:
        shown[0] += 1
        if as_json:
            obj = {"version": t.version, **rnd.to_json()}
            if rnd.tripped:
                obj["rollback_line"] = rollback_line(t, rnd.reason())
            sys.stdout.write(jsonlib.dumps(obj, default=str) + "\n")
        else:
            view.print_round(console, rnd, first=shown[0] == 1)
        sys.stdout.flush()

    def on_retry(attempt: int, err: Any, wait: float) -> None:
        _say(f"round failed: {err.line()} — reconnecting in {wait:.0f} s (attempt {attempt + 1} of {policy.attempts})")

    with t:
        done = phase.already(t) if t.version != "unknown" else None
        if done:
            _say(printable(f"{t.version}: {phase.said(done)}"))
            raise Exit(code=1)
        w = phase.watch_rounds(t, hours, every_s, until_s, show, on_retry, policy)
        if w.tripped is None:
            if every_s is not None:
                _say(f"guard stopped ({w.stopped}) after {w.rounds} rounds in {w.elapsed_s:.0f} s, "
                     f"{w.reconnects} reconnects; no trigger")
            if w.stopped == "interrupted":
                raise Exit(code=130)        # Ctrl-C: the shell's convention (README)
            return
        view.print_tripped(err_console if as_json else console, w.tripped, rollback_line(t, w.tripped.reason()))
        if auto:
            _say(f"auto-rollback: {w.tripped.reason()}")
            from ..output import progress_lines

            with progress_lines() as say:
                result = phase.auto_rollback(t, w.tripped, say)
            if result.report is None:
                _say(printable(f"auto-rollback not run: {result.detail}"))
            else:
                if not as_json:
                    from ..render import rollback as rollback_view

                    rollback_view.render(result.report, console)
                _say(f"auto-rollback done: {result.detail}; the guard stops")
    raise Exit(code=1)


@task(help={
    "hours": "audit window for the checks that read provider_audit_log (default 1)",
    "json": "print one JSON object",
})
@operation
def diagnose(c, hours="1", json=False):
    """§4 known failure modes: audit aggregates, backend logs and 3 live /price calls; cause and action."""
    from .. import validate
    from ..diagnose import diagnose as find
    from ..phases.diagnose import check, gather_evidence
    from ..render import diagnose as view
    from ..target import Target

    t = Target.from_context(c)
    h = validate.hours(hours, "--hours")
    with t:
        gathered = gather_evidence(t, h)
    findings = find(gathered.evidence)
    if json:
        print_json(view.to_json(gathered, findings))
    else:
        view.render(console, gathered, findings)
    finish([check(gathered, findings)])

