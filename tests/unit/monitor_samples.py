"""Plain-value Metrics for the monitor / diagnose / watch tests."""
from __future__ import annotations

import dataclasses
from typing import Any

from twilight_ops.config import DEFAULTS, Thresholds
from twilight_ops.monitor.metrics import ChainLenCount, Metrics, ServedByShare, StateCount, StatusCount

THRESHOLDS = Thresholds(**{k: float(v) for k, v in DEFAULTS["thresholds"].items()})

BASE = Metrics(
    read_via="direct",
    window_hours=1.0,
    window_start_utc="2026-05-12T02:30:00.000000Z",
    window_end_utc="2026-05-12T03:30:00.000000Z",
    ts_type="TIMESTAMP",
    total=200,
    errors=1,
    err_pct=0.5,
    p95_ms=300.0,
    served_by=(ServedByShare("akshare-spot", 140, 70.0), ServedByShare("tushare-daily", 60, 30.0)),
    open_total=200,
    akshare_spot_share_open_pct=70.0,
    market_state=(StateCount("open", 200),),
    source_chain_len=(ChainLenCount(1, 140), ChainLenCount(2, 60)),
    source_chain_len_errors=(ChainLenCount(2, 1),),
    status=(StatusCount(200, 199), StatusCount(502, 1)),
    status_open=(StatusCount(200, 199), StatusCount(502, 1)),
    liquid_502_open=0,
    unit_violation_errors=0,
    newest_utc="2026-05-12T03:29:58.000000Z",
)


def metrics(**changes: Any) -> Metrics:
    return dataclasses.replace(BASE, **changes)
