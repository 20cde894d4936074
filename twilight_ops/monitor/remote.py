"""§3 and §4 against tvps: the probe in the backend container, evidence for diagnose.

    fetch_metrics(ex, settings, hours)        one probe round over SSH -> Metrics
    fetch_local(settings, db, hours)          the same probe on a local DuckDB file (--db)
    ReconnectingFetch(ex, settings, hours)    watch's fetch: reconnects after a dropped SSH
    gather_evidence(ex, settings, hours)      probe + live /price calls + backend log tail

The probe (probe.py, parameters bound by build_probe_script) travels on stdin to
`docker compose -f F exec -T backend python3 -`; only its one JSON object of
aggregates comes back, never rows, never the database. `now` is the tool's
clock (`clock.now_utc(settings.clock_offset_seconds)`), sent as a parameter, so
the window is the same whatever the container's TZ or its clock.

`interpret(result)` is pure: the exec's Result -> Metrics or one domain error
(the probe's own error kinds via metrics.parse_probe_json; a stopped container
or a lost connection -> Unreachable; anything else -> CheckFailed).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

from .. import api, commands
from ..clock import now_utc
from ..config import Settings
from ..diagnose import ApiResponse, Evidence
from ..envelope import redact
from ..errors import BadInput, CheckFailed, Unreachable
from ..remote import Executor, Result
from ..secret import Secret, scrub
from .metrics import Metrics, parse_probe_json
from .script import ProbeParams, build_probe_script, run_local

UNKNOWN_CODE = "000000.SZ"    # well-formed, listed nowhere: what does the API answer for it?
FRESHNESS_GAP_S = 1.5         # freshness_seconds has 1 s resolution: two samples this far apart
LOG_TAIL = 200                # runbook §4: `docker compose logs backend --tail=200`

_NOT_RUNNING = ("is not running", "No such container", "no such service", "has no container")


# ---------------------------------------------------------------- the probe

def probe_params(settings: Settings, hours: float, now=None) -> ProbeParams:
    return ProbeParams(
        db_path=settings.container_warehouse,
        hours=hours,
        now_utc=now if now is not None else now_utc(settings.clock_offset_seconds),
        copy_dir=settings.monitor_copy_dir,
        liquid_codes=settings.liquid_codes,
    )


def probe_command(settings: Settings, home: str) -> list[str]:
    return commands.compose_exec_python(commands.layout(settings, home))


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


def fetch_metrics(ex: Executor, settings: Settings, hours: float, *, now=None) -> Metrics:
    """One probe round inside the backend container (only aggregates cross SSH)."""
    script = build_probe_script(probe_params(settings, hours, now))
    result = ex.run(probe_command(settings, ex.home), stdin=script, check=False, timeout=settings.monitor_timeout)
    return interpret(result, settings.service)


def fetch_local(settings: Settings, db: str | Path, hours: float, *, now=None) -> Metrics:
    """`--db FILE`: the same probe on a local file, in a subprocess of this Python."""
    path = Path(db).expanduser()
    if not path.is_file():
        raise BadInput(f"--db {str(db)!r} is not a file", "give a local DuckDB file, e.g. a copy of the warehouse snapshot")
    when = now if now is not None else now_utc(settings.clock_offset_seconds)
    return Metrics.from_probe(run_local(path, hours, when, liquid_codes=settings.liquid_codes,
                                        timeout_s=settings.monitor_timeout))


class ReconnectingFetch:
    """Watch's fetch: after an Unreachable round, the next attempt reconnects first."""

    def __init__(self, ex: Any, settings: Settings, hours: float):
        self.ex, self.settings, self.hours = ex, settings, hours
        self.dirty = False
        self.reconnects = 0

    def __call__(self) -> Metrics:
        if self.dirty:
            self.reconnects += 1
            self.ex.reconnect()          # raises Unreachable while tvps stays away
            self.dirty = False
        try:
            return fetch_metrics(self.ex, self.settings, self.hours)
        except Unreachable:
            self.dirty = True
            raise


# ---------------------------------------------------------------- diagnose evidence

@dataclasses.dataclass(frozen=True)
class Call:
    """One live /price call as made for diagnose (never the token)."""

    ts_code: str
    purpose: str
    status: int | None
    elapsed_ms: float
    transport_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Gathered:
    evidence: Evidence
    calls: tuple[Call, ...]
    log_lines: int
    notes: tuple[str, ...]
    window_hours: float
    logs_read: bool = True

    @property
    def api_unreachable(self) -> bool:
        return bool(self.calls) and all(c.status is None for c in self.calls)

    @property
    def incomplete(self) -> bool:
        """The audit log or the backend logs could not be read: 'clear' would overclaim."""
        return self.evidence.metrics is None or not self.logs_read


def to_diagnose_response(code: str, resp: api.ApiResponse) -> ApiResponse | None:
    """api.ApiResponse (text) -> diagnose.ApiResponse (parsed body); None on a transport error."""
    if resp.status is None:
        return None
    try:
        body = json.loads(resp.body)
    except ValueError:
        body = None
    return ApiResponse(code, resp.status, body if isinstance(body, dict) else None)


def live_calls(settings: Settings, token: Secret, *, sleep: Callable[[float], None] = time.sleep,
               get: Callable[..., api.ApiResponse] = api.get_price) -> list[tuple[Call, ApiResponse | None]]:
    """A liquid code twice (FRESHNESS_GAP_S apart, so a cache hit shows freshness >= 1) and an unknown code."""
    liquid = settings.liquid_codes[0]
    plan = [(liquid, "liquid"), (liquid, "liquid, again for freshness"), (UNKNOWN_CODE, "unknown code")]
    out = []
    for i, (code, purpose) in enumerate(plan):
        if i == 1:
            sleep(FRESHNESS_GAP_S)   # a sampling interval, not a wait for a condition
        resp = get(settings, token, code, attempts=2)
        call = Call(code, purpose, resp.status, round(resp.elapsed_ms, 1), resp.transport_error)
        out.append((call, to_diagnose_response(code, resp)))
    return out


def gather_evidence(ex: Executor, settings: Settings, hours: float, *,
                    sleep: Callable[[float], None] = time.sleep) -> Gathered:
    """Audit aggregates first (so diagnose's own calls do not colour them), then live
    /price calls from this machine, then the backend's last 200 log lines."""
    notes: list[str] = []
    metrics: Metrics | None
    try:
        metrics = fetch_metrics(ex, settings, hours)
    except (BadInput, CheckFailed) as e:
        metrics = None
        notes.append(f"audit log not read: {e.line()}")
    except Unreachable as e:
        if "container is not running" not in e.message:
            raise
        metrics = None
        notes.append(f"audit log not read: {e.line()}")
    lay = commands.layout(settings, ex.home)
    token = ex.read_secret(lay.token_file)
    made = live_calls(settings, token, sleep=sleep)
    for call, _ in made:
        if call.transport_error:
            notes.append(f"GET /price?code={call.ts_code} failed: {call.transport_error}")
    logs = ex.run(commands.compose_logs(lay, LOG_TAIL), check=False, timeout=60)
    log_text = redact(scrub(logs.stdout + logs.stderr, token)) if logs.ok else ""
    if not logs.ok:
        notes.append(f"backend logs not read: {_last(logs.stderr)}")
    evidence = Evidence(
        metrics=metrics,
        responses=tuple(r for _, r in made if r is not None),
        backend_log=log_text,
        expected_chain=settings.expected_chain,
        liquid_codes=settings.liquid_codes,
    )
    return Gathered(evidence, tuple(c for c, _ in made), len(log_text.splitlines()), tuple(notes), hours,
                    logs_read=logs.ok)

