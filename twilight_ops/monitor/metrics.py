"""§3 metrics: the probe's JSON parsed into `Metrics`, bands, a verdict (all pure).

    parse_probe_output(text) -> Metrics        garbage -> CheckFailed; probe error -> its domain error
    bands(metrics, thresholds) -> {"err_pct"|"p95_ms"|"akshare_share": Band}
    verdict(bands) -> "healthy" | "investigate"      (assess: "no_data" when the window has no rows)
    to_json(metrics, bands, verdict, window_hours, read_via) -> dict (the `inv monitor --json` shape)
"""
from __future__ import annotations

import dataclasses
import enum
import json
import math
from typing import Any, Literal, Mapping

from ..config import Thresholds
from ..errors import BadInput, CheckFailed, TwilightError, Unreachable

ReadVia = Literal["direct", "copy", "local-file"]
Verdict = Literal["healthy", "investigate", "no_data"]
NO_DATA_HINT = ("no /price call was audited in the window: either there was no traffic or the AuditLog is not "
                "writing; `inv smoke` makes one call that should add one row, then run the monitor again")
READ_VIA: tuple[str, ...] = ("direct", "copy", "local-file")
BAND_KEYS = ("err_pct", "p95_ms", "akshare_share")


class Band(str, enum.Enum):
    HEALTHY = "healthy"
    WATCH = "watch"
    INVESTIGATE = "investigate"
    NA = "n/a"


@dataclasses.dataclass(frozen=True)
class ServedByShare:
    served_by: str | None
    n: int
    share_pct: float


@dataclasses.dataclass(frozen=True)
class StateCount:
    market_state: str | None
    n: int


@dataclasses.dataclass(frozen=True)
class ChainLenCount:
    len: int | None
    n: int


@dataclasses.dataclass(frozen=True)
class StatusCount:
    status: int | None
    n: int


@dataclasses.dataclass(frozen=True)
class OwnLeftOut:
    """twilight-ops's own /price calls (own_calls.py) the probe left out of the window's metrics."""

    left_out: int                 # audit rows left out
    recorded: int                 # own calls recorded for the window
    by_kind: tuple[tuple[str, int], ...] = ()
    note: str = ""                # why none could be told apart (no ts_code column)

    def said(self) -> str:
        """`12 of twilight-ops's own calls left out` — one phrase for every renderer."""
        if self.note:
            return f"own calls not left out: {self.note}"
        return (f"{self.left_out} of twilight-ops's own calls left out" if self.left_out
                else "no own call of twilight-ops to leave out")

    def to_json(self) -> dict[str, Any]:
        return {"left_out": self.left_out, "recorded": self.recorded, "by_kind": dict(self.by_kind),
                **({"note": self.note} if self.note else {})}


@dataclasses.dataclass(frozen=True)
class Metrics:
    """One probe result. `None` = not computed (column missing or no rows)."""

    read_via: ReadVia
    window_hours: float
    window_start_utc: str
    window_end_utc: str
    ts_type: str
    total: int
    errors: int
    err_pct: float | None
    p95_ms: float | None
    served_by: tuple[ServedByShare, ...]
    open_total: int | None
    akshare_spot_share_open_pct: float | None
    market_state: tuple[StateCount, ...] | None
    source_chain_len: tuple[ChainLenCount, ...] | None
    source_chain_len_errors: tuple[ChainLenCount, ...] | None
    status: tuple[StatusCount, ...] | None
    status_open: tuple[StatusCount, ...] | None
    liquid_502_open: int | None
    unit_violation_errors: int
    newest_utc: str | None = None
    copied_at: str | None = None
    notes: tuple[str, ...] = ()
    not_liquid_502: int | None = None     # 502s on codes outside liquid_codes (the unknown-code answer)
    rows: tuple[tuple[str, str | None], ...] | None = None   # (ts, ts_code), newest first; only when asked (rows_limit)
    own: OwnLeftOut | None = None         # the tool's own calls left out of every metric (None: none were given)

    @classmethod
    def from_probe(cls, d: Mapping[str, Any]) -> "Metrics":
        """From the probe's success object; CheckFailed if it is not that shape."""
        try:
            return _metrics(d)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckFailed(
                f"the monitor probe's JSON is not the expected shape ({e})",
                "the probe and twilight-ops must come from the same checkout",
            ) from None


@dataclasses.dataclass(frozen=True)
class Assessment:
    """Metrics judged against thresholds: what render and watch show."""

    metrics: Metrics
    thresholds: Thresholds
    bands: Mapping[str, Band]
    verdict: Verdict


# ---------------------------------------------------------------- parsing

_ERROR_CLASSES: dict[str, type[TwilightError]] = {
    "bad_params": BadInput,
    "missing_file": BadInput,
    "missing_table": BadInput,
    "schema": BadInput,
    "copy_dir": BadInput,
    "no_duckdb": BadInput,
    "not_duckdb": BadInput,
    "torn_copy": Unreachable,
    "no_space": Unreachable,
    "copy_failed": Unreachable,
    "duckdb": Unreachable,
    "internal": CheckFailed,
}
_HINTS = {
    "missing_file": "check twilight.container_warehouse (the path inside the backend container), or --db",
    "missing_table": "the backend has written no /price call yet: is v0.3.0 deployed? (inv status)",
    "schema": "compare provider_audit_log with the W4 target schema (02-tushare-integration-design.md §9.2)",
    "copy_dir": "give a writable directory with room for a copy of the warehouse",
    "no_duckdb": "run the probe inside the backend container (it has duckdb)",
    "not_duckdb": "give a DuckDB file, e.g. a copy of the warehouse snapshot",
    "torn_copy": "the warehouse changed during every copy attempt; run the monitor again",
    "no_space": "free disk space there, or give a copy dir on a larger filesystem",
    "copy_failed": "the warehouse is locked and could not be copied; check permissions and disk there",
    "duckdb": "check `docker compose logs backend --tail=200`, then run the monitor again",
    "internal": "a bug in the probe; run it by hand to see more",
}


def parse_probe_json(text: str, *, exited: int | None = None, stderr: str = "") -> dict[str, Any]:
    """The probe's one JSON object; its error object raised as the domain error."""
    body = (text or "").strip()
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        tail = (stderr.strip().splitlines() or body.splitlines() or ["no output"])[-1][:200]
        how = f"exited {exited}" if exited is not None else "printed"
        raise CheckFailed(f"the monitor probe printed no JSON result ({how}: {tail})",
                          "run the probe by hand in the backend container to see why")
    if "error" in obj:
        kind = str(obj.get("kind", "internal"))
        cls = _ERROR_CLASSES.get(kind, CheckFailed)
        raise cls(f"monitor probe: {obj['error']}", _HINTS.get(kind))
    return obj


def parse_probe_output(text: str) -> Metrics:
    """stdout of the probe -> Metrics (or the domain error it reports)."""
    return Metrics.from_probe(parse_probe_json(text))


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{v!r} is not a count")
    return v


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{v!r} is not a number")
    return float(v)


def _opt_str(v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        raise ValueError(f"{v!r} is not a string")
    return v


def _opt_int(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{v!r} is not an integer")
    return v


def _list(v: Any, make: Any) -> tuple | None:
    if v is None:
        return None
    if not isinstance(v, list):
        raise ValueError(f"{v!r} is not a list")
    return tuple(make(item) for item in v)


def _metrics(d: Mapping[str, Any]) -> Metrics:
    read_via = d["read_via"]
    if read_via not in READ_VIA:
        raise ValueError(f"read_via {read_via!r}")
    total, errors = _int(d["total"]), _int(d["errors"])
    if errors > total:
        raise ValueError("errors > total")
    win = d["window"]
    served = _list(d["served_by"], lambda x: ServedByShare(_opt_str(x["served_by"]), _int(x["n"]), _num(x["share_pct"]) or 0.0))
    notes = d.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ValueError("notes is not a list of strings")
    return Metrics(
        read_via=read_via,
        window_hours=float(_num(win["hours"]) or 0.0),
        window_start_utc=str(win["start_utc"]),
        window_end_utc=str(win["end_utc"]),
        ts_type=str(d["ts_type"]),
        total=total,
        errors=errors,
        err_pct=_num(d["err_pct"]),
        p95_ms=_num(d["p95_ms"]),
        served_by=served or (),
        open_total=None if d.get("open_total") is None else _int(d["open_total"]),
        akshare_spot_share_open_pct=_num(d["akshare_spot_share_open_pct"]),
        market_state=_list(d["market_state"], lambda x: StateCount(_opt_str(x["market_state"]), _int(x["n"]))),
        source_chain_len=_list(d["source_chain_len"], lambda x: ChainLenCount(_opt_int(x["len"]), _int(x["n"]))),
        source_chain_len_errors=_list(d.get("source_chain_len_errors"), lambda x: ChainLenCount(_opt_int(x["len"]), _int(x["n"]))),
        status=_list(d.get("status"), lambda x: StatusCount(_opt_int(x["status"]), _int(x["n"]))),
        status_open=_list(d.get("status_open"), lambda x: StatusCount(_opt_int(x["status"]), _int(x["n"]))),
        liquid_502_open=None if d.get("liquid_502_open") is None else _int(d["liquid_502_open"]),
        not_liquid_502=None if d.get("not_liquid_502") is None else _int(d["not_liquid_502"]),
        unit_violation_errors=_int(d.get("unit_violation_errors", 0)),
        newest_utc=_opt_str(d.get("newest_utc")),
        copied_at=_opt_str(d.get("copied_at")),
        notes=tuple(notes),
        rows=_rows(d.get("rows")),
        own=_own(d.get("own")),
    )


def _own(v: Any) -> OwnLeftOut | None:
    if v is None:
        return None
    if not isinstance(v, dict) or not isinstance(v.get("by_kind", {}), dict):
        raise ValueError(f"own {v!r} is not the probe's own-calls object")
    by_kind = tuple(sorted((str(k), _int(n)) for k, n in v.get("by_kind", {}).items()))
    return OwnLeftOut(_int(v["left_out"]), _int(v.get("recorded", 0)), by_kind, str(_opt_str(v.get("note")) or ""))


def _rows(v: Any) -> tuple[tuple[str, str | None], ...] | None:
    if v is None:
        return None
    if not isinstance(v, list):
        raise ValueError(f"rows {v!r} is not a list")
    out = []
    for item in v:
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
            raise ValueError(f"row {item!r} is not [ts, ts_code]")
        out.append((item[0], _opt_str(item[1])))
    return tuple(out)


# ---------------------------------------------------------------- decisions

def err_pct_band(m: Metrics, th: Thresholds) -> Band:
    if m.total == 0 or m.err_pct is None:
        return Band.NA
    if m.err_pct < th.err_pct_healthy:
        return Band.HEALTHY
    if m.err_pct > th.err_pct_investigate:
        return Band.INVESTIGATE
    return Band.WATCH


def p95_band(m: Metrics, th: Thresholds) -> Band:
    if m.total == 0 or m.p95_ms is None:
        return Band.NA
    if m.p95_ms < th.p95_healthy_ms:
        return Band.HEALTHY
    if m.p95_ms > th.p95_investigate_ms:
        return Band.INVESTIGATE
    return Band.WATCH


def akshare_share_band(m: Metrics, th: Thresholds) -> Band:
    share = m.akshare_spot_share_open_pct
    if share is None or not m.open_total:
        return Band.NA
    if share == 0:
        return Band.INVESTIGATE
    if th.akshare_share_healthy_min <= share <= th.akshare_share_healthy_max:
        return Band.HEALTHY
    return Band.WATCH


def bands(metrics: Metrics, thresholds: Thresholds) -> dict[str, Band]:
    return {
        "err_pct": err_pct_band(metrics, thresholds),
        "p95_ms": p95_band(metrics, thresholds),
        "akshare_share": akshare_share_band(metrics, thresholds),
    }


def verdict(band_map: Mapping[str, Band]) -> Verdict:
    return "investigate" if any(b is Band.INVESTIGATE for b in band_map.values()) else "healthy"


def assess(metrics: Metrics, thresholds: Thresholds) -> Assessment:
    """Bands and verdict; an empty window is "no_data", never healthy (an AuditLog that
    stopped writing must not look healthy)."""
    b = bands(metrics, thresholds)
    return Assessment(metrics, thresholds, b, "no_data" if metrics.total == 0 else verdict(b))


def to_json(metrics: Metrics, band_map: Mapping[str, Band], verdict: Verdict, window_hours: float, read_via: ReadVia) -> dict[str, Any]:
    """The `inv monitor --json` object (JSON-ready dict, keys in this order).

    Beyond the documented keys it carries `copied_at` (null unless read_via is
    "copy") and `notes` (why a metric is null), always present.
    """
    return {
        "window_hours": window_hours,
        "read_via": read_via,
        "total": metrics.total,
        "errors": metrics.errors,
        "err_pct": metrics.err_pct,
        "p95_ms": metrics.p95_ms,
        "served_by": [{"served_by": s.served_by, "n": s.n, "share_pct": s.share_pct} for s in metrics.served_by],
        "akshare_spot_share_open_pct": metrics.akshare_spot_share_open_pct,
        "market_state": None if metrics.market_state is None
        else [{"market_state": s.market_state, "n": s.n} for s in metrics.market_state],
        "source_chain_len": None if metrics.source_chain_len is None
        else [{"len": c.len, "n": c.n} for c in metrics.source_chain_len],
        "bands": {k: Band(band_map[k]).value for k in BAND_KEYS},
        "verdict": verdict,
        "copied_at": metrics.copied_at,
        "notes": list(metrics.notes),
        **({"own_calls": metrics.own.to_json()} if metrics.own is not None else {}),   # §3 left them out
    }
