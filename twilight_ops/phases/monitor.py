"""§3 against tvps: the monitoring probe inside the backend container.

    fetch_metrics(t, hours)           one probe round over SSH -> Metrics
    fetch_local(settings, db, hours)  the same probe on a local DuckDB file (--db), no connection
    ReconnectingFetch(t, hours)       watch's fetch: reconnects after a dropped SSH

The probe (monitor/probe.py with own_calls.py: monitor/script.cached_body) is kept on tvps
under its content hash (~/twilight/cutover/probe-<sha256[:16]>.py, uploaded once, checked
by sha256sum before each run); a round sends only its parameters' line on stdin, and tvps
runs `cat BODY - | docker compose -f F exec -T backend python3 -` (run_probe; the whole
script on stdin where the body cannot be kept); only its one JSON object of
aggregates comes back (plus, for preflight, a bounded list of (ts, ts_code) pairs),
never whole rows, never the database.  `now` is tvps's clock: each round reads it
(`date +%s.%N` over SSH, bracketed by the tool's clock: tvps_clock.measure) and sends
the tool's clock shifted by that skew as a parameter, so the window ends at tvps's now
(the clock that stamps the audit rows), whatever the container's TZ; a skewed tvps no
longer hides the last minutes' rows.  `--db FILE` (local) uses the tool's clock.

`interpret(result)` is pure: the exec's Result -> Metrics or one domain error (the
probe's own error kinds via metrics.parse_probe_json; a stopped container or a lost
connection -> Unreachable; anything else -> CheckFailed).
"""
from __future__ import annotations

import posixpath
import time
from pathlib import Path

from ..builders import compose as compose_cmd, files
from ..builders.compose import compose_exec_python
from ..builders.layout import Layout
from ..clock import now_utc
from ..config import Settings
from ..errors import BadInput, CheckFailed, Unreachable
from ..executor import Result
from ..monitor.metrics import Assessment, Metrics, parse_probe_json
from ..results import CheckResult, Status
from ..monitor import script
from ..monitor.script import ProbeParams, build_probe_script, run_local
from ..target import Target
from .. import tvps_clock

_NOT_RUNNING = ("is not running", "No such container", "no such service", "has no container")


# ---------------------------------------------------------------- the probe

def probe_params(settings: Settings, hours: float, now=None, rows_limit: int = 0, own: tuple = ()) -> ProbeParams:
    return ProbeParams(
        own=own,
        db_path=settings.container_warehouse,
        hours=hours,
        now_utc=now if now is not None else now_utc(settings.clock_offset_seconds),
        copy_dir=settings.monitor_copy_dir,
        liquid_codes=settings.liquid_codes,
        rows_limit=rows_limit,
    )


def probe_command(lay: Layout) -> list[str]:
    return compose_exec_python(lay)


def interpret(result: Result, service: str = "backend") -> Metrics:
    """The exec's Result -> Metrics, or the one domain error that explains it."""
    out = result.stdout.strip()
    if out.startswith("{"):
        return Metrics.from_probe(parse_probe_json(out, exited=result.exited, stderr=result.stderr))
    err = result.stderr.strip()
    if result.exited == -1:
        raise Unreachable("the SSH session ended before the monitor probe reported", "check the network; re-run (watch mode reconnects)")
    if any(s in err for s in _NOT_RUNNING):
        raise Unreachable(f"the {service} container is not running, so the monitor probe cannot run in it",
                          "see `inv status`; start it as the runbook says, then re-run")
    if result.exited in (126, 127) or "executable file not found" in err:
        raise CheckFailed(f"python3 is not available in the {service} container ({_last(err)})",
                          "the probe needs the backend image's python3 with duckdb; or use --db on a copied file")
    if "not a docker command" in err or "unknown shorthand flag" in err:
        raise CheckFailed(f"docker compose v2 is not available on tvps ({_last(err)})", "install the compose plugin there")
    return Metrics.from_probe(parse_probe_json(out, exited=result.exited, stderr=result.stderr))


def _last(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else "no output"


def own_recent(settings: Settings, hours: float) -> list:
    """The tool's own calls of the last `hours` (own_calls.py, this machine's clock), the newest
    MAX_OWN: what §3 and the guard leave out.  Local work, read before tvps's clock (fetch_metrics)
    so that it overlaps the link's opening."""
    import datetime as dt

    from .. import own_calls
    from ..monitor.probe import MAX_OWN

    since = now_utc(settings.clock_offset_seconds) - dt.timedelta(hours=hours, seconds=2 * own_calls.SLACK_S)
    return own_calls.read(settings, since)[-MAX_OWN:]       # the newest, when ever more were recorded


def own_on_tvps(calls: list, skew=None) -> tuple[dict, ...]:
    """own_recent's calls moved onto tvps's clock by the measured skew, as the probe's `own` parameter."""
    from .. import own_calls

    return tuple(own_calls.to_wire(calls, skew.seconds if skew is not None else 0.0))


def fetch_metrics(t: Target, hours: float, *, now=None, rows_limit: int = 0, skew=None,
                  leave_out_own: bool = False) -> Metrics:
    """One probe round inside the backend container (only aggregates cross SSH; with rows_limit
    also the newest rows_limit (ts, ts_code) pairs of the window, nothing else of a row).
    The window ends at tvps's now (`skew`, a tvps_clock.Skew, measured here when not given).
    leave_out_own: the tool's own calls (own_calls.py) are left out of the metrics (§3, the guard);
    preflight leaves them out itself from the rows."""
    settings = t.settings
    calls = own_recent(settings, hours) if leave_out_own else []
    if now is None:
        skew = skew if skew is not None else tvps_clock.measure(t.ssh, settings.clock_offset_seconds)
        now = tvps_clock.tvps_now(skew, settings.clock_offset_seconds)
    own = own_on_tvps(calls, skew) if leave_out_own else ()
    result = run_probe(t, probe_params(settings, hours, now, rows_limit, own))
    return interpret(result, settings.service)


def run_probe(t: Target, params: ProbeParams) -> Result:
    """One probe round: the body kept on tvps (content-addressed, checked by sha256sum there) and only
    this round's line over SSH.  When the body is absent (a first run, a new version of the tool) it is
    uploaded once (older bodies removed) and the round runs again; where tvps cannot keep it (no
    sha256sum, an unwritable folder) the whole script travels on stdin, as before (issue 22)."""
    lay, timeout = t.layout, t.settings.monitor_timeout
    if t.settings.host in _CANNOT_KEEP:         # found once in this process: no upload tried every round
        return t.ssh.run(probe_command(lay), stdin=build_probe_script(params), check=False, timeout=timeout)
    sha = script.body_sha256()
    path = lay.probe_path(sha)
    argv = compose_cmd.compose_exec_cached_python(lay, path, sha)
    tail = script.tail_line(params)
    result = t.ssh.run(argv, stdin=tail, check=False, timeout=timeout)
    if not _not_kept(result):
        return result
    try:
        t.ssh.run(files.mkdir_p(lay.cutover_dir), timeout=60)
        t.ssh.write_file(path, script.cached_body().encode("utf-8"), mode=0o600)
    except (Unreachable, CheckFailed):      # a folder tvps will not let us write: the round below says
        pass                                # whether the link itself is gone (it raises Unreachable then)
    else:
        t.ssh.run(files.remove_other_probes(lay.cutover_dir, posixpath.basename(path)), check=False, timeout=60)
        result = t.ssh.run(argv, stdin=tail, check=False, timeout=timeout)
        if not _not_kept(result):
            return result
    _CANNOT_KEEP.add(t.settings.host)
    return t.ssh.run(probe_command(lay), stdin=build_probe_script(params), check=False, timeout=timeout)


_CANNOT_KEEP: set[str] = set()      # hosts where a kept body still failed its check right after its upload


def _not_kept(result: Result) -> bool:
    return result.exited == compose_cmd.NOT_CACHED and "probe body not on tvps" in result.stderr


def fetch_local(settings: Settings, db: str | Path, hours: float, *, now=None) -> Metrics:
    """`--db FILE`: the same probe on a local file, in a subprocess of this Python."""
    path = Path(db).expanduser()
    if not path.is_file():
        raise BadInput(f"--db {str(db)!r} is not a file", "give a local DuckDB file, e.g. a copy of the warehouse snapshot")
    when = now if now is not None else now_utc(settings.clock_offset_seconds)
    return Metrics.from_probe(run_local(path, hours, when, liquid_codes=settings.liquid_codes,
                                        timeout_s=settings.monitor_timeout))


SKEW_TTL_S = 300.0      # watch rounds re-read tvps's clock this often (and after a reconnect)


class ReconnectingFetch:
    """Watch's fetch: after an Unreachable round, the next attempt reconnects first.
    tvps's clock is read on the first round, then every SKEW_TTL_S and after a reconnect
    (a round stays one SSH command; NTP moves a clock slowly, a step shows within 5 min)."""

    def __init__(self, t: Target, hours: float, clock=time.monotonic):
        self.t, self.hours, self.clock = t, hours, clock
        self.dirty = False
        self.reconnects = 0
        self.skew: "tvps_clock.Skew | None" = None
        self.skew_at = 0.0

    def __call__(self) -> Metrics:
        if self.dirty:
            self.reconnects += 1
            self.t.ssh.reconnect()       # raises Unreachable while tvps stays away
            self.dirty = False
            self.skew = None
        try:
            if self.skew is None or self.clock() - self.skew_at >= SKEW_TTL_S:
                self.skew = tvps_clock.measure(self.t.ssh, self.t.settings.clock_offset_seconds)
                self.skew_at = self.clock()
            return fetch_metrics(self.t, self.hours, skew=self.skew, leave_out_own=True)
        except Unreachable:
            self.dirty = True
            raise


def check(a: Assessment) -> CheckResult:
    """The §3 verdict as the one result type: investigate or no data → FAIL (exit 1)."""
    status = Status.FAIL if a.verdict in ("investigate", "no_data") else Status.PASS
    return CheckResult("monitor", status, a.verdict, {k: b.value for k, b in a.bands.items()},
                       "run `inv diagnose` for the §4 known failure modes" if status is Status.FAIL else "")
