"""Seed audit rows into the twin's warehouse while its backend is briefly stopped.

The backend holds /data/warehouse.duckdb open read-write for its whole life, so
nothing else can write it meanwhile. `seed_backend`:

  1. `docker compose stop backend`    (SIGTERM: the backend checkpoints and closes)
  2. `docker compose run --rm --no-deps -T backend python3 -` with seed.py + a
     few lines binding the spec on stdin: a one-off container of the SAME image
     as the running backend, with the same /data mount
  3. `docker compose start backend`, then a deadline-bounded wait for healthy
     (step 3 runs whatever happened in step 2)

Why a one-off container and not the host as root: the file is written by the
duckdb the backend itself ships (same storage format as the process that will
reopen it), through the same SSH executor as every task, with no knowledge of
where the twin keeps the file on the host and no root needed on it.

    scenario_spec(name, rows, minutes, end_utc, codes) -> AuditSpec   (pure)
    seed_script(spec, db_path) -> str                                 (pure)
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any, Callable

from .. import health
from ..builders.layout import layout
from ..builders import compose as compose_cmd
from ..config import Settings
from ..errors import BadInput, CheckFailed
from ..executor import Executor
from .seed import AuditSpec

SEED_FILE = Path(__file__).with_name("seed.py")

# scenario -> AuditSpec fields (runbook §3 bands they are meant to hit)
SCENARIOS: dict[str, dict[str, Any]] = {
    "healthy": {"error_rate": 0.005, "latency_ms": (40.0, 380.0), "market_states": {"open": 1.0}, "akshare_share_open": 0.7},
    "errors": {"error_rate": 0.06, "latency_ms": (40.0, 380.0), "market_states": {"open": 1.0}, "akshare_share_open": 0.7},
    "slow": {"error_rate": 0.0, "latency_ms": (650.0, 900.0), "market_states": {"open": 1.0}, "akshare_share_open": 0.7},
    "akshare-broken": {"error_rate": 0.0, "latency_ms": (40.0, 380.0), "market_states": {"open": 1.0}, "akshare_share_open": 0.0},
    "closing": {"error_rate": 0.0, "latency_ms": (40.0, 380.0), "market_states": {"closing": 1.0}, "akshare_share_open": 0.7},
}
MAX_ROWS = 2_000_000


def scenario_spec(name: str, rows: int, minutes: float, end_utc: dt.datetime, codes: tuple[str, ...], seed: int = 42) -> AuditSpec:
    if name not in SCENARIOS:
        raise BadInput(f"--scenario {name!r} is unknown", "known: " + ", ".join(SCENARIOS))
    if not 1 <= rows <= MAX_ROWS:
        raise BadInput(f"--rows {rows} is out of range", f"give 1 to {MAX_ROWS}")
    if not 0 < minutes <= 24 * 60:
        raise BadInput(f"--minutes {minutes:g} is out of range", "give more than 0 and at most 1440")
    return AuditSpec(n=rows, end_utc=end_utc, span=dt.timedelta(minutes=minutes), codes=codes, seed=seed, **SCENARIOS[name])


def seed_script(spec: AuditSpec, db_path: str) -> str:
    """seed.py followed by a trailer that builds `spec` from one JSON literal and seeds db_path."""
    params = {
        "db_path": db_path,
        "n": spec.n,
        "end_utc": spec.end_utc.astimezone(dt.timezone.utc).isoformat(),
        "span_s": spec.span.total_seconds(),
        "error_rate": spec.error_rate,
        "error_status": spec.error_status,
        "error_text": spec.error_text,
        "latency_ms": list(spec.latency_ms),
        "market_states": dict(spec.market_states),
        "akshare_share_open": spec.akshare_share_open,
        "codes": list(spec.codes),
        "seed": spec.seed,
    }
    wire = json.dumps(params, sort_keys=True, ensure_ascii=True, allow_nan=False)
    trailer = f'''

# ---- bound by twilight_ops.twin.seed_remote.seed_script
import json as _json
SEED_PARAMS = _json.loads({wire!r})


def _seed_main(p):
    spec = AuditSpec(
        n=p["n"], end_utc=dt.datetime.fromisoformat(p["end_utc"]), span=dt.timedelta(seconds=p["span_s"]),
        error_rate=p["error_rate"], error_status=p["error_status"], error_text=p["error_text"],
        latency_ms=tuple(p["latency_ms"]), market_states=p["market_states"],
        akshare_share_open=p["akshare_share_open"], codes=tuple(p["codes"]), seed=p["seed"],
    )
    inserted = seed_rows(p["db_path"], spec)
    con = duckdb.connect(p["db_path"], read_only=True)
    try:
        total = con.execute("SELECT count(*) FROM " + TABLE).fetchone()[0]
    finally:
        con.close()
    print(_json.dumps({{"inserted": inserted, "total": total}}))


if __name__ == "__main__":
    _seed_main(SEED_PARAMS)
'''
    return SEED_FILE.read_text(encoding="utf-8") + trailer


@dataclasses.dataclass(frozen=True)
class SeedReport:
    inserted: int
    total: int
    version: str
    healthy_after_s: float


def running_version(ex: Executor, settings: Settings) -> str:
    """The tag the twin's backend runs (through the production services fact)."""
    svc = health.service_of(health.read_services(ex, layout(settings, ex.expand("~")), settings.image_repo), settings.service)
    if svc is None or svc.state != "running" or not svc.version:
        raise CheckFailed(f"the {settings.service} service is not running in the twin", "run `inv twin.up` first")
    return svc.version


def seed_backend(ex: Executor, settings: Settings, spec: AuditSpec, say: Callable[[str], None] = lambda s: None) -> SeedReport:
    """Stop the backend, seed its warehouse from a one-off container, start it, wait healthy."""
    lay = layout(settings, ex.expand("~"))
    version = running_version(ex, settings)
    script = seed_script(spec, settings.container_warehouse)
    ex.run(compose_cmd.compose(lay, "stop", lay.service), timeout=120)
    result = None
    try:
        result = ex.run(compose_cmd.compose(lay, "run", "--rm", "--no-deps", "-T", lay.service, "python3", "-", version=version),
                        stdin=script, check=False, timeout=600)
    finally:
        ex.run(compose_cmd.compose(lay, "start", lay.service), timeout=120)
        waited = health.wait_healthy(ex, lay, 90.0, say=say)
    try:
        out = json.loads(result.stdout.strip().splitlines()[-1])
        return SeedReport(int(out["inserted"]), int(out["total"]), version, round(waited.seconds, 1))
    except (IndexError, ValueError, KeyError, TypeError):
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise CheckFailed(f"seeding the twin's warehouse failed (exit {result.exited}: {tail})",
                          "the backend was started again; see the message above") from None

